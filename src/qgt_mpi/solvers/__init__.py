"""Eigensolvers: per-k diagonalisation returning ``Eigenpairs`` (docs/architecture.md).

``make_solver`` is the one place that chooses: the dense batched LAPACK solver (all bands,
one rank per k-point) or the windowed SLEPc solver (``nev`` bands nearest a target, one pool
of ranks per k-point), by the deck's ``[solver]`` section (io/deck_solver.py).
"""

from __future__ import annotations

from mpi4py import MPI

from qgt_mpi.solvers.base import Eigenpairs
from qgt_mpi.solvers.dense import DenseSolver

__all__ = ["DenseSolver", "Eigenpairs", "is_windowed", "make_solver", "serial_copy",
           "window_options"]


def serial_copy(solver):
    """The same solver on COMM_SELF (for samples one rank takes alone, e.g. estimates)."""
    inner = getattr(solver, "inner", None)
    if inner is not None:
        from qgt_mpi.solvers.flat import FlatBands

        return FlatBands(serial_copy(inner), solver.targets)
    if not is_windowed(solver):
        return solver
    from qgt_mpi.solvers.slepc import SlepcSolver

    return SlepcSolver(solver.opts, MPI.COMM_SELF)


def is_windowed(solver) -> bool:
    """Whether ``solver`` returns a window of bands (so bands outside it exist)."""
    return getattr(solver, "inner", solver).name != "dense"


def window_options(spec):
    """WindowOptions of the SLEPc solver from a ``SolverSpec``."""
    from qgt_mpi.solvers.slepc import WindowOptions

    return WindowOptions(nev=spec.nev, target=spec.target, tol=spec.tol, ncv=spec.ncv,
                         max_it=spec.max_it, pad=spec.pad, edge_tol=spec.edge_tol,
                         cluster_tol=spec.cluster_tol, out_of_window=spec.out_of_window,
                         resolve=None if spec.resolve == "none" else spec.resolve)


def make_solver(spec, model, pool: MPI.Comm, crossover: int):
    """The solver a ``SolverSpec`` asks for, on the pool communicator ``pool``.

    ``kind = "auto"`` takes the dense solver up to ``crossover`` orbitals, SLEPc above it;
    ``spec.flatten`` (one energy per band) sets the returned bands exactly flat
    (solvers/flat.py).
    Raises ValueError when SLEPc is chosen without ``nev`` and ``target`` or the window does
    not fit the model.
    """
    solver = _base_solver(spec, model, pool, crossover)
    if getattr(spec, "flatten", None) is None:
        return solver
    from qgt_mpi.solvers.flat import FlatBands

    flat = FlatBands(solver, spec.flatten)
    flat.check(model)
    return flat


def _base_solver(spec, model, pool: MPI.Comm, crossover: int):
    """Dense or SLEPc solver as ``spec.kind`` says (``auto``: by size)."""
    kind = spec.kind
    if kind == "auto":
        kind = "dense" if model.norb <= crossover else "slepc"
    if kind == "dense":
        return DenseSolver()
    if spec.nev is None or spec.target is None:
        raise ValueError(f"the slepc solver (chosen for {model.norb} orbitals) needs "
                         "solver.nev and solver.target")
    from qgt_mpi.solvers.slepc import SlepcSolver

    solver = SlepcSolver(window_options(spec), pool)
    solver.check(model)
    return solver
