"""Evaluate reduced bin moments over the sweep: the k-sums of theory §4 for every (μ, δ, T).

For one band n, one broadening choice and one temperature, the moments c_{j,q} of
binning.py give, for every chemical potential μ_i,

    S_sym(a, comp, μ_i) = Σ_j Σ_q Re[c_{j,comp,q} K_a^(q)(E_j − μ_i − iδ_n)]    (theory §3, §4)
    S_hall(a, μ_i)      = Σ_j Σ_q Im[c_{j,hall,q} Λ_a^(q)(E_j − μ_i − iδ_n)]
    n(μ_i)              = Σ_j Σ_q Im[c_{j,density,q} Λ_0^(q)(E_j − μ_i − iδ_n)]

Λ_a (a = 0, 1, 2) are the Cauchy transforms whose divided differences give the Hall energy
moments Y^(a) (kernels.hall_moments, theory §4 "Full tensors"): the Hall weights do not depend
on a, only the kernel family does, so the one set of moments serves σ_xy, L^(1)_xy, L^(2)_xy.

Kernel values are needed at E_j − μ_i only. When the μ grid lies on bin centres
(binning.bin_grid arranges that for evenly spaced sweeps) those points are shared anchors
(j − l_i)h, evaluated once each and corrected for the rounding residue r_i of μ_i by a short
Taylor shift; otherwise the kernels are evaluated at every (bin, μ) point. The contraction
over bins and orders is one matrix product per kernel and μ block.
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.kernels.closed import k_series, lambda_series
from qgt_mpi.kernels.hall_moments import lambda_moments
from qgt_mpi.transport.weights import DENSITY, HALL, SYMMETRIC

_BLOCK_ELEMENTS = 2_000_000  # kernel-table elements held at once (memory bound)


def evaluate_band(
    lo: int,
    coeff: np.ndarray,
    grid: tuple[float, float],
    delta_n: float,
    mu: np.ndarray,
    kt: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums for one band, broadening and temperature over all ``mu``. Local, no communication.

    Parameters
    ----------
    lo : global index of the first bin of ``coeff``.
    coeff : (nbins, len(COMPONENTS), slots) complex moments for this band and broadening choice.
    grid : (h, e0) bin width and origin [meV].
    delta_n : the band's broadening [meV].
    mu : (nmu,) chemical potentials [meV].
    kt : k_B T [meV].

    Returns
    -------
    sym : (3, 4, nmu) Re-sums for a = 0, 1, 2 and the four symmetric components.
    hall : (3, nmu) Im-sums of the Hall component with Λ_a, a = 0, 1, 2.
    density : (nmu,) occupation of the band per cell (times N_k A_c, like the other sums).
    """
    mu = np.asarray(mu, dtype=float)
    sym = np.zeros((3, len(SYMMETRIC), mu.size))
    hall = np.zeros((3, mu.size))
    density = np.zeros(mu.size)
    used = np.nonzero(np.any(coeff != 0, axis=(1, 2)))[0]
    if used.size == 0:
        return sym, hall, density
    slots = int(np.max(np.nonzero(np.any(coeff[used] != 0, axis=(0, 1)))[0])) + 1
    c = coeff[used, :, :slots]
    h, e0 = grid
    l_idx = np.rint((mu - e0) / h).astype(np.int64)
    resid = (mu - e0) - l_idx * h
    radius = delta_n + math.pi * kt
    if np.max(np.abs(resid)) <= 1e-6 * h:
        tables = _anchored_tables(lo + used, l_idx, resid, h, delta_n, kt, slots, radius)
    else:
        tables = _direct_tables(e0 + (lo + used) * h, mu, delta_n, kt, slots)
    # Hall moments a = 1, 2: Σ_q c_q Λ_a^(q) = c_0 Λ_a − Σ_{q≥1} c_q K_a^(q−1) (Λ_a' = −K_a),
    # so they reuse the K tables of the symmetric sums and need only Λ_a itself.
    c_hall = c[:, HALL, :]
    c_next = np.concatenate([c_hall[:, 1:], np.zeros_like(c_hall[:, :1])], axis=1).reshape(-1)
    for block, (k_tab, lam_tab, lam12) in tables:
        # c: (rows, comp, t) with tables (.., t, rows, m) → matrix product over (rows, t).
        lhs = c.transpose(1, 0, 2).reshape(c.shape[1], -1)
        for a in range(3):
            rhs = k_tab[a].transpose(1, 0, 2).reshape(-1, k_tab.shape[-1])
            sym[a, :, block] = (lhs[list(SYMMETRIC)] @ rhs).real
            if a:
                hall[a, block] = (c_hall[:, 0] @ lam12[a - 1] - c_next @ rhs).imag
        rhs = lam_tab.transpose(1, 0, 2).reshape(-1, lam_tab.shape[-1])
        hall[0, block] = (lhs[HALL] @ rhs).imag
        density[block] = (lhs[DENSITY] @ rhs).imag
    return sym, hall, density


