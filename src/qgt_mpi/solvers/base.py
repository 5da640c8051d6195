"""The solver seam: the eigensolver protocol and the result every solver returns.

docs/architecture.md, "Eigenpairs". A solver is any object with the members of
:class:`Eigensolver` (structural typing): the dense solver (solvers/dense.py), the SLEPc window
(solvers/slepc.py), exactly flat bands over either (solvers/flat.py) and the valley-resolved
window basis (geometry/valley_basis.py). Code that needs to know whether bands exist outside the
returned ones asks ``solver.windowed``; code that needs the solver computing the eigenvectors
(through a decorator such as FlatBands) asks ``solver.core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from mpi4py import MPI

    from qgt_mpi.models.protocols import BlochModel


@dataclass
class Eigenpairs:
    """Eigenpairs of a batch of k-points: all bands (dense) or a window of them (theory §5).

    Attributes
    ----------
    energies : (nk, nb) float64, ascending per k.
    vectors : (nk, norb, nb) complex128, orthonormal columns.
    velocities : (2, nk, nb, nb) complex128 with v^i_nm = <n|∂_i H|m>, or None.
    metric_out : (nk, nb, 3) float64 or None
        Out-of-window part of each window band's quantum metric [xx, yy, xy],
        Re <∂_i u_n|Q|∂_j u_n> with Q = 1 − P_W (theory §5). None: the window is every band.
    curvature_out : (nk, nb) float64 or None
        Out-of-window part of the Berry curvature, −2 Im <∂_x u_n|Q|∂_y u_n> (theory §5).
    outside : (nk, 2) float64 or None
        Nearest eigenvalue below and above the window at each k (NaN where none was
        found); the window's separation from the rest of the spectrum.
    groups : (nk, nb) int or None
        Degenerate groups resolved by a symmetry operator (solvers/resolve.py, theory §5.7):
        bands with the same label ≥ 0 form one group at that k, whose basis is the
        operator's; the band geometry skips the pairs inside a group. −1: not in one.
    """

    energies: np.ndarray
    vectors: np.ndarray
    velocities: np.ndarray | None
    metric_out: np.ndarray | None = None
    curvature_out: np.ndarray | None = None
    outside: np.ndarray | None = None
    groups: np.ndarray | None = None

    @property
    def windowed(self) -> bool:
        """Whether bands outside a window contribute through the *_out fields."""
        return self.metric_out is not None


class Eigensolver(Protocol):
    """Per-k diagonalisation of a BlochModel (docs/architecture.md, "Eigenpairs").

    ``name`` labels the solver in logs and files; ``comm`` is its pool (the ranks that solve
    one k-point together; COMM_SELF for the dense solver), and :meth:`solve` is collective
    over it. ``windowed``: the solver returns a window of the bands, so bands outside it exist
    (their geometry enters through ``Eigenpairs.metric_out``/``curvature_out`` where the solver
    computes it). ``core``: the solver that computes the eigenvectors (itself, or the solver a
    decorator wraps).
    """

    @property
    def name(self) -> str: ...

    @property
    def comm(self) -> MPI.Comm: ...

    @property
    def windowed(self) -> bool: ...

    @property
    def core(self) -> Eigensolver: ...

    def bands(self, model: BlochModel) -> int:
        """Bands :meth:`solve` returns per k-point for ``model``."""
        ...

    def describe(self) -> dict[str, object]:
        """Solver facts for the output file's /solver attributes."""
        ...

    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Eigenpairs of a batch of Cartesian k (nk, 2); collective over ``comm``."""
        ...

    def serial(self) -> Eigensolver:
        """The same solver on COMM_SELF (for samples one rank takes alone, e.g. estimates)."""
        ...


class Decorator:
    """The solver facts a decorator takes from the solver it wraps (``inner``): whether it
    returns a window, the core computing the eigenvectors, the bands per k-point. Subclasses
    (FlatBands, SymmetryImages) add ``name``, ``comm``, ``describe``, ``serial`` and ``solve``.
    """

    inner: Eigensolver

    @property
    def windowed(self) -> bool:
        """A window when the inner solver's output is one."""
        return self.inner.windowed

    @property
    def core(self) -> Eigensolver:
        """The inner solver's core (it computes every eigenvector the decorator returns)."""
        return self.inner.core

    def bands(self, model: BlochModel) -> int:
        """Bands returned: those of the inner solver."""
        return self.inner.bands(model)
