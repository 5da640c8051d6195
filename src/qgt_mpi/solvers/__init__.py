"""Eigensolvers: per-k diagonalisation returning ``Eigenpairs`` (docs/architecture.md).

``make_solver`` is the one place that chooses: the dense batched LAPACK solver (all bands,
one rank per k-point) or the windowed SLEPc solver (``nev`` bands nearest a target, one pool
of ranks per k-point), by the deck's ``[solver]`` section (io/deck_solver.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mpi4py import MPI

from qgt_mpi.solvers.base import Eigenpairs, Eigensolver
from qgt_mpi.solvers.dense import DenseSolver

if TYPE_CHECKING:
    from qgt_mpi.io.deck_solver import SolverSpec
    from qgt_mpi.models.protocols import BlochModel
    from qgt_mpi.solvers.slepc import WindowOptions

__all__ = ["DenseSolver", "Eigenpairs", "Eigensolver", "is_windowed", "make_solver",
           "window_options"]


def is_windowed(solver: Eigensolver) -> bool:
    """Whether ``solver`` returns a window of bands (so bands outside it exist):
    ``solver.windowed``."""
    return solver.windowed


def window_options(spec: SolverSpec) -> WindowOptions:
    """WindowOptions of the SLEPc solver from a ``SolverSpec``.

    Raises ValueError when the spec has no ``nev`` or ``target``.
    """
    from qgt_mpi.solvers.slepc import WindowOptions

    if spec.nev is None or spec.target is None:
        raise ValueError("a window needs solver.nev and solver.target")

    return WindowOptions(nev=spec.nev, target=spec.target, tol=spec.tol, ncv=spec.ncv,
                         max_it=spec.max_it, pad=spec.pad, edge_tol=spec.edge_tol,
                         cluster_tol=spec.cluster_tol, out_of_window=spec.out_of_window,
                         resolve=None if spec.resolve == "none" else spec.resolve)


def make_solver(spec: SolverSpec, model: BlochModel, pool: MPI.Comm,
                crossover: int) -> Eigensolver:
    """The solver a ``SolverSpec`` asks for, on the pool communicator ``pool``.

    ``kind = "auto"`` takes the dense solver up to ``crossover`` orbitals, SLEPc above it;
    ``spec.flatten`` (one energy per band) sets the returned bands exactly flat
    (solvers/flat.py).
    Raises ValueError when SLEPc is chosen without ``nev`` and ``target`` or the window does
    not fit the model.
    """
    solver = _base_solver(spec, model, pool, crossover)
    if spec.flatten is not None:
        from qgt_mpi.solvers.flat import FlatBands

        solver = FlatBands(solver, spec.flatten)
        solver.check(model)
    if spec.accelerate == "symmetry":  # opt-in: eigenpairs at star images (§5.11)
        from qgt_mpi.models.symmetry import find_operations
        from qgt_mpi.solvers.images import SymmetryImages

        return SymmetryImages(solver, find_operations(model))
    return solver


def _base_solver(spec: SolverSpec, model: BlochModel, pool: MPI.Comm,
                 crossover: int) -> Eigensolver:
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
    if spec.accelerate == "basis":  # opt-in: Rayleigh–Ritz in a reduced basis (§5.10)
        from qgt_mpi.solvers.accelerate import AccelOptions, ReducedBasis

        return ReducedBasis(solver, AccelOptions(tol=spec.accelerate_tol,
                                                 energy_tol=spec.accelerate_energy_tol,
                                                 max_basis=spec.accelerate_max_basis))
    return solver
