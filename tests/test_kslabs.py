"""Checkpoint k-slabs: written from every rank with parallel HDF5, read back per rank."""

from __future__ import annotations

import numpy as np
import pytest
from mpi_util import assert_all

from qgt_mpi.io import kslabs
from qgt_mpi.parallel import CollectiveError, block_range

pytestmark = pytest.mark.mpi


def _fields(start: int, stop: int, nb: int) -> dict[str, np.ndarray]:
    """Distinct values per k index and field, to catch misplaced slabs."""
    k = np.arange(start, stop, dtype=float)
    shapes = kslabs.entry_shapes(nb)
    return {key: (k.reshape(-1, *[1] * len(shapes[key])) * 10 + i)
            * np.ones((stop - start, *shapes[key])) for i, key in enumerate(kslabs.KEYS)}


def test_every_rank_writes_its_slabs_in_two_checkpoints(comm, tmp_path_shared):
    nk, nb = 23, 3
    path = str(tmp_path_shared / "c.checkpoint.kgrid.h5")
    lo, hi = block_range(nk, comm.size, comm.rank)
    mid = (lo + hi) // 2
    kslabs.write(comm, path, nk, nb, [(lo, mid, _fields(lo, mid, nb))], create=True)
    kslabs.write(comm, path, nk, nb, [(mid, hi, _fields(mid, hi, nb))], create=False)
    comm.Barrier()
    # read back a different share than was written (as after a restart on other ranks)
    other = block_range(nk, comm.size, (comm.rank + 1) % comm.size)
    (start, stop, arrays), = kslabs.read(path, [other])
    want = _fields(start, stop, nb)
    ok = all(np.array_equal(arrays[k], want[k]) for k in kslabs.KEYS)
    assert_all(comm, ok, "slab read back differs from what its rank wrote")


def test_failed_slab_write_is_raised_on_every_rank(comm, tmp_path_shared):
    """A bad slab on the last rank only: every rank raises the same CollectiveError."""
    path = str(tmp_path_shared / "bad.kgrid.h5")
    slabs = [(0, 2, {k: np.zeros((5, 9)) for k in kslabs.KEYS})] \
        if comm.rank == comm.size - 1 else []
    with pytest.raises(CollectiveError):
        kslabs.write(comm, path, 4, 2, slabs, create=True)
