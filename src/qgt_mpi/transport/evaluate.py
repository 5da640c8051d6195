"""Evaluate the cell tree over sweep points: the k-sums of theory §4 for every (μ, δ, T).

For one broadening channel (bands sharing δ, binning.py) and one temperature, the moments
c_{cell,q} of tree.py give, for every chemical potential μ_i,

    S_sym(a, comp, μ_i) = Σ_cells Σ_q Re[c_{cell,comp,q} K_a^(q)(x)]       (theory §3, §4)
    S_hall(a, μ_i)      = Σ_cells Σ_q Im[c_{cell,hall,q} Λ_a^(q)(x)]
    n(μ_i)              = Σ_cells Σ_q Im[c_{cell,density,q} Λ_0^(q)(x)],   x = centre − μ_i − iδ

over the Barnes–Hut cover of μ_i (lattice.accepted_ranges: each leaf through its coarsest
admissible ancestor). Λ_a (a = 0, 1, 2) are the Cauchy transforms whose divided differences
give the Hall energy moments (kernels.hall_moments, theory §4 "Full tensors"); since
Λ_a' = −K_a for a ≥ 1, the Hall table needs Λ_1, Λ_2 themselves only at order 0 and reuses
the K tables above it. Kernels are evaluated once per distinct anchor (the integer distance
centre − μ̃ in half cell widths, μ̃ the nearest half-step lattice point of μ) and moved to μ
by a Taylor shift in the residue; for evenly spaced sweeps aligned with the lattice the
residue is zero. The (cell, μ) pairs are processed in chunks of _PAIR_CHUNK (memory bound).
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.kernels.closed import k_series, lambda_from_psi
from qgt_mpi.kernels.family import family
from qgt_mpi.kernels.hall_moments import lambda_12_from
from qgt_mpi.transport.energy_cells import accepted_ranges
from qgt_mpi.transport.tree import CellTree
from qgt_mpi.transport.weights import DENSITY, HALL, SYMMETRIC

_PAIR_CHUNK = 16_384  # (cell, μ) pairs per kernel table (≈ 16 MiB of tables)
ROWS_K, ROWS_HALL = slice(0, 3), slice(3, 6)  # rows of the combined kernel table


def cover_pairs(tree: CellTree, mu: np.ndarray, radius: float):
    """Yield (level, cell rows, μ indices) of the Barnes–Hut cover of every μ. Local."""
    for lev, (j, _) in enumerate(tree.levels):
        if j.size == 0:
            continue
        for lo, hi in accepted_ranges(tree.lattice, lev, lev == tree.top, mu, radius):
            first = np.searchsorted(j, lo, side="left")
            count = np.maximum(np.searchsorted(j, hi, side="right") - first, 0)
            total = int(count.sum())
            if total == 0:
                continue
            mu_idx = np.repeat(np.arange(mu.size), count)
            start = np.repeat(first - np.cumsum(count) + count, count)
            yield lev, start + np.arange(total), mu_idx


def _all_pairs(tree: CellTree, mu: np.ndarray, radius: float):
    """Cover pairs of every level as flat arrays (global cell row, anchor, μ index), residues."""
    lat = tree.lattice
    ell = np.rint(2.0 * (mu - lat.e0) / lat.h).astype(np.int64)
    resid = mu - lat.e0 - ell * lat.h / 2
    offsets = np.cumsum([0] + [j.size for j, _ in tree.levels])
    rows, anchors, mus = [], [], []
    for lev, r, m in cover_pairs(tree, mu, radius):
        j = tree.levels[lev][0][r]
        rows.append(offsets[lev] + r)
        anchors.append(((2 * j + 1) << lev) - ell[m])
        mus.append(m)
    if not rows:
        return (np.zeros(0, np.int64),) * 3, resid
    return (np.concatenate(rows), np.concatenate(anchors), np.concatenate(mus)), resid


def _shift_order(resid: np.ndarray, radius: float) -> int:
    """Taylor order S with (max|r|/R)^(S+1) below 1e-17 (Cauchy bound, |r| ≤ h/4 ≤ ηR/4).

    Residues below 1e-13 R (rounding of an evenly spaced μ grid aligned with the cells)
    are dropped: that errs by at most 1e-13 relative, like the cell bound.
    """
    ratio = float(np.max(np.abs(resid), initial=0.0)) / radius
    if ratio <= 1e-13:
        return 0
    return max(0, math.ceil(math.log(1e-17) / math.log(ratio)) - 1)


def kernel_table(zeta: np.ndarray, kt: float | np.ndarray, qmax: int, full: bool) -> np.ndarray:
    """(n, 6, qmax+1) table: rows K_0, K_1, K_2, Λ_0, Λ_1, Λ_2 (theory §3, §4); ``kt`` is a
    scalar or one k_BT per element of the flat ``zeta``.

    Λ_a^(q) for a = 1, 2 and q ≥ 1 is −K_a^(q−1) (Λ_a' = −K_a). Without ``full`` only the
    Λ_0 row is filled (the density of the occupation stores). One kernels.family pass gives
    ψ^(0..qmax+1)(c) and the Hall remainders for all rows.
    """
    zeta = np.asarray(zeta, dtype=complex).ravel()
    if zeta.size and not np.all(zeta.imag < 0):
        raise ValueError("closed-form kernels need Im zeta < 0 (use Schwarz reflection)")
    out = np.zeros((zeta.size, 6, qmax + 1), complex)
    fam = family(0.5 + 1j / (2.0 * math.pi * np.asarray(kt)) * zeta, qmax + 1 if full else qmax,
                 full)
    lam = lambda_from_psi(fam.psi, kt)
    out[:, 3] = lam[: qmax + 1].T
    if full:
        out[:, ROWS_K] = k_series(zeta, kt, qmax, lam=lam).transpose(2, 0, 1)
        out[:, 4:6, 0] = lambda_12_from(fam, kt, lam[0], zeta.shape).T
        out[:, 4:6, 1:] = -out[:, 1:3, :qmax]
    return out


def evaluate_channel(tree: CellTree, channel: int | tuple[int, ...], delta_c: float,
                     mu: np.ndarray, kt: float, density_only: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of one channel at one temperature over all ``mu``. Local, no communication.

    Returns sym (3, 4, n_mu) (a = 0, 1, 2 × the SYMMETRIC components), hall (3, n_mu) and
    density (n_mu). With ``density_only`` (occupation stores: one component, the density
    weight) only the density is formed; then ``channel`` may be a tuple of channels sharing
    δ, evaluated with one kernel table, and the density is (len(channel), n_mu).
    """
    mu = np.asarray(mu, dtype=float)
    n_dens = len(channel) if isinstance(channel, tuple) else 0
    sym, hall = np.zeros((3, len(SYMMETRIC), mu.size)), np.zeros((3, mu.size))
    dens = np.zeros((n_dens, mu.size)) if n_dens else np.zeros(mu.size)
    radius = delta_c + math.pi * kt
    (rows, anchors, mus), resid = _all_pairs(tree, mu, radius)
    if rows.size == 0:
        return sym, hall, dens
    order = np.argsort(anchors, kind="stable")
    data = tree.channel(channel)  # (cells, comp, slots)
    slots = data.shape[-1]
    n_shift = _shift_order(resid[mus], radius)
    half = tree.lattice.h / 2
    for c0 in range(0, order.size, _PAIR_CHUNK):
        sel = order[c0 : c0 + _PAIR_CHUNK]
        uniq, inv = np.unique(anchors[sel], return_inverse=True)
        base = kernel_table(uniq * half - 1j * delta_c, kt, slots - 1 + n_shift,
                            not density_only)
        table = base[inv, :, :slots]
        powers = _powers(-resid[mus[sel]], n_shift)
        for s in range(1, n_shift + 1):
            table += base[inv, :, s : s + slots] * powers[s][:, None, None]
        coeff, m = data[rows[sel]], mus[sel]
        if density_only:
            acc = dens[None] if n_dens else dens[None, None]
            _accumulate(acc, m, coeff[:, : max(n_dens, 1)], table[:, 3:4], True)
            continue
        _accumulate(sym, m, coeff[:, list(SYMMETRIC)], table[:, ROWS_K], False)
        _accumulate(hall[:, None], m, coeff[:, HALL : HALL + 1], table[:, ROWS_HALL], True)
        _accumulate(dens[None, None], m, coeff[:, DENSITY : DENSITY + 1], table[:, 3:4], True)
    return sym, hall, dens


def evaluate_points(points: tuple[np.ndarray, np.ndarray], delta_c: float, mu: np.ndarray,
                    kt: float | np.ndarray, density_only: bool = False,
                    cache: PointCache | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of a channel's point masses (points.py) over a block of (μ, T); as evaluate_channel
    with a trailing temperature axis.

    ``points`` = (energies (n_p,), moments (n_p, comp, slots) about those energies); ``mu``
    is (n_μ,) for every temperature or (n_μ, n_T); ``kt`` (n_T,) or one value. Exact: the
    kernels are evaluated at the points themselves, no cover, for the whole block at once (one
    kernels.family pass per point). ``cache`` (one per block) shares the tables of points at
    the same energy and δ between the channels and the occupation stores. Local.
    """
    energies, moments = points
    kt_n = np.atleast_1d(np.asarray(kt, dtype=float))
    mu = np.asarray(mu, dtype=float)
    grid = np.broadcast_to(mu if mu.ndim == 2 else mu[:, None], (mu.shape[0], kt_n.size))
    shape = grid.shape
    sym, hall, dens = np.zeros((3, len(SYMMETRIC), *shape)), np.zeros((3, *shape)), \
        np.zeros(shape)
    if energies.size == 0:
        return sym, hall, dens
    kts = np.broadcast_to(kt_n, shape).ravel()
    sym_c = list(SYMMETRIC)
    for energy, c in zip(energies, moments, strict=True):  # a few points per channel
        table = _point_table(float(energy), delta_c, grid.ravel(), kts, c.shape[-1] - 1,
                             not density_only, cache)
        # Σ_q c_q table_q as complex matrix products (BLAS), then Re or Im
        dens += (table[:, 3] @ c[DENSITY if not density_only else 0]).imag.reshape(shape)
        if not density_only:
            sym += np.moveaxis((table[:, ROWS_K] @ c[sym_c].T).real, 0, -1).reshape(sym.shape)
            hall += (table[:, ROWS_HALL] @ c[HALL]).imag.T.reshape(hall.shape)
    return sym, hall, dens


# (point energy, δ) ↦ (order, full, kernel table) of the points of one block (_point_table)
PointCache = dict[tuple[float, float], tuple[int, bool, np.ndarray]]


def _point_table(energy: float, delta_c: float, mu: np.ndarray, kts: np.ndarray, qmax: int,
                 full: bool, cache: PointCache | None) -> np.ndarray:
    """kernel_table at ζ = energy − μ − iδ (flat μ, per-element k_BT), from ``cache`` when a
    table of at least this order (and rows) is there."""
    key = (energy, delta_c)
    if cache is not None and key in cache:
        q_have, full_have, table = cache[key]
        if q_have >= qmax and (full_have or not full):
            return table[:, :, : qmax + 1]
    table = kernel_table(energy - mu - 1j * delta_c, kts, qmax, full)
    if cache is not None:
        cache[key] = (qmax, full, table)
    return table


def _accumulate(acc: np.ndarray, mus: np.ndarray, coeff: np.ndarray, table: np.ndarray,
                imaginary: bool) -> None:
    """acc[a, c, μ] += Re or Im Σ_q coeff[p, c, q] table[p, a, q] over pairs p of each μ.

    In real arithmetic: Re(xy) = x'y' − x''y'', Im(xy) = x'y'' + x''y'.
    """
    if imaginary:
        lhs = np.concatenate([coeff.real, coeff.imag], axis=2)
        rhs = np.concatenate([table.imag, table.real], axis=2)
    else:
        lhs = np.concatenate([coeff.real, -coeff.imag], axis=2)
        rhs = np.concatenate([table.real, table.imag], axis=2)
    val = np.einsum("paq,pcq->pac", rhs, lhs)  # (pairs, n_a, n_c)
    n_ac = acc.shape[0] * acc.shape[1]
    flat = (mus[:, None] * n_ac + np.arange(n_ac)[None, :]).ravel()
    total = np.bincount(flat, weights=val.ravel(), minlength=acc.shape[2] * n_ac)
    acc += total.reshape(acc.shape[2], acc.shape[0], acc.shape[1]).transpose(1, 2, 0)


def _powers(r: np.ndarray, order: int) -> np.ndarray:
    """(order+1, n) array of r^s/s!."""
    out = np.empty((order + 1, r.size))
    out[0] = 1.0
    for s in range(1, order + 1):
        out[s] = out[s - 1] * r / s
    return out
