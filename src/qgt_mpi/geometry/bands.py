"""Per-band quantum geometry from band-basis velocities (theory §1, §5).

With v^i_nm = <n|∂_iH|m>, the band-pair tensor is G^nm_ij = v^i_nm v^j_mn / (ε_n − ε_m)² for
n ≠ m (theory §1), T^(n) = Σ_{m≠n} G^nm, metric g = Re T, curvature Ω = −2 Im T_xy. Pairs closer
than ``tol`` in energy are skipped; ``degenerate_pairs`` counts them.
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


def _pair_tensor(eig: Eigenpairs, tol: float) -> np.ndarray:
    """G^nm_ij for ij = xx, yy, xy; complex (3, nk, nb, nb), zero where skipped (theory §1)."""
    if eig.velocities is None:
        raise ValueError("band geometry needs velocities; solve with velocities=True")
    vel = eig.velocities
    vel_t = vel.swapaxes(-1, -2)
    weight = _inverse_gap_squared(eig.energies, tol)
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
