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

from qgt_mpi.transport.energy_cells import EnergyLattice, accepted_ranges


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


MAX_CANDIDATES = 1 << 22  # cells enumerated per level; beyond, a stride samples them


def _stride(lat: EnergyLattice, level: int, lo: float, hi: float) -> int:
    """Every how many cells :func:`_cells` takes one at ``level`` (1: all of them).

    A fixed-filling sweep at tiny δ + π k_B T has a uniform level 0 of bandwidth/h cells
    (10¹⁰ at T = δ = 10⁻⁹: it allocated 58 GiB inside ``dry-run`` and the memory check);
    a strided sample of at most MAX_CANDIDATES cells, each counted ``stride`` times, keeps
    the estimate's size bounded (each sampled cell stands for its neighbours).
    """
    w = float(lat.width(level))
    count = (hi - lo) / w + 2
    return max(1, int(np.ceil(count / MAX_CANDIDATES))) if lat.anywhere and level == 0 else 1


def _cells(lat: EnergyLattice, level: int, lo: float, hi: float) -> np.ndarray:
    """Cells of ``level`` within [lo, hi] that can exist in a tree: their parent is not
    admissible (energy_cells.py eq. 1). Candidates are the cells near some μ of the sweep
    (within 2·(2/η + 1) widths) or every cell of [lo, hi], whichever is fewer (every
    :func:`_stride`-th one for a huge uniform level 0).
    """
    w = float(lat.width(level))
    if 2 * w <= lat.eta * lat.r_min:
        return np.zeros(0, np.int64)
    reach = int(np.ceil(4 / lat.eta)) + 4
    j_lo, j_hi = int(np.floor((lo - lat.e0) / w)), int(np.floor((hi - lat.e0) / w))
    if lat.anywhere:  # a uniform level 0 only (no tree above it)
        if level:
            return np.zeros(0, np.int64)
        return np.arange(j_lo, j_hi + 1, _stride(lat, level, lo, hi), dtype=np.int64)
    if lat.anywhere or j_hi - j_lo + 1 <= lat.mu.size * (2 * reach + 1):
        j = np.arange(j_lo, j_hi + 1, dtype=np.int64)
    else:
        centre = np.floor((lat.mu - lat.e0) / w).astype(np.int64)
        j = np.unique((centre[:, None] + np.arange(-reach, reach + 1)[None, :]).ravel())
        j = j[(j >= j_lo) & (j <= j_hi)]
    if lat.anywhere:
        return j if level == 0 else np.zeros(0, np.int64)
    parent = lat.e0 + (j >> 1) * 2 * w
    dist = lat._set_distance(parent, parent + 2 * w)
    return j[2 * w > lat.eta * np.maximum(lat.r_min, dist)]


def expected_cells(lat: EnergyLattice, sample: np.ndarray, nk: int) -> float:
    """Expected occupied cells of the tree (leaves and ancestors) for the full grid."""
    level, _ = lat.leaves(sample)
    top = int(level.max()) + 8
    lo, hi = float(sample.min()), float(sample.max())
    return float(sum(_stride(lat, lev, lo, hi)
                     * _occupancy(lat, sample, nk, lev, _cells(lat, lev, lo, hi)).sum()
                     for lev in range(top)))


def expected_pairs(lat: EnergyLattice, sample: np.ndarray, nk: int, mu: np.ndarray,
                   radius: float) -> float:
    """Expected (cell, μ) pairs of the covers of all ``mu`` at analyticity radius R."""
    level, _ = lat.leaves(sample)
    top = int(level.max()) + 8
    total = 0.0
    e_lo, e_hi = float(sample.min()), float(sample.max())
    for lev in range(top):
        cells = _cells(lat, lev, e_lo, e_hi)
        weight = _stride(lat, lev, e_lo, e_hi)
        prob = np.r_[0.0, np.cumsum(weight * _occupancy(lat, sample, nk, lev, cells))]
        for lo, hi in accepted_ranges(lat, lev, lev == top - 1, mu, radius):
            first = np.searchsorted(cells, lo, side="left")
            last = np.searchsorted(cells, hi, side="right")
            total += float(np.sum(np.maximum(prob[last] - prob[first], 0.0)))
    return total
