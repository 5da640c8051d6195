"""Process environment that must be fixed before numpy, h5py or petsc4py are imported.

Imported first by :mod:`qgt_mpi`. It asks Debian's h5py shim for its parallel (MPI) build
and points petsc4py and slepc4py at the complex-scalar PETSc/SLEPc builds when the user has
not chosen any. It does NOT touch thread settings: importing qgt_mpi in a notebook leaves
OMP_NUM_THREADS & co. alone. The command line pins BLAS/OpenMP to one thread per MPI rank
(:func:`pin_threads`, called by ``qgt_mpi.cli.main.main`` before numpy is imported), because
threaded BLAS makes small batched eigensolves several times slower when ranks share cores.
"""

from __future__ import annotations

import glob
import os
import sys

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def _first_dir(pattern: str) -> str | None:
    """Return the lexically last directory matching ``pattern`` (newest version), if any."""
    hits = sorted(d for d in glob.glob(pattern) if os.path.isdir(d))
    return hits[-1] if hits else None


def _add_python_dir(prefix: str) -> None:
    """Append ``prefix``'s Debian python dir to ``sys.path`` (what the .pth files do)."""
    path = os.path.join(prefix, "lib", "python3", "dist-packages")
    if os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)


def pin_threads() -> None:
    """One BLAS/OpenMP thread per process unless the user set a count (CLI only).

    Effective only before numpy is imported (BLAS reads the variables when it loads).
    """
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")


def configure() -> None:
    """Set the h5py MPI switch and PETSc/SLEPc locations (idempotent; no thread settings)."""
    os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")
    for var, pattern in (
        ("PETSC_DIR", "/usr/lib/petscdir/petsc*/*-complex"),
        ("SLEPC_DIR", "/usr/lib/slepcdir/slepc*/*-complex"),
    ):
        if not os.environ.get(var):
            found = _first_dir(pattern)
            if found:
                os.environ[var] = found
        if os.environ.get(var):
            _add_python_dir(os.environ[var])


configure()
