"""Sweeps at fixed filling: μ(ν, T) solved per temperature and broadening (theory §4, issue 11).

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
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.parallel import allgather, block_range
from qgt_mpi.transport.accumulate import TransportSums, k_point_count
from qgt_mpi.transport.evaluate import band_occupation
from qgt_mpi.transport.observables import transport_quantities
from qgt_mpi.transport.weights import DENSITY

_BISECTIONS = 200  # enough to reach the floating-point resolution of μ
_EXPANSIONS = 60


def check_filling(filling: np.ndarray, bands: list[int], nbands: int) -> None:
    """Refuse fillings outside (0, 1) and band indices outside the model (ValueError)."""
    if np.any((filling <= 0) | (filling >= 1)):
        raise ValueError(f"filling {filling.tolist()}: each value must be in (0, 1)")
    if not bands or any(b < 0 or b >= nbands for b in bands):
        raise ValueError(f"filling bands {bands}: need indices in 0..{nbands - 1}")


def group_filling(sums: TransportSums, reduced, n_k: int, i_d: int, kt: float,
                  bands: list[int], mu: np.ndarray) -> np.ndarray:
    """ν_g(μ) of the band group ``bands`` at broadening choice ``i_d``. Local."""
    total = np.zeros(np.size(mu))
    for b in bands:
        lo, coeff = reduced[b]
        total += band_occupation(lo, coeff[i_d], sums.grid, float(sums.delta[i_d, b]),
                                 np.atleast_1d(mu), kt)
    return total / (n_k * len(bands))


def solve_mu(sums: TransportSums, reduced, n_k: int, i_d: int, i_t: int,
             filling: np.ndarray, bands: list[int]) -> np.ndarray:
    """μ with ν_g(μ, T) = filling for every target value (bisection). Local."""
    kt = K_B_MEV_PER_K * float(sums.temperature[i_t])
    h, e0 = sums.grid
    edges = []
    for b in bands:
        lo, coeff = reduced[b]
        used = np.nonzero(np.any(coeff[i_d, :, DENSITY] != 0, axis=1))[0]
        edges += [e0 + (lo + used.min()) * h, e0 + (lo + used.max()) * h]
    width = float(np.max(sums.delta[i_d])) + kt
    lo_mu = np.full(filling.size, min(edges) - 10 * width)
    hi_mu = np.full(filling.size, max(edges) + 10 * width)
    for _ in range(_EXPANSIONS):  # Lorentzian tails: widen until the targets are bracketed
        low = group_filling(sums, reduced, n_k, i_d, kt, bands, lo_mu) > filling
        high = group_filling(sums, reduced, n_k, i_d, kt, bands, hi_mu) < filling
        if not (low.any() or high.any()):
            break
        width *= 2.0
        lo_mu = np.where(low, lo_mu - width, lo_mu)
        hi_mu = np.where(high, hi_mu + width, hi_mu)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo_mu + hi_mu)
        if np.all((mid == lo_mu) | (mid == hi_mu)):
            break
        above = group_filling(sums, reduced, n_k, i_d, kt, bands, mid) > filling
        hi_mu = np.where(above, mid, hi_mu)
        lo_mu = np.where(above, lo_mu, mid)
    return 0.5 * (lo_mu + hi_mu)


def finish_filling(sums: TransportSums, comm: MPI.Comm, norm: float, degeneracy: float,
                   filling: np.ndarray, bands: list[int]) -> dict[str, np.ndarray]:
    """All theory §4 observables at fixed filling of the band group ``bands``.

    Collective over ``comm`` (all ranks call it with the same arguments). Arrays have shape
    (n_filling, n_delta, n_T); ``mu`` holds the solved chemical potentials [meV].
    """
    filling = np.asarray(filling, dtype=float)
    check_filling(filling, list(bands), sums.delta.shape[1])
    reduced = sums.moments.reduce(comm)
    n_k = k_point_count(reduced)
    n_d, n_t, n_f = len(sums.delta), sums.temperature.size, filling.size
    units = [(i_d, i_t) for i_d in range(n_d) for i_t in range(n_t)]
    start, stop = block_range(len(units), comm.size, comm.rank)
    local = {}
    for u in range(start, stop):
        mu = solve_mu(sums, reduced, n_k, *units[u], filling, list(bands))
        local[u] = (mu, *sums._point(reduced, *units[u], mu))
    sym = np.zeros((3, 4, n_f, n_d, n_t))
    hall = np.zeros((3, n_f, n_d, n_t))
    occupation = np.zeros((sums.delta.shape[1], n_f, n_d, n_t))
    mu_all = np.zeros((n_f, n_d, n_t))
    for part in allgather(comm, local):
        for u, (mu, s, hl, n) in part.items():
            i_d, i_t = units[u]
            mu_all[:, i_d, i_t] = mu
            sym[:, :, :, i_d, i_t] = s / norm
            hall[:, :, i_d, i_t] = hl / norm
            occupation[:, :, i_d, i_t] = n / n_k
    sums.add_below(hall)  # filled bands below a solver window (theory §5)
    out = transport_quantities(sym, hall, sums.temperature, degeneracy, occupation)
    out["mu"] = mu_all
    return out
