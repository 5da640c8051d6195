"""Dyadic energy cells that widen with the distance to the sweep's chemical potentials.

Why this representation (theory §3, §4.3). The kernels of one broadening channel are
functions of ε − μ − iδ whose singularities nearest to the real ε axis sit at
ε = μ + i(δ + (2n+1)πk_BT) (poles of the digamma family, theory §3). Seen from a cell of
width w whose interval is at distance d from μ, they are analytic in a disk of radius
ρ ≥ max(d + w/2, R) about the cell centre, R = δ + πk_BT. A cell is *admissible* for μ when

    w ≤ η · max(R, d),                                                   (1)

and then a Taylor expansion about the centre (offsets |s| ≤ w/2, so |s|/ρ ≤ η/2) truncated
at order P errs by at most (η/2)^(P+1)/(1 − η/2) relative to Σ_k |B| max|F| on the disk
(Cauchy's estimate). Cells live on a global dyadic lattice: level ℓ has width h·2^ℓ,
h = η R_min, cell j of level ℓ is [e0 + j h 2^ℓ, e0 + (j+1) h 2^ℓ), its parent is j >> 1.

* **Leaves** (where k-point weights are deposited): the coarsest cell holding ε that is
  admissible for *every* μ of the sweep at R_min. Fine cells are only needed near some μ;
  between chemical potentials and outside the sweep window the cells double in width with
  the distance, so the number of leaves per gap grows like log(gap / R_min)/η instead of
  gap/(η R_min).
* **Tree**: leaf moments are re-centred into every ancestor (exactly, see tree.py).
* **Evaluation** for one μ uses, for each leaf, its coarsest admissible ancestor (a
  Barnes–Hut cover): about 2/η cells per level and side, so the cost per sweep point is
  O(log(bandwidth/R)/η), independent of the k-grid, of the band count (channels add the
  moments of bands sharing δ) and of bandwidth/(δ + πk_BT) up to that logarithm.

Admissibility is monotone along ancestor chains (a parent admissible ⇒ its children are),
so the coarsest admissible ancestor is well defined and every leaf is used exactly once.
Cells are global (functions of the sweep only), so ranks agree on them without talking.
An FFT over a uniform part of the grid was the alternative; it needs the uniform fine
lattice (size bandwidth/(η R)) that this scheme avoids, so it is not used.
"""

from __future__ import annotations

import math

import numpy as np

ETA_CELL = 0.1  # admissibility: cell width ≤ η · max(R, distance), eq. (1)
P_CELL = 9  # Taylor order of the offsets: bound (η/2)^(P+1)/(1 − η/2) = 1.0e-13
LEVEL_BITS = 58  # key = level << LEVEL_BITS | (j + 2^(LEVEL_BITS-1))
_J_OFFSET = 1 << (LEVEL_BITS - 1)
_SAFETY = 1.0 - 1e-9  # leaves are chosen with a stricter (1) so evaluation always accepts them


def truncation_bound(eta: float = ETA_CELL, order: int = P_CELL) -> float:
    """Relative truncation bound (η/2)^(P+1)/(1 − η/2) of one cell's Taylor moments."""
    r = eta / 2
    return r ** (order + 1) / (1 - r)


