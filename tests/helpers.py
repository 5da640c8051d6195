"""Numerical references and result comparisons that several test modules share.

- quadrature of the theory §3 integrands (test_kernels, test_hall_moments);
- the theory §4 transport sums by direct per-pair closed forms, and the same sums through
  the production path (test_transport, test_cells);
- result-file comparison (test_cli_runs, test_restart, test_stream).
"""

from __future__ import annotations

import itertools

import numpy as np
from mpi4py import MPI
from scipy.integrate import quad

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.kernels.closed import ETA_DEG, w_pair
from qgt_mpi.kernels.hall_moments import y_moment_pair
from qgt_mpi.transport.accumulate import TransportSums

# --- kernels: quadrature --------------------------------------------------------------------


def lor(w, e, d):
    """L(ω) = Im 1/(ω − e + iδ) = −δ/((ω−e)² + δ²)."""
    return -d / ((w - e) ** 2 + d**2)


def quad_sum(g, edges) -> float:
    """∫ g over consecutive ``edges`` (each piece by adaptive quadrature, rel. 1e-12)."""
    tot = 0.0
    for lo, hi in itertools.pairwise(edges):
        tot += quad(g, lo, hi, epsabs=1e-300, epsrel=1e-12, limit=4000)[0]
    return tot


def peak_points(en, dn, em, dm):
    """Breakpoints resolving both Lorentzians."""
    return [e + k * d for e, d in ((en, dn), (em, dm)) for k in (-30, -3, 0, 3, 30)]


def _spread():
    """(ε_n, ε_m, δ_n, δ_m, μ, kT): generic, δ ≪ kT, kT ≪ δ, degenerate, near-degenerate."""
    base = [
        (0.3, -0.2, 0.01, 0.02, 0.05, 0.03),
        (0.3, -0.2, 0.001, 0.002, 0.0, 0.1),  # δ ≪ kT
        (0.3, -0.2, 0.05, 0.03, 0.1, 0.001),  # kT ≪ δ
        (0.25, -0.25, 0.01, 0.01, 0.0, 0.001),  # μ in the gap, low T
        (0.02, -0.01, 1e-4, 3e-4, 0.0, 0.01),  # very sharp bands
        (1.0, 0.9, 0.05, 0.01, 0.95, 0.2),
        (0.1, 0.1, 0.02, 0.02, 0.05, 0.03),  # n = m (Drude)
        (0.25, 0.25, 0.01, 0.01, 0.0, 0.001),  # degenerate, far from μ
        (0.0, 0.0, 0.002, 0.002, 0.0, 0.05),  # degenerate at μ, δ ≪ kT
    ]
    near = []
    for en, dn, mu, kT in ((0.1, 0.02, 0.05, 0.03), (0.02, 0.001, 0.0, 0.02)):
        scale = dn + np.pi * kT
        for s in (1e-9, 1e-6, 1e-3, 1e-2, 0.99 * ETA_DEG, 1.01 * ETA_DEG, 0.5):
            near.append((en, en + s * scale, dn, dn * (1 + 0.3 * s), mu, kT))
    return base + near


# Pair parameters (ε_n, ε_m, δ_n, δ_m, μ, kT) every kernel is checked at.
SPREAD = _spread()

# --- transport sums -------------------------------------------------------------------------


def direct_sums(eps, prod, delta, mu, temps):
    """Reference theory §4 sums by direct per-pair closed forms; (3, 4, nmu, nT), (3, nmu, nT).

    The Hall sums carry the energy moments a = 0, 1, 2 (kernels.hall_moments)."""
    en, em = eps[:, :, None], eps[:, None, :]
    dn, dm = delta[None, :, None], delta[None, None, :]
    eye = np.eye(eps.shape[1], dtype=bool)[None]
    sym = np.zeros((3, 4, len(mu), len(temps)))
    hall = np.zeros((3, len(mu), len(temps)))
    for i, m in enumerate(mu):
        for t, temp in enumerate(temps):
            kt = K_B_MEV_PER_K * temp
            for a in range(3):
                w = w_pair(a, en, em, dn, dm, m, kt)
                for c, (key, mask) in enumerate(
                    [("M_xx", eye), ("M_yy", eye), ("M_xx", ~eye), ("M_yy", ~eye)]
                ):
                    sym[a, c, i, t] = np.sum(np.where(mask, w * prod[key], 0.0))
                y = y_moment_pair(a, en, em, dn, dm, m, kt)
                hall[a, i, t] = np.sum(np.where(~eye, y * prod["N_xy"], 0.0))
    return sym, hall


def binned_sums(eps, prod, delta, mu, temps):
    """The production path for one δ choice, normalised by 1 and without unit conversion."""
    sums = TransportSums(np.asarray(temps), np.asarray(mu), np.asarray([delta]))
    sums.add(eps, prod)
    reduced = sums.reduce(MPI.COMM_SELF)
    sym, hall, *_ = reduced.point(0, np.arange(len(temps)), np.asarray(mu))  # one block
    return sym, hall


# --- result files ---------------------------------------------------------------------------

# The /transport datasets every run writes, compared across rank counts and restarts.
TRANSPORT_KEYS = ("sigma_xx", "sigma_xx_drude", "sigma_xx_geometric", "sigma_yy", "sigma_xy",
                  "seebeck", "kappa_xx", "lorenz_ratio")


def assert_same_results(a: dict, b: dict) -> None:
    """Every array of ``b`` equals ``a``'s to 1e-12 relative to its largest value (the
    Drude/geometric parts are judged against the σ_xx they add up to)."""
    for key in a:
        base = a["sigma_xx"] if key.startswith("sigma_xx_") else a[key]
        scale = np.max(np.abs(base))
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-12 * scale,
                                   err_msg=key)
