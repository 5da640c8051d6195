"""Sweeps at fixed filling: μ(ν, T) solved per temperature and broadening (theory §4, §4.6–4.7).

Experiments fix the carrier density, not μ. The filling of a band group g,
ν_g(μ, T) = (1/|g|) Σ_{n∈g} n_n(μ, T) with n_n = (1/N_k) Σ_k ∫ dω f(ω − μ) A_n(ω) (the
Lorentzian spectral function of theory §3; weights.py density component), increases
monotonically with μ. It is solved for μ by bracketing and bisection on the reduced moments
of the one k-pass, separately for every (δ, T); every observable is then evaluated at the
solved μ, so the sweep axis "mu" becomes an axis "filling" and μ itself is returned as a
(n_filling, n_delta, n_T) array.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.transport.accumulate import ReducedSums

_BISECTIONS = 200  # enough to reach the floating-point resolution of μ
_EXPANSIONS = 60


def check_filling(filling: np.ndarray, bands: list[int], nbands: int) -> None:
    """Refuse fillings outside (0, 1) and band indices outside the model (ValueError)."""
    if np.any((filling <= 0) | (filling >= 1)):
        raise ValueError(f"filling {filling.tolist()}: each value must be in (0, 1)")
    if not bands or any(b < 0 or b >= nbands for b in bands):
        raise ValueError(f"filling bands {bands}: need indices in 0..{nbands - 1}")


def group_filling(reduced: ReducedSums, i_d: int, i_t: int, bands: list[int],
                  mu: np.ndarray) -> np.ndarray:
    """ν_g(μ) of the band group ``bands`` at broadening choice ``i_d``. Local."""
    total = reduced.band_occupation(i_d, i_t, bands[0], mu)
    for b in bands[1:]:
        total = total + reduced.band_occupation(i_d, i_t, b, mu)
    return total / (reduced.n_k * len(bands))


def _edges(reduced: ReducedSums, bands: list[int]) -> tuple[float, float]:
    """Lowest and highest energy of the group's bands over the grid [meV]."""
    span = reduced.occ_span[np.searchsorted(reduced.sums.occ_bands, bands)]
    return float(np.nanmin(span[:, 0])), float(np.nanmax(span[:, 1]))


def solve_mu(reduced: ReducedSums, i_d: int, i_t: int, filling: np.ndarray,
             bands: list[int]) -> np.ndarray:
    """μ with ν_g(μ, T) = filling for every target value (bracketing, bisection). Local."""
    s = reduced.sums
    low_e, high_e = _edges(reduced, bands)
    width = float(np.max(s.delta[i_d])) + K_B_MEV_PER_K * float(s.temperature[i_t])
    lo_mu = np.full(filling.size, low_e - 10 * width)
    hi_mu = np.full(filling.size, high_e + 10 * width)
    for _ in range(_EXPANSIONS):  # Lorentzian tails: widen until the targets are bracketed
        low = group_filling(reduced, i_d, i_t, bands, lo_mu) > filling
        high = group_filling(reduced, i_d, i_t, bands, hi_mu) < filling
        if not (low.any() or high.any()):
            break
        width *= 2.0
        lo_mu = np.where(low, lo_mu - width, lo_mu)
        hi_mu = np.where(high, hi_mu + width, hi_mu)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo_mu + hi_mu)
        if np.all((mid == lo_mu) | (mid == hi_mu)):
            break
        above = group_filling(reduced, i_d, i_t, bands, mid) > filling
        hi_mu = np.where(above, mid, hi_mu)
        lo_mu = np.where(above, lo_mu, mid)
    return 0.5 * (lo_mu + hi_mu)
