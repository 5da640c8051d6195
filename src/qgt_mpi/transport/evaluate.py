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


def evaluate_channel(tree: CellTree, channel: int, delta_c: float, mu: np.ndarray,
                     kt: float) -> dict[str, np.ndarray]:
    """Sums of one channel at one temperature over all ``mu``. Local, no communication.

    Returns, per family name, an array (n_a, len(components), n_mu).
    """
    mu = np.asarray(mu, dtype=float)
    out = {f.name: np.zeros((_n_a(f), len(f.components), mu.size)) for f in FAMILIES}
    radius = delta_c + np.pi * kt
    slots = tree.levels[0][1].shape[-1]
    for lev, rows, mu_idx in cover_pairs(tree, mu, radius):
        j, data = tree.levels[lev]
        for c0 in range(0, rows.size, _PAIR_CHUNK):
            r = rows[c0 : c0 + _PAIR_CHUNK]
            m = mu_idx[c0 : c0 + _PAIR_CHUNK]
            zeta = tree.lattice.centre(lev, j[r]) - mu[m] - 1j * delta_c
            coeff = data[r, channel]  # (pairs, comp, q)
            for f in FAMILIES:
                table = f.table(zeta, kt, slots - 1)  # (n_a, q, pairs)
                val = np.einsum("pcq,aqp->acp", coeff[:, list(f.components)], table)
                val = val.imag if f.imaginary else val.real
                acc = out[f.name]
                for a in range(acc.shape[0]):
                    for c in range(acc.shape[1]):
                        acc[a, c] += np.bincount(m, weights=val[a, c], minlength=mu.size)
    return out


def _n_a(family: KernelFamily) -> int:
    """Number of kernels in a family (first axis of its table)."""
    return family.table(np.array([-1j]), 1.0, 0).shape[0]