def band_occupation(lo: int, coeff: np.ndarray, grid: tuple[float, float], delta_n: float,
                    mu: np.ndarray, kt: float) -> np.ndarray:
    """Occupation sum of one band at arbitrary ``mu`` (DENSITY component only). Local.

    Cheap path for the μ(ν, T) solver: Λ_0 tables at every (bin, μ) point, no K tables.
    """
    mu = np.asarray(mu, dtype=float)
    c = coeff[:, DENSITY]
    used = np.nonzero(np.any(c != 0, axis=1))[0]
    if used.size == 0:
        return np.zeros(mu.size)
    slots = int(np.max(np.nonzero(np.any(c[used] != 0, axis=0))[0])) + 1
    energies = grid[1] + (lo + used) * grid[0]
    zeta = energies[:, None] - mu[None, :] - 1j * delta_n
    lam = lambda_series(zeta, kt, slots - 1)  # (slots, rows, nmu)
    return np.einsum("rq,qrm->m", c[used, :slots], lam).imag


def _lambda_12(zeta: np.ndarray, kt: float) -> np.ndarray:
    """Λ_1(ζ), Λ_2(ζ) of the Hall energy moments (kernels.hall_moments); (2, ...)."""
    return np.stack([lambda_moments(a, zeta, kt, 0)[0] for a in (1, 2)])


def _blocks(nmu: int, per_mu: int):
    """Slices of μ indices so that one block's tables stay under the memory bound."""
    step = max(1, _BLOCK_ELEMENTS // max(per_mu, 1))
    return [slice(i, min(i + step, nmu)) for i in range(0, nmu, step)]


def _shift_order(resid: np.ndarray, radius: float) -> int:
    """Taylor order S with (max|r|/R)^(S+1) below 1e-16 (Cauchy bound)."""
    ratio = float(np.max(np.abs(resid))) / radius
    if ratio == 0.0:
        return 0
    return max(0, math.ceil(math.log(1e-16) / math.log(ratio)) - 1)


def _anchored_tables(bins, l_idx, resid, h, delta_n, kt, slots, radius):
    """Kernel tables from shared anchors (j − l_i)h, Taylor-shifted by −r_i."""
    order = _shift_order(resid, radius)
    anchors = bins[:, None] - l_idx[None, :]
    unique, inverse = np.unique(anchors, return_inverse=True)
    inverse = inverse.reshape(anchors.shape)
    zeta = unique * h - 1j * delta_n
    k_all = k_series(zeta, kt, slots - 1 + order)
    lam_all = lambda_series(zeta, kt, slots - 1 + order)
    lam12 = _lambda_12(zeta, kt)
    for block in _blocks(l_idx.size, 4 * (slots + order) * bins.size):
        idx = inverse[:, block]
        shift = np.array([(-resid[block]) ** s / math.factorial(s) for s in range(order + 1)])
        k_tab = _shifted(k_all[:, :, idx], shift, slots)
        lam_tab = _shifted(lam_all[None, :, idx], shift, slots)[0]
        # Λ_a(x − r) = Λ_a(x) − Σ_{s≥1} K_a^(s−1)(x) (−r)^s/s!
        lam12_tab = lam12[:, idx] * shift[0]
        for s_ in range(1, order + 1):
            lam12_tab = lam12_tab - k_all[1:, s_ - 1, idx] * shift[s_]
        yield block, (k_tab, lam_tab, lam12_tab)


def _shifted(table: np.ndarray, shift: np.ndarray, slots: int) -> np.ndarray:
    """Σ_s F^(t+s) (−r)^s/s! for t < slots; table (..., orders, rows, m), shift (S+1, m)."""
    out = table[:, :slots] * shift[0]
    for s in range(1, shift.shape[0]):
        out = out + table[:, s : s + slots] * shift[s]
    return out


def _direct_tables(energies, mu, delta_n, kt, slots):
    """Kernel tables evaluated at every (bin, μ) point."""
    for block in _blocks(mu.size, 4 * slots * energies.size):
        zeta = energies[:, None] - mu[None, block] - 1j * delta_n
        yield block, (k_series(zeta, kt, slots - 1), lambda_series(zeta, kt, slots - 1),
                      _lambda_12(zeta, kt))
