"""Optional and required third-party packages: one line saying what to install.

``pyproject.toml`` declares them: numpy, scipy, mpi4py, h5py are required (the MPI build of
h5py comes from the system, docs/install.md; with the serial PyPI wheel runs write with
serial HDF5 on one rank, :func:`require_h5py_writer`); matplotlib is the ``plot`` extra,
petsc4py/slepc4py the ``petsc`` extra, PythTB the ``interop`` extra.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# top-level module -> what to install
INSTALL = {
    "matplotlib": "pip install 'qgt_mpi[plot]'  (or: pip install matplotlib)",
    "petsc4py": "pip install 'qgt_mpi[petsc]'  (complex-scalar PETSc; docs/install.md)",
    "slepc4py": "pip install 'qgt_mpi[petsc]'  (complex-scalar SLEPc; docs/install.md)",
    "pythtb": "pip install pythtb",
    "tbmodels": "pip install tbmodels",
    "mpi4py": "pip install mpi4py, or the system package (Debian: python3-mpi4py)",
    "h5py": "an MPI build of h5py (Debian: python3-h5py-mpi; conda-forge: h5py=*=mpi_openmpi*; "
            "docs/install.md)",
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


# Set to 1 to write with serial HDF5 even when h5py is the MPI build (one rank only): the
# code path a pip-installed h5py (serial wheel) takes; docs/install.md, "pip only".
SERIAL_HDF5_ENV = "QGT_MPI_SERIAL_HDF5"


class SerialH5pyError(MissingDependencyError):
    """More than one rank, and h5py cannot write in parallel; ``str`` is one line.

    An input error (exit status 2 from ``qgt-mpi``): the same installation runs on one rank.
    """

    input_error = True


def parallel_h5py() -> bool:
    """Whether result files are written with parallel HDF5 (``driver="mpio"``).

    True when h5py is the MPI build, unless ``QGT_MPI_SERIAL_HDF5=1`` asks for serial HDF5.
    False: one rank writes with serial HDF5 (:func:`require_h5py_writer` refuses more).
    """
    h5py = require("h5py")
    return bool(h5py.get_config().mpi) and os.environ.get(SERIAL_HDF5_ENV, "") != "1"


def serial_h5py_message(nranks: int) -> str:
    """One line: why ``nranks`` ranks cannot write with this h5py, and the two fixes."""
    h5py = require("h5py")
    if h5py.get_config().mpi:
        return (f"{SERIAL_HDF5_ENV}=1 asks for serial HDF5, which writes on one rank only, not "
                f"{nranks}: run on one rank, or unset {SERIAL_HDF5_ENV}")
    return (f"h5py {h5py.version.version} has no MPI support (serial HDF5, e.g. the PyPI wheel), "
            f"which writes on one rank only, not {nranks}: run on one rank, or install "
            f"{INSTALL['h5py']}")


def require_h5py_writer(comm) -> None:
    """Raise :class:`SerialH5pyError` on every rank of ``comm`` when it has more than one rank
    and h5py cannot write in parallel (one rank with serial h5py is fine). Collective."""
    if comm.size == 1:
        return
    from mpi4py import MPI

    if not comm.allreduce(int(parallel_h5py()), op=MPI.MIN):  # the same answer on every rank
        raise SerialH5pyError(serial_h5py_message(comm.size))
