"""The cell tree: reduced leaf moments re-centred into every ancestor cell (energy_cells.py).

Moving a cell's Taylor moments from centre c to a parent centre c' = c − t is exact for the
orders the moments carry: with c_q = Σ_k B^(d) s^p/p! (q = d + p, s = ε − c),

    c'_m = Σ_{r=0}^{m} c_{m−r} t^r / r!,

a lower-triangular Toeplitz map. Such maps compose exactly, so a leaf's moments in any
ancestor equal a direct expansion about the ancestor's centre up to order P (plus partial
higher orders whose omission is O((η/2)^(N_SLOTS − d)) relative, below 1e-13 here).
The tree is built identically on every rank from the reduced leaves (no communication).
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.transport.energy_cells import EnergyLattice, decode


def shift_matrix(t: float, slots: int) -> np.ndarray:
    """(slots, slots) matrix T[m, q] = t^(m−q)/(m−q)! for m ≥ q, else 0."""
    out = np.zeros((slots, slots))
    for r in range(slots):
        out[np.arange(r, slots), np.arange(slots - r)] = t**r / math.factorial(r)
    return out


class CellTree:
    """Cells of every level holding moments (n_cells, n_channels, n_comp, slots).

    Attributes
    ----------
    levels : list of (j, data) per level 0..top, j sorted int64 cell indices.
    """

    def __init__(self, lattice: EnergyLattice, keys: np.ndarray, data: np.ndarray) -> None:
        self.lattice = lattice
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []
        self._channel: tuple[int | tuple[int, ...], np.ndarray] = (-1, np.zeros(0))
        # Orders never deposited (no near-degenerate series: q ≤ P + 1) are dropped; the
        # re-centring would fill them only with terms of relative size (η/2)^(P+1).
        used = np.flatnonzero(np.any(data != 0, axis=(0, 1, 2))) if data.size else np.zeros(0)
        data = data[..., : (int(used[-1]) + 1 if len(used) else 1)]
        level, j = decode(keys)
        top_leaf = int(level.max()) if keys.size else 0
        carry_j = np.zeros(0, np.int64)
        carry = np.zeros((0, *data.shape[1:]), data.dtype)
        lev = 0
        while True:
            sel = level == lev
            cj, cd = _merge(carry_j, carry, j[sel], data[sel])
            self.levels.append((cj, cd))
            if lev >= top_leaf and _is_top(cj):
                break
            carry_j, carry = self._parents(lev, cj, cd)
            lev += 1

    @property
    def top(self) -> int:
        """Index of the top level."""
        return len(self.levels) - 1

    def _parents(self, lev: int, j: np.ndarray, data: np.ndarray):
        """Moments of the parents of cells ``j`` at ``lev`` (re-centred and summed)."""
        if j.size == 0:
            return j, data
        w = float(self.lattice.width(lev))
        slots = data.shape[-1]
        odd = (j & 1).astype(bool)
        shifted = np.empty_like(data)
        for mask, t in ((~odd, -w / 2), (odd, w / 2)):
            if np.any(mask):
                shifted[mask] = data[mask] @ shift_matrix(t, slots).T
        parent = j >> 1
        starts = np.flatnonzero(np.r_[True, parent[1:] != parent[:-1]])
        return parent[starts], np.add.reduceat(shifted, starts, axis=0)

    def channel(self, ch: int | tuple[int, ...]) -> np.ndarray:
        """Moments of one channel over the cells of every level, level-major (cached).

        A tuple of channels of a one-component store (the occupations) gives them side by
        side in place of the component axis: (cells, len(ch), slots).
        """
        if self._channel[0] != ch:
            pick = (lambda d: d[:, list(ch), 0]) if isinstance(ch, tuple) else (
                lambda d: d[:, ch])
            self._channel = (ch, np.concatenate([pick(d) for _, d in self.levels]))
        return self._channel[1]

    def nbytes(self) -> int:
        """Bytes held by the tree."""
        return sum(d.nbytes + j.nbytes for j, d in self.levels)


def _is_top(j: np.ndarray) -> bool:
    """Cells that have no common ancestor left to build: none, one, or the pair (−1, 0)."""
    return j.size < 2 or (j.size == 2 and j[0] == -1 and j[1] == 0)


def _merge(j1, d1, j2, d2):
    """Union of two sorted cell sets, summing moments of shared cells."""
    if j1.size == 0:
        return j2, d2
    if j2.size == 0:
        return j1, d1
    j = np.union1d(j1, j2)
    d = np.zeros((j.size, *d1.shape[1:]), d1.dtype)
    d[np.searchsorted(j, j1)] += d1
    d[np.searchsorted(j, j2)] += d2
    return j, d
