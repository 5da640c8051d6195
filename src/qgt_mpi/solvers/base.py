"""The result type every solver returns (docs/architecture.md, "Eigenpairs")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
