"""Hall energy moments Y^(a)_nm (theory §3, §4) against quadrature, mpmath and known limits."""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from helpers import SPREAD, lor, peak_points, quad_sum
from scipy.integrate import IntegrationWarning, quad

from qgt_mpi.kernels.closed import fermi, k_series, minus_fermi_prime, y_pair
from qgt_mpi.kernels.hall_moments import (
    R_ASY,
    entropy,
    h_moment,
    lambda_moments,
    y_moment_pair,
)

warnings.simplefilter("ignore", IntegrationWarning)


def ym_quad(a, en, em, dn, dm, mu, kT):
    """∫ g_nm(ω) h_a(ω − μ) dω, g_nm = −(2/π) L_n Re[G_m²]; returns (value, ∫|integrand|)."""
    def g(w):
        return h_moment(a, w - mu, kT) * lor(w, en, dn) * (1.0 / (w - em + 1j * dm) ** 2).real
    s = max(dn, dm, kT)
    pts = (*peak_points(en, dn, em, dm), mu, mu - 45 * kT, mu + 45 * kT, min(en, em, mu) - 1e3 * s)
    edges = [-np.inf, *sorted(set(pts)), np.inf]
    return -2.0 / np.pi * quad_sum(g, edges), 2.0 / np.pi * quad_sum(lambda w: abs(g(w)), edges)


def test_h_moments_against_definition() -> None:
    """h_a(x) = ∫_x^∞ y^a (−f') dy; h_1 = kT s(f) (the entropy weight of theory §4)."""
    kT = 0.07
    mp.mp.dps = 30
    for x in (-2.0, -0.3, 0.0, 0.11, 1.5):
        for a in (0, 1, 2):
            ref = float(mp.quad(lambda y, a=a: y**a / (4 * kT * mp.cosh(y / (2 * kT)) ** 2),
                                sorted({x, 0.0 if x < 0 else x, x + 10 * kT, mp.inf})))
            assert h_moment(a, x, kT) == pytest.approx(ref, rel=1e-12, abs=1e-300)
        assert h_moment(1, x, kT) == pytest.approx(kT * entropy(fermi(x, kT)), rel=1e-12)
    # moments at −∞: ∫ (−f') = 1, ∫ x(−f') = 0, ∫ x²(−f') = π²kT²/3
    assert h_moment(2, -60 * kT, kT) == pytest.approx(math.pi**2 * kT**2 / 3, rel=1e-9)


@pytest.mark.parametrize("kT", [0.37, 0.004])
def test_lambda_moments_against_mpmath(kT) -> None:
    """Λ_1, Λ_2 − (π²kT²/3)Λ_0 against mpmath quadrature of ∫ h_a/(x − ζ)."""
    mp.mp.dps = 20

    def h(a, x):
        f = 1 / (mp.exp(x / kT) + 1)
        if a == 1:
            return x * f + kT * mp.log(1 + mp.exp(-x / kT))
        tail = kT * x * mp.log(1 + mp.exp(-x / kT)) - kT**2 * mp.polylog(2, -mp.exp(-x / kT))
        return x * x * f + 2 * tail - mp.pi**2 * kT**2 / 3 * f

    zs = [kT * z for z in (0.3 - 0.1j, -3 - 0.01j, 10 - 2j, -5j, 20 - 1j)]
    for a in (1, 2):
        got = lambda_moments(a, np.array(zs), kT, 0)[0]
        if a == 2:
            got = got - math.pi**2 * kT**2 / 3 * lambda_moments(0, np.array(zs), kT, 0)[0]
        for z, v in zip(zs, got, strict=True):
            pts = sorted({-70 * kT - abs(z), -5 * kT, z.real, 5 * kT, 70 * kT + abs(z)})
            ref = complex(mp.quad(lambda x, a=a, z=z: h(a, x) / (x - z), pts))
            assert abs(v - ref) <= 1e-9 * abs(ref), (a, z, v, ref)


def test_lambda_moment_derivatives_and_branch_join() -> None:
    """Λ_a' = −K_a (finite differences) and continuity across |c| = R_ASY."""
    kT = 0.05
    g = 1j / (2 * math.pi * kT)
    for a in (1, 2):
        for c in (0.7 + 2j, 3 + 0.4j, 0.6 + 20j):
            z = (c - 0.5) / g
            hstep = 1e-4 * kT
            fd = (lambda_moments(a, np.array([z + hstep]), kT, 0)[0, 0]
                  - lambda_moments(a, np.array([z - hstep]), kT, 0)[0, 0]) / (2 * hstep)
            der = -k_series(np.array([z]), kT, 0)[a, 0, 0]
            assert abs(fd - der) <= 1e-6 * abs(der)
        for c0 in (R_ASY + 0.3j, 0.6 + 1j * math.sqrt(R_ASY**2 - 0.36), R_ASY * np.exp(0.7j)):
            zs = (np.array([c0 * (1 - 1e-9), c0 * (1 + 1e-9)]) - 0.5) / g
            v = lambda_moments(a, zs, kT, 0)[0]
            assert abs(v[1] - v[0]) <= 1e-8 * abs(v[0])


@pytest.mark.parametrize("p", SPREAD)
def test_y_moments_against_quadrature(p) -> None:
    """Closed forms of Y^(a), a = 0, 1, 2, incl. degenerate and near-degenerate pairs."""
    for a in (0, 1, 2):
        ref, size = ym_quad(a, *p)
        got = y_moment_pair(a, *p)
        assert abs(got - ref) <= 1e-9 * max(abs(ref), 1e-3 * size), (a, got, ref)
    assert y_moment_pair(0, *p) == pytest.approx(y_pair(*p), rel=1e-13, abs=1e-300)


def test_y_moments_are_smrcka_streda_energy_moments() -> None:
    """Y^(a) = ∫ dε (ε−μ)^a (−f') Y(μ = ε, T → 0): the theory §4 definition, by quadrature."""
    en, em, dn, dm, mu, kT = 0.3, -0.2, 0.02, 0.03, 0.05, 0.02
    for a in (1, 2):
        def outer(e, a=a):
            return (e - mu) ** a * minus_fermi_prime(e - mu, kT) * y_pair(en, em, dn, dm, e, 1e-7)
        ref = quad(outer, mu - 40 * kT, mu + 40 * kT, epsabs=0, epsrel=1e-11, limit=400,
                   points=[mu])[0]
        assert y_moment_pair(a, en, em, dn, dm, mu, kT) == pytest.approx(ref, rel=1e-8)


def test_clean_limit_of_hall_moments() -> None:
    """δ → 0: Y^(a)_nm → 2 h_a(ε_n − μ)/(ε_n − ε_m)² (h_1 = kT s(f_n): the entropy formula)."""
    en, em, kT = 0.01, 0.5, 0.02
    for mu in (-0.02, 0.01, 0.03):
        for a in (0, 1, 2):
            clean = 2.0 * h_moment(a, en - mu, kT) / (en - em) ** 2
            got = y_moment_pair(a, en, em, 1e-7, 1e-7, mu, kT)
            assert got == pytest.approx(clean, rel=1e-5)
