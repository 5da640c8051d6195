"""Streamed /transport observables: each evaluated unit written into the result file at once.

The result file ``<output>.partial`` (writer.py) is created before the evaluation with the
/transport observables as (n_mu, n_delta, n_T) datasets; the rank that evaluated a unit
writes its hyperslab with an independent write, so no sweep-sized array is ever held in
memory (the sweep is bounded by disk). Storage is chunked by (μ run, δ, T), the shape of a
unit, so a write touches one chunk instead of a strided span of the whole array. The
rest of the file is added by ``writer.write`` at the end (append mode). After a stop the
partial file stays, and a rerun reopens it and fills the units the checkpoint does not
mark as done.
"""

from __future__ import annotations

import os

import h5py
import numpy as np
from mpi4py import MPI

from qgt_mpi.io.writer import partial_name
from qgt_mpi.parallel import broadcast
from qgt_mpi.transport.observables import UNITS

_MU_CHUNK = 8192  # storage chunk: a μ run at one (δ, T), so a unit touches one chunk


class FileSink:
    """The open partial result file; ``put`` writes one unit's slab. Open/close collective."""

    def __init__(self, comm: MPI.Comm, output: str, shape: tuple[int, int, int],
                 resume: bool) -> None:
        self.path = partial_name(output)
        exists = broadcast(comm, os.path.exists(self.path) if comm.rank == 0 else None)
        self.resumed = bool(resume and exists)
        self.file = h5py.File(self.path, "r+" if self.resumed else "w", driver="mpio",
                              comm=comm)
        grp = self.file.require_group("transport")
        self.dsets = {}
        for key, unit in UNITS.items():
            if key not in grp:
                dset = grp.create_dataset(key, shape, dtype=float, fillvalue=np.nan,
                                          chunks=(min(shape[0], _MU_CHUNK), 1, 1))
                dset.attrs["units"] = unit
                dset.attrs["axes"] = "mu, delta_index, temperature"
            self.dsets[key] = grp[key]

    def put(self, i_d: int, i_t: int, mus: slice, values: dict[str, np.ndarray]) -> None:
        """Write one unit (independent I/O, local)."""
        for key, dset in self.dsets.items():
            dset[mus, i_d, i_t] = values[key]

    def flush(self) -> None:
        """Push written slabs to disk (collective)."""
        self.file.flush()

    def close(self) -> None:
        """Close the file (collective)."""
        if self.file.id.valid:
            self.file.close()
