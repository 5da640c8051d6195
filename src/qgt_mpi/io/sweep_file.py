"""Streamed sweep datasets: each evaluated unit written into the result file as it completes.

The result file ``<output>.partial`` (writer.py) is created before the evaluation with the
sweep-shaped /transport datasets (observables, undefined-value masks, per-band fillings,
solved μ); the rank that evaluated a unit writes its hyperslab with an independent write, so
no sweep-sized array is ever held in memory (the sweep is bounded by disk).
Storage is chunked by the shape of a unit (``chunk``), so a write touches few chunks. The
rest of the file is added by ``writer.write(..., append=True)`` at the end. After a stop
the partial file stays; a rerun reopens it and fills the units the checkpoint does not mark
as done (a partial file that is missing or unreadable, e.g. after ``kill -9`` inside a
write, is recreated and every unit evaluated again).
"""

from __future__ import annotations

import os

import h5py
import numpy as np
from mpi4py import MPI

from qgt_mpi.io.writer import open_file, partial_name, reserve
from qgt_mpi.parallel import broadcast
from qgt_mpi.parallel.errors import collective

_CHUNK_POINTS = 8192  # first-axis points per storage chunk

Layout = dict[str, tuple[tuple[int, ...], np.dtype, dict[str, object]]]


class FileSink:
    """The open partial result file; ``put`` writes one unit's slab. Open/close collective.

    Parameters
    ----------
    layout : name → (shape, dtype, attrs) of the /transport datasets to stream.
    resume : reopen an existing partial file (units done before a stop are kept in it).
    chunk : (first-axis points, temperatures) of a storage chunk, at most the sweep's.
    """

    def __init__(self, comm: MPI.Comm, output: str, layout: Layout, resume: bool,
                 chunk: tuple[int, int] = (_CHUNK_POINTS, 1)) -> None:
        self.comm, self.path = comm, partial_name(output)
        usable = broadcast(comm, _readable(self.path, layout) if comm.rank == 0 else None)
        self.resumed = bool(resume and usable)
        if not self.resumed:
            nbytes = sum(int(np.prod(s)) * np.dtype(t).itemsize for s, t, _ in layout.values())
            reserve(comm, self.path + ".space", int(1.1 * nbytes) + 65536)
        with collective(comm, OSError):
            self.file = open_file(comm, self.path, "r+" if self.resumed else "w")
        grp = self.file.require_group("transport")
        self.dsets = {}
        for key, (shape, dtype, attrs) in layout.items():
            if key not in grp:
                chunks = (min(shape[0], chunk[0]), 1, min(shape[2], chunk[1]), *shape[3:])
                dset = grp.create_dataset(key, shape, dtype=dtype, chunks=chunks,
                                          fillvalue=np.nan if np.dtype(dtype).kind == "f" else 0)
                for name, value in attrs.items():
                    dset.attrs[name] = value
            self.dsets[key] = grp[key]

    def put(self, unit: tuple[int, slice, slice], values: dict[str, np.ndarray]) -> None:
        """Write one unit (independent I/O, local); values are (first axis, T, ...)."""
        i_d, temps, sl = unit
        for key, dset in self.dsets.items():
            dset[sl, i_d, temps] = values[key]

    def flush(self) -> None:
        """Push written slabs to disk (collective)."""
        self.file.flush()

    def close(self) -> None:
        """Close the file (collective)."""
        if self.file.id.valid:
            self.file.close()

    def remove(self) -> None:
        """Close and delete the partial file (collective; after a failure)."""
        self.close()
        if self.comm.rank == 0 and os.path.exists(self.path):
            os.remove(self.path)


def _readable(path: str, layout: Layout) -> bool:
    """Whether ``path`` is an HDF5 file holding every streamed dataset with its shape (rank 0)."""
    if not os.path.exists(path):
        return False
    try:
        with h5py.File(path, "r", driver=None) as f:
            return all(f"transport/{k}" in f and f[f"transport/{k}"].shape == s
                       for k, (s, _t, _a) in layout.items())
    except (OSError, KeyError, ValueError):
        return False


def check_disk(comm: MPI.Comm, output: str, n_points: int, bytes_per_point: int) -> None:
    """Refuse (InputError, before the k-pass) a sweep whose streamed file cannot fit. Collective.

    The sweep is bounded by disk, not memory (theory §4.3): the datasets need ``n_points`` ×
    ``bytes_per_point`` bytes; compared with the free space of the output's file system.
    """
    import shutil

    from qgt_mpi.io.checks import InputError

    with collective(comm):
        if comm.rank == 0:
            need = n_points * bytes_per_point
            directory = os.path.dirname(os.path.abspath(output))
            free = shutil.disk_usage(directory).free
            if need > free:
                raise InputError("sweep", f"{n_points:.3g} points",
                                 f"the result file needs {need / 2**30:.3g} GiB for the sweep "
                                 f"datasets, {free / 2**30:.3g} GiB are free in {directory}; "
                                 "reduce sweep.temperature/mu/delta sizes")
