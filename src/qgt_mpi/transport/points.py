"""Point masses: cells whose weights all sit at one energy (flat bands), evaluated exactly.

A flat band (an exactly flattened model, theory §7, or `solver.flatten`) puts every one of
its N_k weights at the same energy ε_p. In a cell of the tree those weights are Taylor
moments about the cell centre, offset by s = ε_p − centre, so every order up to the cell's
truncation order is occupied and each evaluation needs that many kernel derivatives, in
every ancestor again. Expanded about ε_p itself the moments are just the weights' own
orders (B^(0), B^(1) and the near-degenerate series): c'_q = Σ_k B^(d)(k) (ε_k − ε_p)^p/p!
with |ε_k − ε_p| ≤ spread/2. A leaf is a *point* when its energies spread by at most
POINT_SPREAD·R_min (so the dropped orders p ≥ 2 are below (POINT_SPREAD/2)² = 2.5e-15
relative, Cauchy's estimate with radius R_min) and it holds at least half as many
deposits as there are k-points (a flat band, not a leaf that happens to hold a single
k-point of a dispersive band): at most two per band and channel. Points leave the tree;
their kernels are evaluated at ε_p directly (evaluate.evaluate_points), with only the
orders they carry, which is exact and cheaper than the cover for huge sweeps of flat bands
(docs/performance.md §10, case 3).
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.transport.energy_cells import P_CELL, EnergyLattice, decode
from qgt_mpi.transport.tree import shift_matrix
from qgt_mpi.transport.weights import DENSITY_WEIGHT

POINT_SPREAD = 1e-7  # largest energy spread of a point, in units of R_min
_ORDER_FLOOR = 1e-16  # orders whose terms are below this relative size are dropped


def split_points(lattice: EnergyLattice, keys: np.ndarray, data: np.ndarray,
                 emin: np.ndarray, emax: np.ndarray, density: int, n_k: int):
    """Move point cells out of reduced leaves. Local (identical on every rank).

    Parameters
    ----------
    keys, data : reduced leaves (cells, channels, comp, slots); ``data`` is changed in place
        (the points' moments are zeroed there).
    emin, emax : (cells,) lowest and highest energy deposited in each leaf.
    density : component holding the DENSITY weight (its order 0 counts the deposits).
    n_k : k-points of the grid.

    Returns
    -------
    list over channels of (energies (n_p,), moments (n_p, comp, slots_p)).
    """
    n_ch = data.shape[1]
    empty = (np.zeros(0), np.zeros((0, data.shape[2], 1), data.dtype))
    if keys.size == 0 or n_k == 0:
        return [empty] * n_ch
    count = data[:, :, density, 0].real / DENSITY_WEIGHT  # deposits per (cell, channel)
    narrow = (emax - emin) <= POINT_SPREAD * lattice.r_min
    level, j = decode(keys)
    centre = lattice.centre(level, j)
    out = []
    for ch in range(n_ch):
        rows = np.flatnonzero(narrow & (count[:, ch] >= 0.5 * n_k))
        if rows.size == 0:
            out.append(empty)
            continue
        energy = 0.5 * (emin[rows] + emax[rows])
        moved = np.stack([data[r, ch] @ shift_matrix(float(centre[r] - e), data.shape[-1]).T
                          for r, e in zip(rows, energy, strict=True)])
        data[rows, ch] = 0.0
        out.append((energy, moved[..., : _orders(moved, lattice.r_min)]))
    return out


def _orders(moments: np.ndarray, radius: float) -> int:
    """Orders to keep: at most P_CELL (the weights' own orders d ≤ N_NEAR_ORDERS < P_CELL; the
    orders above P_CELL of a leaf are truncation remainders, ≈ 0 about ε_p), and of those
    the ones whose terms |c_q| q!/R^q reach _ORDER_FLOOR of the largest."""
    q = np.arange(min(moments.shape[-1], P_CELL + 1))
    moments = moments[..., : q.size]
    scale = np.exp(np.array([math.lgamma(k + 1) for k in q]) - q * math.log(radius))
    size = np.max(np.abs(moments), axis=(0, 1)) * scale
    keep = np.flatnonzero(size > _ORDER_FLOOR * size.max()) if size.max() > 0 else [0]
    return int(keep[-1]) + 1
