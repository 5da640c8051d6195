"""Size and evaluation cost of the cell representation for a full grid, from a k sample.

Used by ``dry-run``. From sample energies (a coarse grid over the whole Brillouin zone) the
expected number of full-grid energies in an interval [a, b) is λ = N_k Σ_n ΔF_n, F_n the
empirical distribution of band n (linear interpolation); a cell is occupied with
probability 1 − e^(−λ). The expected occupied cells of every level give the memory, and
the expected occupied cells of every μ's Barnes–Hut cover (lattice.accepted_ranges) give
the (cell, μ) pairs that the evaluation cost is proportional to.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.transport.lattice import EnergyLattice, accepted_ranges


def _occupancy(lat: EnergyLattice, sample: np.ndarray, nk: int, level: int,
               j: np.ndarray) -> np.ndarray:
    """Probability that full-grid cells j of ``level`` hold at least one energy."""
    w = float(lat.width(level))
    a = lat.e0 + j * w
    lam = np.zeros(j.size)
    for band in sample.T:
        e = np.sort(band)
        q = np.linspace(0.0, 1.0, e.size)
        lam += np.interp(a + w, e, q) - np.interp(a, e, q)
    return 1.0 - np.exp(-nk * lam)


def _cells(lat: EnergyLattice, level: int) -> np.ndarray:
    """Cells of ``level`` that can exist in a tree: their parent is not admissible.

    Such cells lie within 2·(2/η + 1) widths of some μ of the sweep (lattice.py eq. 1).
    """
    w = float(lat.width(level))
    if 2 * w <= lat.eta * lat.r_min:
        return np.zeros(0, np.int64)
    reach = int(np.ceil(4 / lat.eta)) + 4
    centre = np.floor((lat.mu - lat.e0) / w).astype(np.int64)
    j = np.unique((centre[:, None] + np.arange(-reach, reach + 1)[None, :]).ravel())
    parent = lat.e0 + (j >> 1) * 2 * w
    dist = lat._set_distance(parent, parent + 2 * w)
    return j[2 * w > lat.eta * np.maximum(lat.r_min, dist)]


def expected_cells(lat: EnergyLattice, sample: np.ndarray, nk: int) -> float:
    """Expected occupied cells of the tree (leaves and ancestors) for the full grid."""
    level, _ = lat.leaves(sample)
    top = int(level.max()) + 8
    return float(sum(_occupancy(lat, sample, nk, lev, _cells(lat, lev)).sum()
                     for lev in range(top)))


def expected_pairs(lat: EnergyLattice, sample: np.ndarray, nk: int, mu: np.ndarray,
                   radius: float) -> float:
    """Expected (cell, μ) pairs of the covers of all ``mu`` at analyticity radius R."""
    level, _ = lat.leaves(sample)
    top = int(level.max()) + 8
    total = 0.0
    for lev in range(top):
        cells = _cells(lat, lev)
        prob = np.r_[0.0, np.cumsum(_occupancy(lat, sample, nk, lev, cells))]
        for lo, hi in accepted_ranges(lat, lev, lev == top - 1, mu, radius):
            first = np.searchsorted(cells, lo, side="left")
            last = np.searchsorted(cells, hi, side="right")
            total += float(np.sum(np.maximum(prob[last] - prob[first], 0.0)))
    return total
