"""Eigensolvers: per-k diagonalisation returning ``Eigenpairs`` (docs/architecture.md).

``make_solver`` is the one place that chooses: the dense batched LAPACK solver (all bands,
one rank per k-point) or the windowed SLEPc solver (``nev`` bands nearest a target, one pool
of ranks per k-point), by the deck's ``[solver]`` section (io/deck_solver.py).
"""

from __future__ import annotations

from mpi4py import MPI

from qgt_mpi.solvers.base import Eigenpairs
from qgt_mpi.solvers.dense import DenseSolver

__all__ = ["DenseSolver", "Eigenpairs", "make_solver", "window_options"]


def window_options(spec):
    """WindowOptions of the SLEPc solver from a ``SolverSpec``."""
    from qgt_mpi.solvers.slepc import WindowOptions

    return WindowOptions(nev=spec.nev, target=spec.target, tol=spec.tol, ncv=spec.ncv,
                         max_it=spec.max_it, pad=spec.pad, edge_tol=spec.edge_tol,
                         out_of_window=spec.out_of_window)


def make_solver(spec, model, pool: MPI.Comm, crossover: int):
    """The solver a ``SolverSpec`` asks for, on the pool communicator ``pool``.

    ``kind = "auto"`` takes the dense solver up to ``crossover`` orbitals, SLEPc above it.
    Raises ValueError when SLEPc is chosen without ``nev`` and ``target`` or the window does
    not fit the model.
    """
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