class EnergyLattice:
    """The cell lattice of one sweep (same on every rank).

    Parameters
    ----------
    mu : chemical potentials of the sweep [meV].
    r_min : smallest analyticity radius min δ + π k_B T_min of the sweep [meV].
    anywhere : leaves admissible for every μ (all of level 0, the uniform lattice of width
        h): needed when the chemical potentials are not known during the k-pass (sweeps at
        fixed filling solve μ afterwards). Costs bandwidth/h cells per band.
    """

    def __init__(self, mu: np.ndarray, r_min: float, eta: float = ETA_CELL,
                 anywhere: bool = False) -> None:
        self.anywhere = anywhere
        self.mu = np.unique(np.asarray(mu, dtype=float))
        self.r_min = float(r_min)
        self.eta = eta
        self.h = eta * self.r_min
        steps = np.diff(self.mu)
        if steps.size and np.allclose(steps, steps[0], rtol=1e-9, atol=0):
            # μ on the lattice: h = step / 2^p, so cell centres and μ share anchors
            self.h = steps[0] / 2.0 ** math.ceil(math.log2(steps[0] / self.h))
        self.e0 = float(self.mu[0])

    def width(self, level: int | np.ndarray) -> np.ndarray | float:
        """Cell width h·2^ℓ of a level [meV]."""
        return self.h * np.exp2(level)

    def centre(self, level: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Cell centres [meV]."""
        w = self.width(level)
        return self.e0 + (j + 0.5) * w

    def _set_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distance from intervals [a, b] to the nearest μ of the sweep (0 if one is inside)."""
        mu = self.mu
        idx = np.searchsorted(mu, a, side="left")
        right = np.where(idx < mu.size, mu[np.minimum(idx, mu.size - 1)] - b, np.inf)
        left = np.where(idx > 0, a - mu[np.maximum(idx - 1, 0)], np.inf)
        return np.maximum(np.minimum(left, right), 0.0)

    def leaves(self, energies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(level, j) of the leaf cell holding each energy, eq. (1) at R_min. Local.

        The leaf is the coarsest admissible cell; admissibility is monotone in the level,
        so the loop stops at the first level where no energy is admissible any more.
        """
        u = np.floor((np.asarray(energies, dtype=float).ravel() - self.e0) / self.h)
        base = u.astype(np.int64)
        level = np.zeros(base.size, dtype=np.int64)
        active = np.arange(0 if self.anywhere else base.size)
        lev = 1
        while active.size:
            j = base[active] >> lev
            w = self.width(lev)
            a = self.e0 + j * w
            dist = self._set_distance(a, a + w)
            ok = w <= self.eta * np.maximum(self.r_min, dist) * _SAFETY
            level[active[ok]] = lev
            active = active[ok]
            lev += 1
        shape = np.shape(energies)
        return level.reshape(shape), (base >> level.ravel()).reshape(shape)

    def offsets(self, energies: np.ndarray, level: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Offsets s = ε − centre of each energy in its cell [meV]."""
        return np.asarray(energies, dtype=float) - self.centre(level, j)


def encode(level: np.ndarray, j: np.ndarray) -> np.ndarray:
    """One sortable int64 key per cell (level-major, then j)."""
    return (np.asarray(level, np.int64) << LEVEL_BITS) | (np.asarray(j, np.int64) + _J_OFFSET)


def decode(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode`: (level, j)."""
    key = np.asarray(key, np.int64)
    return key >> LEVEL_BITS, (key & ((1 << LEVEL_BITS) - 1)) - _J_OFFSET


def accepted_ranges(lattice: EnergyLattice, level: int, top: bool, mu: np.ndarray,
                    radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cell-index ranges [lo, hi] at ``level`` used for each μ (Barnes–Hut cover). Local.

    A cell is used for μ when it is admissible (eq. 1 with R = ``radius``) and its parent
    is not (or ``top``: the level has no parents). Returns one or two (lo, hi) pairs of
    int arrays over μ; empty ranges have hi < lo.
    """
    w = lattice.width(level)
    big = np.iinfo(np.int64).max // 4
    x = (np.asarray(mu, dtype=float) - lattice.e0) / w
    all_ok = level == 0 or w <= lattice.eta * radius  # leaves of level 0: always
    if top:
        p_lo = np.full(x.shape, -big, dtype=np.int64)
        p_hi = np.full(x.shape, big, dtype=np.int64)
    elif 2 * w <= lattice.eta * radius:
        return []  # every parent is admissible: nothing is used at this level
    else:
        dp = 1.0 / lattice.eta  # parent distance threshold 2w/η in parent widths
        xp = x / 2
        # parents not admissible: jp with jp > floor(xp - dp) - 1 and jp < ceil(xp + dp)
        p_lo = 2 * (np.floor(xp - dp).astype(np.int64))
        p_hi = 2 * (np.ceil(xp + dp).astype(np.int64) - 1) + 1
    if all_ok:
        return [(p_lo, p_hi)]
    d = 1.0 / lattice.eta  # own threshold w/η in widths
    jl = np.floor(x - d).astype(np.int64) - 1  # a_j + w ≤ μ − D
    jr = np.ceil(x + d).astype(np.int64)  # a_j ≥ μ + D
    return [(p_lo, np.minimum(jl, p_hi)), (np.maximum(jr, p_lo), p_hi)]
