"""The result type every solver returns (docs/architecture.md, "Eigenpairs")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Eigenpairs:
    """Eigenpairs of a batch of k-points.

    Attributes
    ----------
    energies : (nk, nb) float64, ascending per k.
    vectors : (nk, norb, nb) complex128, orthonormal columns.
    velocities : (2, nk, nb, nb) complex128 with v^i_nm = <n|∂_i H|m>, or None.
    """

    energies: np.ndarray
    vectors: np.ndarray
    velocities: np.ndarray | None
