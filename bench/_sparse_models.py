"""Models of the sparse-engine benchmark (bench/bench_sparse.py).

* :func:`haldane_supercell`: the n×n supercell of the dispersive Haldane model with box
  disorder (theory §2.2, §2.7), 2n² orbitals, 10 stored entries per row.
* :func:`bilayer_graphene`: a proxy of the issue's 12 000-orbital reference matrix, an
  AB (Bernal) stacked graphene bilayer with distance-dependent π-orbital hoppings of the
  Slater–Koster form used for twisted bilayers (Moon & Koshino, PRB 85, 195458 (2012)),

      t(r) = V_ppπ(r) [1 − (z/r)²] + V_ppσ(r) (z/r)²,
      V_ppπ(r) = V_π e^{−(r − a_cc)/δ},   V_ppσ(r) = V_σ e^{−(r − d)/δ},

  with r the 3D distance of the two carbon sites, z its out-of-plane part, a_cc = a/√3 the
  carbon–carbon distance, d = 1.362 a the interlayer distance, δ = 0.184 a, V_π = −2700 meV,
  V_σ = 480 meV (graphene's values in meV), cut at r < ``cutoff`` (in units of a = 1, the
  honeycomb lattice constant of models/haldane.py). At cutoff 2.02 a its 60×50 supercell has
  12 000 rows and 5.22·10⁵ stored entries (43.5 per row; the issue's matrix: 5.5·10⁵), and
  the 2D-graph structure of an atomistic twisted bilayer (which differs by the moiré
  modulation of its interlayer terms, not by the sparsity that sets the factorisation cost).

Energies in meV; lattice unit a = 1 as in models/haldane.py.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.models.haldane import LATTICE, haldane
from qgt_mpi.models.lattice import TightBinding
from qgt_mpi.models.sparse import BondModel
from qgt_mpi.models.supercell import supercell

HALDANE = {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": np.pi / 2}  # dispersive model, meV
A_CC = 1.0 / np.sqrt(3.0)
INTERLAYER = 1.362
DECAY = 0.184
V_PI, V_SIGMA = -2700.0, 480.0  # meV


def haldane_supercell(n: int, width: float = 0.5, seed: int = 1) -> BondModel:
    """n×n supercell of the dispersive Haldane model with box disorder of full width ``width``."""
    return supercell(haldane(**HALDANE), (n, n), width, seed)


def _hopping(disp: np.ndarray) -> np.ndarray:
    """Slater–Koster π hopping for 3D displacements (..., 3) (module docstring) [meV]."""
    r = np.linalg.norm(disp, axis=-1)
    cos2 = (disp[..., 2] / r) ** 2
    v_pi = V_PI * np.exp(-(r - A_CC) / DECAY)
    v_sigma = V_SIGMA * np.exp(-(r - INTERLAYER) / DECAY)
    return v_pi * (1.0 - cos2) + v_sigma * cos2


def bilayer_graphene(cutoff: float = 2.02) -> TightBinding:
    """AB-stacked bilayer graphene primitive cell (4 orbitals) with hoppings up to ``cutoff``.

    Orbitals: A1 at 0, B1 at τ, A2 at τ (on top of B1), B2 at 2τ, τ = (a1 + a2)/3; layer 2
    at height d. Built vectorised over lattice vectors R and orbital pairs; the half list
    keeps (R, a, b) with a < b, or a = b and R lexicographically positive, and
    ``TightBinding.from_half`` adds the conjugates.
    """
    tau = (LATTICE[0] + LATTICE[1]) / 3.0
    pos2 = np.array([[0.0, 0.0], tau, tau, 2 * tau])
    height = np.array([0.0, 0.0, INTERLAYER, INTERLAYER])
    reach = int(np.ceil(cutoff / np.sqrt(3.0) * 2)) + 2
    r1, r2 = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1),
                         indexing="ij")
    R = np.column_stack([r1.ravel(), r2.ravel()])
    a, b = np.divmod(np.arange(16), 4)
    Ri, ab = np.divmod(np.arange(R.shape[0] * 16), 16)
    R, a, b = R[Ri], a[ab], b[ab]
    plane = R @ LATTICE + pos2[b] - pos2[a]
    disp = np.column_stack([plane, height[b] - height[a]])
    dist = np.linalg.norm(disp, axis=1)
    positive = (R[:, 0] > 0) | ((R[:, 0] == 0) & (R[:, 1] > 0))
    keep = (dist > 0) & (dist < cutoff) & ((a < b) | ((a == b) & positive))
    info = {"kind": "bilayer_graphene", "cutoff": float(cutoff)}
    return TightBinding.from_half(LATTICE, pos2, R[keep], a[keep], b[keep],
                                  _hopping(disp[keep]).astype(complex), info)


def bilayer_supercell(size: tuple[int, int] = (60, 50), cutoff: float = 2.02,
                      width: float = 50.0, seed: int = 1) -> BondModel:
    """Supercell of :func:`bilayer_graphene` with box disorder (default 12 000 orbitals)."""
    return supercell(bilayer_graphene(cutoff), size, width, seed)
