"""Per-band quantum geometry from band-basis velocities (theory §1, §5).

With v^i_nm = <n|∂_iH|m>, the band-pair tensor is G^nm_ij = v^i_nm v^j_mn / (ε_n − ε_m)² for
n ≠ m (theory §1), T^(n) = Σ_{m≠n} G^nm, metric g = Re T, curvature Ω = −2 Im T_xy. Pairs closer
than ``tol`` in energy are skipped; ``degenerate_pairs`` counts them.

Bands that touch are a group (theory §5.7): :func:`gap_pair_bound` measures, across each gap,
how far the 1/(ε_n − ε_m)² pair terms diverge, and :func:`group_geometry` gives the finite
geometry of a contiguous group from the pairs with one band outside it (Eq. 5.7a).
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.solvers.base import Eigenpairs


def pair_products(vel: np.ndarray) -> dict[str, np.ndarray]:
    """Products of band-basis velocities (theory §1, §4), each (nk, nb, nb) float.

    Returns ``M_xx, M_yy, M_xy`` = Re(v^i_nm v^j_mn) and ``N_xy`` = Im(v^x_nm v^y_mn).
    """
    vx, vy = vel[0], vel[1]
    vx_t, vy_t = vx.swapaxes(-1, -2), vy.swapaxes(-1, -2)  # [., n, m] -> v_mn
    xy = vx * vy_t
    return {"M_xx": (vx * vx_t).real, "M_yy": (vy * vy_t).real, "M_xy": xy.real,
            "N_xy": xy.imag}


def _inverse_gap_squared(energies: np.ndarray, tol: float) -> np.ndarray:
    """1/(ε_n − ε_m)² for |ε_n − ε_m| ≥ tol, else 0 (diagonal included); (nk, nb, nb)."""
    diff = energies[:, :, None] - energies[:, None, :]
    ok = np.abs(diff) >= tol
    return np.where(ok, 1.0 / np.where(ok, diff, 1.0) ** 2, 0.0)


def degenerate_pairs(energies: np.ndarray, tol: float = 1e-10) -> int:
    """Number of (k, n < m) pairs with |ε_n − ε_m| < tol, i.e. skipped by the geometry."""
    diff = np.abs(energies[:, :, None] - energies[:, None, :])
    upper = np.triu(np.ones(energies.shape[1:] * 2, bool), k=1)
    return int(np.count_nonzero((diff < tol) & upper))


def _same_group(eig: Eigenpairs) -> np.ndarray | bool:
    """(nk, nb, nb) True for pairs inside one resolved degenerate group (theory §5.7, Eq.
    5.7c: their basis is the symmetry operator's, so they are not eigenpairs), else False."""
    if eig.groups is None:
        return False
    g = eig.groups
    return (g[:, :, None] == g[:, None, :]) & (g[:, :, None] >= 0)


def _weights(eig: Eigenpairs, tol: float) -> np.ndarray:
    """1/(ε_n − ε_m)² of the pairs that enter the geometry, 0 elsewhere; (nk, nb, nb)."""
    inverse = _inverse_gap_squared(eig.energies, tol)
    if eig.groups is None:  # no resolved group: nothing to mask (no (nk, nb, nb) copy)
        return inverse
    return np.where(_same_group(eig), 0.0, inverse)


def _pair_tensor(eig: Eigenpairs, tol: float) -> np.ndarray:
    """G^nm_ij for ij = xx, yy, xy; complex (3, nk, nb, nb), zero where skipped (theory §1)."""
    if eig.velocities is None:
        raise ValueError("band geometry needs velocities; solve with velocities=True")
    vel = eig.velocities
    vel_t = vel.swapaxes(-1, -2)
    weight = _weights(eig, tol)
    return np.stack([vel[0] * vel_t[0], vel[1] * vel_t[1], vel[0] * vel_t[1]]) * weight


def band_geometry(eig: Eigenpairs, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Berry curvature and quantum metric of every band (theory §1, §5).

    For a windowed solve the out-of-window parts (``eig.metric_out``, ``eig.curvature_out``)
    are added, so the result is the full single-band geometry in either case.

    Returns
    -------
    curvature : (nk, nb), Ω_n = −2 Im T^(n)_xy.
    metric : (nk, nb, 3), g_n for [xx, yy, xy] = Re T^(n).
    """
    tensor = _pair_tensor(eig, tol).sum(axis=-1)  # (3, nk, nb): T^(n)_ij (window pairs)
    curvature, metric = -2.0 * tensor[2].imag, np.moveaxis(tensor.real, 0, -1)
    if eig.metric_out is not None:  # bands outside a solver window (theory §5)
        curvature, metric = curvature + eig.curvature_out, metric + eig.metric_out
    return curvature, metric


def qgt_pair_sums(eig: Eigenpairs, tol: float = 1e-10) -> np.ndarray:
    """Σ_k G^nm_ij over the batch, (nb, nb, 3) complex for [xx, yy, xy] (theory §1, paper Eq. 13).

    Diagonal (n = m) entries are zero; Σ_m of row n gives Σ_k T^(n).
    """
    return np.moveaxis(_pair_tensor(eig, tol).sum(axis=1), 0, -1)


def gap_pair_bound(eig: Eigenpairs) -> np.ndarray:
    """Largest pair term across each gap of the batch, (nb − 1,) (theory §5.7, Eq. 5.7b).

    Entry c is max over k and over pairs n ≤ c < m of
    Tr G^nm = (|v^x_nm|² + |v^y_nm|²)/(ε_n − ε_m)² (theory §1, Eq. 1.6), inf for an exact
    degeneracy; times the plaquette area ΔA it is the pair's term in one grid point of the
    band's ∫Tr g d²k, and bounds the Berry flux the pair puts through one plaquette there.
    """
    energies, vel = eig.energies, eig.velocities
    nb = energies.shape[1]
    if nb < 2 or energies.shape[0] == 0:
        return np.zeros(max(nb - 1, 0))
    if vel is None:
        raise ValueError("pair bounds need velocities; solve with velocities=True")
    diff = energies[:, :, None] - energies[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (np.abs(vel[0]) ** 2 + np.abs(vel[1]) ** 2) / diff**2
    ratio = np.where(diff == 0.0, np.inf, ratio)
    pair = np.where(_same_group(eig), 0.0, ratio).max(axis=0)  # (nb, nb); resolved: no pair
    np.fill_diagonal(pair, 0.0)
    # beyond[n, c] = max_{m > c} pair[n, m]; keep n ≤ c (pairs across gap c)
    beyond = np.maximum.accumulate(pair[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return np.where(np.triu(np.ones((nb, nb - 1), bool)), beyond, 0.0).max(axis=0)


def _outside_sums(pair: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ_{n∈G} Σ_{m∉G} pair[k, n, m] for groups G = lo..hi−1; (nk, ngroups).

    Only partial sums over m < lo and m ≥ hi enter, never the pairs inside a group (which may
    be huge), so nothing cancels.
    """
    nk, nb = pair.shape[:2]
    out = np.zeros((nk, lo.size), dtype=pair.dtype)
    below = np.cumsum(pair, axis=-1)  # below[k, n, c] = Σ_{m ≤ c}
    for t in range(int((hi - lo).max(initial=0))):
        g = np.flatnonzero(hi - lo > t)
        g = g[lo[g] > 0]
        out[:, g] += below[:, lo[g] + t, lo[g] - 1]
    below = np.cumsum(pair[..., ::-1], axis=-1)[..., ::-1]  # Σ_{m ≥ c}
    for t in range(int((hi - lo).max(initial=0))):
        g = np.flatnonzero(hi - lo > t)
        g = g[hi[g] < nb]
        out[:, g] += below[:, lo[g] + t, hi[g]]
    return out


def group_geometry(eig: Eigenpairs, groups: list[tuple[int, int]], tol: float = 1e-10
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Berry curvature and quantum metric of contiguous band groups (theory §5.7, Eq. 5.7a).

    The group (projector) tensor T^(G) = Σ_{n∈G} Σ_{m∉G} G^nm (+ the out-of-window parts of
    the group's bands for a windowed solve): finite when the bands of G touch each other.

    Returns
    -------
    curvature : (nk, ngroups), Ω_G = −2 Im T^(G)_xy.
    metric : (nk, ngroups, 3), g_G for [xx, yy, xy] = Re T^(G).
    """
    if eig.velocities is None:
        raise ValueError("group geometry needs velocities; solve with velocities=True")
    lo = np.array([g[0] for g in groups], dtype=int)
    hi = np.array([g[1] for g in groups], dtype=int)
    vel, weight = eig.velocities, _weights(eig, tol)
    # G^nm_ii = |v^i_nm|² w_nm is real (v Hermitian); G^nm_xy = v^x_nm v^y_mn w_nm
    parts = [_outside_sums(np.abs(vel[i]) ** 2 * weight, lo, hi) for i in (0, 1)]
    parts.append(_outside_sums(vel[0] * vel[1].swapaxes(-1, -2) * weight, lo, hi))
    curvature, metric = -2.0 * parts[2].imag, np.stack([p.real for p in parts], axis=-1)
    if eig.metric_out is not None and eig.curvature_out is not None:  # outside a window (§5.4)
        for g, (a, b) in enumerate(groups):
            curvature[:, g] += eig.curvature_out[:, a:b].sum(axis=1)
            metric[:, g] += eig.metric_out[:, a:b].sum(axis=1)
    return curvature, metric
