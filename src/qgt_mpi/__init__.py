"""qgt_mpi: quantum-geometric transport of flat topological bands, on MPI.

The package is organised by role (see ``docs/architecture.md``): ``models`` build Bloch
Hamiltonians, ``solvers`` diagonalise them for batches of k-points, ``geometry`` turns
eigenpairs into velocities, Berry curvature, metric and Chern numbers, ``kernels`` holds
the closed-form structural tensors (theory §3), ``transport`` accumulates and evaluates
the k-sums of theory §4, ``parallel`` is the one home of MPI helpers, ``io`` reads input
decks and writes result files, and ``cli`` is the only module that touches COMM_WORLD
(besides the Python API's default ``comm``, see ``docs/api.md``).

Python API (``docs/api.md``), loaded on first use so that ``import qgt_mpi`` stays light
and leaves the process's thread settings alone::

    import qgt_mpi as q
    model = q.models.haldane(t1=1.0, t2=0.3, mass=0.0, phi=np.pi / 2)
    res = q.compute(model, kgrid=(48, 48), temperature=[1.0], mu=[0.0], delta=[0.01])
    res.sigma_xx; res.save("out.h5"); q.load("out.h5")
    tbg = q.deck_model("tbg_atomistic", m=31, mass=10.0)        # a deck's [model] keys
    q.compute(tbg, (12, 12), [1.0], [0.0], [0.5], solver=q.Solver("slepc", nev=4, target=0.0))
"""

from qgt_mpi import _env  # noqa: F401  (must precede numpy/h5py/petsc4py imports)
from qgt_mpi._version import __version__

# name -> module that defines it; imported on first access (PEP 562)
_API = {
    "compute": "qgt_mpi.api",
    "Result": "qgt_mpi.api",
    "Quantity": "qgt_mpi.api",
    "Solver": "qgt_mpi.api",
    "Superfluid": "qgt_mpi.api",
    "InputError": "qgt_mpi.api",
    "deck_model": "qgt_mpi.api",
    "load": "qgt_mpi.api",
    "save": "qgt_mpi.api",
    "scan": "qgt_mpi.param_scan",
    "Scan": "qgt_mpi.param_scan",
    "read_wannier90": "qgt_mpi.models.wannier90",
    "tight_binding": "qgt_mpi.models.inline",
    "load_model": "qgt_mpi.models.modelfile",
    "save_model": "qgt_mpi.models.modelfile",
    "from_pythtb": "qgt_mpi.models.interop",
    "from_tbmodels": "qgt_mpi.models.interop",
}
__all__ = ["__version__", "models", *_API]


def __getattr__(name: str):
    """Load the Python API lazily (``qgt_mpi.compute``, ``qgt_mpi.models``, ...)."""
    import importlib

    if name == "models":
        return importlib.import_module("qgt_mpi.models")
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'qgt_mpi' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (``__all__``) and what is already loaded, without importing it."""
    return sorted({*globals(), *__all__})
