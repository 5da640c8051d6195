"""Evaluate the cell tree over sweep points: the k-sums of SPEC §4 for every (μ, δ, T).

For one broadening channel (bands sharing δ, binning.py) and one temperature, the moments
c_{cell,q} of tree.py give, for every chemical potential μ_i,

    S_fam(a, comp, μ_i) = Σ_cells Σ_q part[c_{cell,comp,q} F_a^(q)(centre − μ_i − iδ)]

over the Barnes–Hut cover of μ_i (lattice.accepted_ranges: each leaf through its coarsest
admissible ancestor). The kernel families are listed in FAMILIES: the symmetric kernels
K_a (a = 0, 1, 2; real part; SPEC §3) on the symmetric components and Λ (imaginary part)
on the Hall component; a new family is one more entry. The (cell, μ) pairs are generated
per level by index arithmetic and processed in chunks of _PAIR_CHUNK (memory bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qgt_mpi.kernels.closed import k_series, lambda_series
from qgt_mpi.transport.lattice import accepted_ranges
from qgt_mpi.transport.tree import CellTree
from qgt_mpi.transport.weights import HALL, SYMMETRIC

_PAIR_CHUNK = 16_384  # (cell, μ) pairs per kernel table (≈ 16 MiB of tables)


@dataclass(frozen=True)
class KernelFamily:
    """One kernel family: table(ζ, kT, qmax) → (n_a, qmax+1, n), components, part taken."""

    name: str
    table: Callable[[np.ndarray, float, int], np.ndarray]
    components: tuple[int, ...]
    imaginary: bool


FAMILIES = (
    KernelFamily("K", k_series, SYMMETRIC, False),
    KernelFamily("Lambda", lambda z, kt, q: lambda_series(z, kt, q)[None], (HALL,), True),
)


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
    """Cover pairs of every level as flat arrays: (global cell row, anchor, μ index).

    Anchors are the integer distances centre − μ̃ in units of h/2, μ̃ = μ's nearest point
    of the half-step lattice; pairs with equal anchors share one kernel evaluation.
    """
    lat = tree.lattice
    ell = np.rint(2.0 * (mu - lat.e0) / lat.h).astype(np.int64)
    offsets = np.cumsum([0] + [j.size for j, _ in tree.levels])
    rows, anchors, mus = [], [], []
    for lev, r, m in cover_pairs(tree, mu, radius):
        j = tree.levels[lev][0][r]
        rows.append(offsets[lev] + r)
        anchors.append(((2 * j + 1) << lev) - ell[m])
        mus.append(m)
    if not rows:
        return (np.zeros(0, np.int64),) * 3, mu - lat.e0 - ell * lat.h / 2
    resid = mu - lat.e0 - ell * lat.h / 2
    return (np.concatenate(rows), np.concatenate(anchors), np.concatenate(mus)), resid


def _shift_order(resid: np.ndarray, radius: float) -> int:
    """Taylor order S with (max|r|/R)^(S+1) below 1e-17 (Cauchy bound, |r| ≤ h/4 ≤ ηR/4).

    Residues below 1e-13 R (rounding of an evenly spaced μ grid aligned with the cells,
    lattice.py) are dropped: that errs by at most 1e-13 relative, like the cell bound.
    """
    ratio = float(np.max(np.abs(resid), initial=0.0)) / radius
    if ratio <= 1e-13:
        return 0
    return max(0, math.ceil(math.log(1e-17) / math.log(ratio)) - 1)


def evaluate_channel(tree: CellTree, channel: int, delta_c: float, mu: np.ndarray,
                     kt: float) -> dict[str, np.ndarray]:
    """Sums of one channel at one temperature over all ``mu``. Local, no communication.

    Kernels are evaluated once per distinct anchor (sorted pairs, chunks of _PAIR_CHUNK)
    and moved to each μ by a Taylor shift of order S in its residue. Returns, per family
    name, an array (n_a, len(components), n_mu).
    """
    mu = np.asarray(mu, dtype=float)
    out = {f.name: np.zeros((_n_a(f), len(f.components), mu.size)) for f in FAMILIES}
    radius = delta_c + np.pi * kt
    (rows, anchors, mus), resid = _all_pairs(tree, mu, radius)
    if rows.size == 0:
        return out
    order = np.argsort(anchors, kind="stable")
    data = tree.channel(channel)  # (cells, comp, slots)
    slots = data.shape[-1]
    n_shift = _shift_order(resid[mus], radius)
    half = tree.lattice.h / 2
    for c0 in range(0, order.size, _PAIR_CHUNK):
        sel = order[c0 : c0 + _PAIR_CHUNK]
        uniq, inv = np.unique(anchors[sel], return_inverse=True)
        zeta = uniq * half - 1j * delta_c
        powers = _powers(-resid[mus[sel]], n_shift)  # (S+1, pairs)
        coeff = data[rows[sel]]  # (pairs, comp, q)
        for f in FAMILIES:
            base = f.table(zeta, kt, slots - 1 + n_shift).transpose(2, 0, 1).copy()
            table = base[inv, :, :slots]  # (pairs, n_a, q): row gathers
            for s in range(1, n_shift + 1):
                table += base[inv, :, s : s + slots] * powers[s][:, None, None]
            c = coeff[:, list(f.components)]
            _accumulate(out[f.name], mus[sel], c, table, f.imaginary)
    return out


def _accumulate(acc: np.ndarray, mus: np.ndarray, coeff: np.ndarray, table: np.ndarray,
                imaginary: bool) -> None:
    """acc[a, c, μ] += Re or Im Σ_q coeff[p, c, q] table[p, a, q] over pairs p of each μ.

    Done in real arithmetic: Re(xy) = x'y' − x''y'', Im(xy) = x'y'' + x''y'.
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


def _n_a(family: KernelFamily) -> int:
    """Number of kernels in a family (first axis of its table)."""
    return family.table(np.array([-1j]), 1.0, 0).shape[0]
