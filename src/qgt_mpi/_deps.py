"""Optional and required third-party packages: one line saying what to install.

``pyproject.toml`` declares them: numpy, scipy, mpi4py, h5py are required (the MPI build of
h5py comes from the system, docs/install.md); matplotlib is the ``plot`` extra,
petsc4py/slepc4py the ``petsc`` extra, PythTB the ``interop`` extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> what to install
INSTALL = {
    "matplotlib": "pip install 'qgt_mpi[plot]'  (or: pip install matplotlib)",
    "petsc4py": "pip install 'qgt_mpi[petsc]'  (complex-scalar PETSc; docs/install.md)",
    "slepc4py": "pip install 'qgt_mpi[petsc]'  (complex-scalar SLEPc; docs/install.md)",
    "pythtb": "pip install pythtb",
    "tbmodels": "pip install tbmodels",
    "mpi4py": "pip install mpi4py, or the system package (Debian: python3-mpi4py)",
    "h5py": "an MPI build of h5py (Debian: python3-h5py-mpi; docs/install.md)",
    "numpy": "pip install numpy",
    "scipy": "pip install scipy",
}


class MissingDependencyError(ImportError):
    """A package qgt_mpi needs for this task is not installed; ``str`` is one line."""


def missing_message(exc: ModuleNotFoundError) -> str:
    """One line naming the missing module and how to install it."""
    name = (exc.name or str(exc)).split(".")[0]
    how = INSTALL.get(name, f"pip install {name}")
    return f"the Python package {name!r} is not installed; install it: {how}"


def require(name: str) -> ModuleType:
    """Import ``name`` or raise :class:`MissingDependencyError` with one line saying what to do."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(missing_message(exc)) from None


def require_parallel_h5py() -> None:
    """Raise :class:`MissingDependencyError` when h5py is not the MPI build (runs need it)."""
    h5py = require("h5py")
    if not h5py.get_config().mpi:
        raise MissingDependencyError(
            f"h5py {h5py.version.version} has no MPI support, and qgt-mpi run writes its file "
            f"with parallel HDF5; install {INSTALL['h5py']}")
