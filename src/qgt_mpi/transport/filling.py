"""Sweeps at fixed filling: μ(ν, T) solved per temperature and broadening (theory §4, §4.6–4.7).

Experiments fix the carrier density, not μ. The filling of a band group g,
ν_g(μ, T) = (1/|g|) Σ_{n∈g} n_n(μ, T) with n_n = (1/N_k) Σ_k ∫ dω f(ω − μ) A_n(ω) (the
Lorentzian spectral function of theory §3; weights.py density component), increases
monotonically with μ. It is solved for μ by bracketing and a safeguarded false-position
(Illinois) iteration on the reduced moments
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
    """μ with ν_g(μ, T) = filling for every target value (bracketing, then the Illinois
    false-position iteration, safeguarded by bisection, to the floating-point resolution of
    μ). Local."""
    s = reduced.sums
    low_e, high_e = _edges(reduced, bands)
    width = float(np.max(s.delta[i_d])) + K_B_MEV_PER_K * float(s.temperature[i_t])
    lo_mu = np.full(filling.size, low_e - 10 * width)
    hi_mu = np.full(filling.size, high_e + 10 * width)
    for _ in range(_EXPANSIONS):  # Lorentzian tails: widen until the targets are bracketed
        f_lo = group_filling(reduced, i_d, i_t, bands, lo_mu) - filling
        f_hi = group_filling(reduced, i_d, i_t, bands, hi_mu) - filling
        low, high = f_lo > 0, f_hi < 0
        if not (low.any() or high.any()):
            break
        width *= 2.0
        lo_mu = np.where(low, lo_mu - width, lo_mu)
        hi_mu = np.where(high, hi_mu + width, hi_mu)
    return _illinois(lambda mu: group_filling(reduced, i_d, i_t, bands, mu) - filling,
                     lo_mu, hi_mu, f_lo, f_hi)


def _illinois(f, lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray
              ) -> np.ndarray:
    """Roots of the increasing f (vectorised over targets) in [lo, hi], f(lo) ≤ 0 ≤ f(hi).

    Each step tries the false-position point of the bracket; an endpoint kept twice has its
    f halved (Illinois), and the midpoint replaces a step outside the bracket or, every
    third step, one after which the bracket has not halved in three steps, so convergence is
    never much slower than bisection. A target is done when its bracket's midpoint is one of
    its ends (as bisection stops) or when two successive points agree to 4 ulp (the
    superlinear iteration has converged; then both ends are set to the last point).
    """
    lo, hi, f_lo, f_hi = (np.array(x, dtype=float) for x in (lo, hi, f_lo, f_hi))
    side = np.zeros(lo.size, dtype=int)  # end replaced last step: +1 hi, −1 lo, 0 none
    ref, prev = hi - lo, np.full(lo.size, np.nan)  # bracket width three steps ago
    for step in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        active = (mid != lo) & (mid != hi)
        if not active.any():
            break
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            x = lo - f_lo * (hi - lo) / (f_hi - f_lo)
        slow = (hi - lo > 0.5 * ref) if step % 3 == 2 else np.zeros(lo.size, bool)
        if step % 3 == 2:
            ref = hi - lo
        x = np.where(~np.isfinite(x) | (x <= lo) | (x >= hi) | slow, mid, x)
        x = np.where(active, x, mid)
        fx = f(x)
        up, down = active & (fx > 0), active & (fx < 0)
        f_lo = np.where(up & (side == 1), 0.5 * f_lo, f_lo)  # lo kept twice: Illinois
        f_hi = np.where(down & (side == -1), 0.5 * f_hi, f_hi)
        hi, f_hi = np.where(up, x, hi), np.where(up, fx, f_hi)
        lo, f_lo = np.where(down, x, lo), np.where(down, fx, f_lo)
        side = np.where(up, 1, np.where(down, -1, side))
        close = np.abs(x - prev) <= 4 * np.spacing(np.maximum(np.abs(x), np.abs(prev)))
        settled = active & ((fx == 0) | close)
        lo, hi = np.where(settled, x, lo), np.where(settled, x, hi)
        prev = x
    return 0.5 * (lo + hi)
