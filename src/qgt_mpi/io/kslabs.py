"""k-resolved fields of a checkpoint: one file written slab by slab from every rank.

``<output>.checkpoint.kgrid.h5`` holds full-grid datasets (``/k_frac``, ``/k_cart``,
``/energies``, ``/berry_curvature``, ``/metric``, first axis the flat k index). It is created
collectively with parallel HDF5 at the first checkpoint (serial HDF5 on one rank with an
h5py without MPI: io/writer.py ``open_file``); at each checkpoint every rank writes the slabs
of the blocks it finished since the last one, with independent I/O, so no rank ever holds
more than its own blocks (nothing is gathered on rank 0). The datasets are allocated at
creation (parallel HDF5 always does so; serial HDF5 is asked to), so later checkpoints only
write raw data into allocated space and never change the file's structure: a job killed
during such a write leaves a readable file whose unfinished slabs are simply not yet marked
done.

The slab file is closed (flushed) before the main checkpoint (io/checkpoint.py, written by
rank 0 and renamed atomically) records the blocks as done, so a block marked done always has
its slab on disk. On restart each rank reads back only the done blocks it is dealt.
"""

from __future__ import annotations

import os

import h5py
import numpy as np
from mpi4py import MPI

from qgt_mpi.io.writer import early_allocation, open_file, reserve
from qgt_mpi.parallel.errors import agree

# The k-resolved fields of a run, in order, and the axes of one k-point's entry: the one
# definition (run/kpass.py fills them, this module and io/writer.py store them).
KEYS = ("k_frac", "k_cart", "energies", "berry_curvature", "metric")
ENTRY_AXES = {"k_frac": "k, component", "k_cart": "k, (x, y)", "energies": "k, band",
              "berry_curvature": "k, band", "metric": "k, band, (xx, yy, xy)"}


def slab_file(checkpoint_path: str) -> str:
    """The slab file next to a checkpoint."""
    return checkpoint_path.removesuffix(".h5") + ".kgrid.h5"


def entry_shapes(nbands: int) -> dict[str, tuple[int, ...]]:
    """Shape of one k-point's entry of each field."""
    return {"k_frac": (2,), "k_cart": (2,), "energies": (nbands,),
            "berry_curvature": (nbands,), "metric": (nbands, 3)}


def write(comm: MPI.Comm, path: str, nk: int, nbands: int,
          slabs: list[tuple[int, int, dict[str, np.ndarray]]], create: bool) -> None:
    """Write this rank's ``slabs`` (start, stop, arrays) into the slab file. Collective.

    ``create`` makes a new file (same value on every rank). Errors of any rank's writes are
    agreed on before the collective close, so every rank raises the same CollectiveError.
    """
    if create:
        reserve(comm, path, nk * sum(int(np.prod(e)) for e in entry_shapes(nbands).values())
                * 8 + 65536)
    with open_file(comm, path, "w" if create else "r+") as f:
        if create:
            for key, entry in entry_shapes(nbands).items():
                f.create_dataset(key, (nk, *entry), dtype=float, dcpl=early_allocation())
        error = None
        try:
            for start, stop, arrays in slabs:
                for key in KEYS:
                    f[key][start:stop] = arrays[key]
        except Exception as exc:  # agreed below, before the collective close
            error = exc
        agree(comm, error)


def read(path: str, ranges: list[tuple[int, int]]) -> list[tuple[int, int, dict[str, np.ndarray]]]:
    """Slabs ``[start, stop)`` read back from the slab file. Local (serial read)."""
    if not ranges:
        return []
    with h5py.File(path, "r", driver=None) as f:
        return [(start, stop, {key: f[key][start:stop] for key in KEYS})
                for start, stop in ranges]


def remove(path: str) -> None:
    """Delete the slab file if present (call on one rank)."""
    if os.path.exists(path):
        os.remove(path)
