"""The real MPI, parallel HDF5 and complex PETSc/SLEPc stack that qgt_mpi runs on.

Nothing here is mocked: a failure means the machine (or the venv) is set up wrongly, and
says which component. ``QGT_EXPECT_MPI`` names the MPI library expected (default Open MPI,
which Debian's mpi4py is built against).
"""

from __future__ import annotations

import os

import qgt_mpi  # noqa: F401  (before h5py: selects the MPI build of Debian's h5py)

# isort: split
import h5py
import numpy as np
import pytest
from mpi4py import MPI
from mpi_util import assert_all

EXPECTED_MPI = os.environ.get("QGT_EXPECT_MPI", "Open MPI")


def test_mpi4py_library() -> None:
    """mpi4py is linked against the expected MPI (Debian: Open MPI)."""
    version = MPI.Get_library_version()
    assert EXPECTED_MPI in version, f"mpi4py uses {version.strip()!r}, not {EXPECTED_MPI}"


def test_h5py_is_parallel() -> None:
    """h5py is the MPI build (Debian's shim obeys H5PY_ALWAYS_USE_MPI, set by qgt_mpi)."""
    assert h5py.get_config().mpi, (
        f"h5py {h5py.version.version} at {h5py.__file__} has no MPI support "
        "(Debian: install python3-h5py-mpi; elsewhere see docs/install.md)"
    )


def test_petsc_is_complex() -> None:
    """petsc4py is built with complex scalars and slepc4py imports against it.

    Skipped where petsc4py/slepc4py are absent (the optional ``petsc`` extra).
    """
    PETSc = pytest.importorskip("petsc4py.PETSc")
    SLEPc = pytest.importorskip("slepc4py.SLEPc")

    assert np.dtype(PETSc.ScalarType) == np.complex128, (
        f"PETSc.ScalarType is {PETSc.ScalarType} (PETSC_DIR={os.environ.get('PETSC_DIR')}); "
        "qgt_mpi needs the complex build"
    )
    assert np.dtype(SLEPc.ScalarType) == np.complex128


@pytest.mark.mpi
def test_launcher_matches_library(comm: MPI.Comm) -> None:
    """The launcher's rank count reaches mpi4py (a mismatched MPI gives size-1 singletons)."""
    launched = next(
        (
            os.environ[v]
            for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS")
            if v in os.environ
        ),
        None,
    )
    ok = launched is None or int(launched) == comm.size
    assert_all(comm, ok, f"launcher started {launched} ranks but COMM_WORLD.size is {comm.size}")


def _rows_collective(dset: h5py.Dataset, start: int, data: np.ndarray, write: bool) -> None:
    """Collectively write (or read into) rows ``start:start+len(data)`` of ``dset``.

    h5py's ``dset[a:b] = x`` returns early on a rank whose selection is empty, so that rank
    never enters the collective call and the others hang. The low-level call with an
    explicit empty selection keeps every rank in it.
    """
    dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
    dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)
    fspace = dset.id.get_space()
    n = data.shape[0]
    buffer = data if n else np.empty((1, *data.shape[1:]), data.dtype)
    mspace = h5py.h5s.create_simple(buffer.shape)
    if n:
        fspace.select_hyperslab((start, 0), data.shape)
    else:
        fspace.select_none()
        mspace.select_none()
    if write:
        dset.id.write(mspace, fspace, buffer, dxpl=dxpl)
    else:
        dset.id.read(mspace, fspace, buffer, dxpl=dxpl)


def _slab(counts: list[int], rank: int) -> np.ndarray:
    """Rows owned by ``rank``: (global row + i*rank, -global row), shape (counts[rank], 2)."""
    start = sum(counts[:rank])
    rows = np.arange(start, start + counts[rank], dtype=float)
    return np.stack([rows + 1j * rank, -rows], axis=1).astype(np.complex128)


@pytest.mark.mpi
def test_allreduce_and_parallel_hdf5(comm: MPI.Comm, tmp_path_shared) -> None:
    """Allreduce, then every rank writes its own slab of one file (rank 1 writes none)."""
    rank, size = comm.rank, comm.size
    total_rank = comm.allreduce(rank, op=MPI.SUM)
    assert_all(comm, total_rank == size * (size - 1) // 2, f"allreduce gave {total_rank}")

    # Rank r owns r + 2 rows, except rank 1 which owns none (the "empty core" case).
    counts = [0 if r == 1 else r + 2 for r in range(size)]
    start = sum(counts[:rank])
    mine = _slab(counts, rank)
    expected = np.concatenate([_slab(counts, r) for r in range(size)])

    # Metadata with identical arguments on every rank, then one slab per rank.
    path = tmp_path_shared / "slabs.h5"
    with h5py.File(path, "w", driver="mpio", comm=comm) as f:
        dset = f.create_dataset("rows", shape=(sum(counts), 2), dtype=np.complex128)
        dset.attrs["nranks"] = size
        _rows_collective(dset, start, mine, write=True)

    # Read back: each rank its own slab collectively, and the whole array independently.
    with h5py.File(path, "r", driver="mpio", comm=comm) as f:
        back = np.zeros_like(mine)
        _rows_collective(f["rows"], start, back, write=False)
        whole = f["rows"][...]
        nranks = int(f["rows"].attrs["nranks"])
    assert_all(comm, np.array_equal(back, mine), f"slab read back wrong on rank {rank}")
    assert_all(comm, np.array_equal(whole, expected), f"whole array wrong on rank {rank}")
    assert_all(comm, nranks == size, f"attribute nranks={nranks}, expected {size}")
