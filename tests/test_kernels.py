"""Closed-form kernels of theory §3 against adaptive quadrature, mpmath and known limits."""

from __future__ import annotations

import itertools
import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from helpers import SPREAD, lor, peak_points, quad_sum
from scipy.integrate import IntegrationWarning, quad

from qgt_mpi.kernels.closed import fermi, k_series, lambda_series, minus_fermi_prime, w_pair, y_pair

warnings.simplefilter("ignore", IntegrationWarning)


def _edges(lo, hi, pts):
    inner = sorted({p for p in pts if lo < p < hi})
    return [lo, *inner, hi]


def w_quad(a, en, em, dn, dm, mu, kT):
    """(1/π)∫ (ω−μ)^a (−f') L_n L_m on μ ± 45 kT; returns (value, ∫|integrand|)."""
    def g(w):
        return (w - mu) ** a * minus_fermi_prime(w - mu, kT) * lor(w, en, dn) * lor(w, em, dm)
    edges = _edges(mu - 45 * kT, mu + 45 * kT, (*peak_points(en, dn, em, dm), mu))
    return quad_sum(g, edges) / np.pi, quad_sum(lambda w: abs(g(w)), edges) / np.pi


def y_quad(en, em, dn, dm, mu, kT):
    """−(2/π)∫ f L_n Re[G_m²] over the real line."""
    def g(w):
        return fermi(w - mu, kT) * lor(w, en, dn) * (1.0 / (w - em + 1j * dm) ** 2).real
    s = max(dn, dm, kT)
    pts = (*peak_points(en, dn, em, dm), mu, mu + 45 * kT, min(en, em, mu) - 1e3 * s)
    edges = [-np.inf, *sorted(set(pts)), np.inf]
    return -2.0 / np.pi * quad_sum(g, edges), 2.0 / np.pi * quad_sum(lambda w: abs(g(w)), edges)


@pytest.mark.parametrize("p", SPREAD)
def test_w_pair_against_quadrature(p) -> None:
    for a in (0, 1, 2):
        ref, size = w_quad(a, *p)
        got = w_pair(a, *p)
        assert abs(got - ref) <= 1e-9 * size, (a, got, ref)


@pytest.mark.parametrize("p", SPREAD)
def test_y_pair_against_quadrature(p) -> None:
    ref, size = y_quad(*p)
    assert abs(y_pair(*p) - ref) <= 1e-9 * max(abs(ref), 1e-3 * size)


def test_pair_broadcasting_and_symmetry() -> None:
    en = np.array([[0.3], [-0.1]])
    em = np.array([-0.2, 0.3, 0.31])
    w = w_pair(1, en, em, 0.01, 0.02, 0.05, 0.03)
    assert w.shape == (2, 3) and w.dtype == np.float64
    for i in range(2):
        for j in range(3):
            assert w[i, j] == pytest.approx(w_pair(1, en[i, 0], em[j], 0.01, 0.02, 0.05, 0.03),
                                            rel=1e-13)
    # W is symmetric in n ↔ m (both branches of the degeneracy test)
    wt = w_pair(1, em[:, None], en[:, 0][None, :], 0.02, 0.01, 0.05, 0.03)
    assert wt.shape == (3, 2)
    np.testing.assert_allclose(wt.T, w, rtol=1e-12)
    with pytest.raises(ValueError):
        w_pair(0, 0.1, 0.2, 0.0, 0.01, 0.0, 0.01)
    with pytest.raises(ValueError):
        w_pair(3, 0.1, 0.2, 0.01, 0.01, 0.0, 0.01)


def _fp_inner_mp(w, em, dm) -> float:
    """Hadamard FP ∫ L_m(ω')/(ω − ω')² dω' = ∫_0^∞ [L(ω+x) + L(ω−x) − 2L(ω)]/x² dx (mpmath)."""
    w, em, dm = mp.mpf(w), mp.mpf(em), mp.mpf(dm)
    def g(t):
        return -dm / ((t - em) ** 2 + dm**2)
    g2 = mp.diff(g, w, 2)  # the x → 0 limit of the integrand (tanh-sinh samples x ≈ 0)
    def h(x):
        return g2 if x < 1e-12 else (g(w + x) + g(w - x) - 2 * g(w)) / x**2
    peak = abs(w - em)
    around = {peak + k * dm for k in (-10, -1, 0, 1, 10)}
    pts = sorted({0.0, dm, 10 * dm} | {p for p in around if p > 0})
    return float(mp.quad(h, [*pts, mp.inf]))


def test_inner_finite_part_identity() -> None:
    mp.mp.dps = 50
    em, dm = 0.2, 0.03
    for w in (-1.0, 0.0, 0.19, 0.2, 0.215, 0.5):
        closed = -np.pi * (1.0 / (w - em + 1j * dm) ** 2).real
        assert abs(_fp_inner_mp(w, em, dm) - closed) <= 1e-12 * abs(closed)


def _fp_inner_float(w, em, dm) -> float:
    """Same finite part in double precision: Taylor piece on [0, x0], quad beyond."""
    u, D = w - em, (w - em) ** 2 + dm**2
    x0 = 1e-4 * math.sqrt(D)
    second = 2 * dm * (dm**2 - 3 * u**2) / D**3  # L''(ω)
    def h(x):
        return (lor(w + x, em, dm) + lor(w - x, em, dm) - 2 * lor(w, em, dm)) / x**2
    edges = [x0, *sorted({x0 * 10, abs(u) + x0, 100 * math.sqrt(D)}), np.inf]
    return second * x0 + sum(quad(h, lo, hi, epsabs=1e-300, epsrel=1e-10, limit=200)[0]
                             for lo, hi in itertools.pairwise(edges))


@pytest.mark.slow  # nested quadrature: ~2.5 s per case, ~3.5 s on a loaded machine
@pytest.mark.parametrize("p", [SPREAD[0], SPREAD[2], (0.1, -0.05, 0.02, 0.01, 0.0, 0.05)])
def test_y_pair_against_double_integral(p) -> None:
    en, em, dn, dm, mu, kT = p
    def g(w):
        return fermi(w - mu, kT) * lor(w, en, dn) * _fp_inner_float(w, em, dm)
    s = max(dn, dm, kT)
    edges = [-np.inf, *sorted({en, em, mu, mu + 40 * kT, min(en, em) - 100 * s}), np.inf]
    ref = 2.0 / np.pi**2 * sum(
        quad(g, lo, hi, epsabs=1e-300, epsrel=1e-8, limit=200)[0]
        for lo, hi in itertools.pairwise(edges)
    )
    assert abs(y_pair(*p) - ref) <= 1e-7 * abs(ref)


def test_clean_limit_of_hall_kernel() -> None:
    # Y_nm → 2 f(ε_n)/(ε_n − ε_m)² as δ, kT → 0, with error O(δ) (theory §3)
    en, em, mu = -0.3, 0.2, 0.0
    errs = []
    for s in (1e-2, 1e-3, 1e-4, 1e-5):
        errs.append(abs(y_pair(en, em, s, s, mu, s) - 2.0 / (en - em) ** 2))
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 5) & (ratios < 20)), ratios
    assert errs[-1] < 1e-3
    assert abs(y_pair(em, en, 1e-6, 1e-6, mu, 1e-6)) < 1e-4  # f(ε_n) = 0


def test_resonant_limit_of_w() -> None:
    # δ ≪ kT, n ≠ m: W ≈ [δ_m x_n^a (−f'(x_n)) + δ_n x_m^a (−f'(x_m))]/(ε_n − ε_m)² (theory §3)
    kT, mu = 0.05, 0.0
    en, em = mu + 0.5 * kT, mu - 1.3 * kT
    for a in (0, 1, 2):
        rel = []
        for r in (1e-2, 1e-3, 1e-4):
            dn, dm = r * kT, 2 * r * kT
            lim = (dm * (en - mu) ** a * minus_fermi_prime(en - mu, kT)
                   + dn * (em - mu) ** a * minus_fermi_prime(em - mu, kT)) / (en - em) ** 2
            rel.append(abs(w_pair(a, en, em, dn, dm, mu, kT) / lim - 1))
        assert rel[0] < 0.2 and rel[1] < rel[0] / 5 and rel[2] < rel[1] / 5, (a, rel)


def test_zero_temperature_limit_of_k0() -> None:
    # K_0 → −1/ζ; Sommerfeld: K_0 = −Σ_j <x^2j>/ζ^(2j+1), <x²> = π²kT²/3, <x⁴> = 7π⁴kT⁴/15.
    # K_1 = 1 + ζK_0 and K_2 = ζK_1 are pure thermal corrections: they must keep full relative
    # accuracy however small kT/|ζ| is (no cancellation of 1 + ζK_0).
    zeta = np.array([0.3 - 0.01j, -0.2 - 0.05j, 1e-3 - 1e-3j])
    for kT in (1e-5, 1e-7, 1e-9):
        K = k_series(zeta, kT, 0)[:, 0]
        assert np.all(np.abs(K[0] * zeta + 1.0) <= 10 * (kT / np.abs(zeta)) ** 2 + 1e-15)
        som1 = -(np.pi**2) / 3 * kT**2 / zeta**2 - 7 * np.pi**4 / 15 * kT**4 / zeta**4
        np.testing.assert_allclose(K[1] / som1, 1.0, rtol=1e-5)
        np.testing.assert_allclose(K[2] / (zeta * som1), 1.0, rtol=1e-5)


def _lambda_diff_quad(z1, z2, kT) -> complex:
    def g(x):
        return fermi(x, kT) * (1.0 / (x - z1) - 1.0 / (x - z2))
    pts = sorted({*peak_points(z1.real, abs(z1.imag), z2.real, abs(z2.imag)), 0.0, 40 * kT, -1e3})
    edges = [-np.inf, *pts, np.inf]
    re = quad_sum(lambda x: g(x).real, edges)
    im = quad_sum(lambda x: g(x).imag, edges)
    return re + 1j * im


@pytest.mark.parametrize("kT", [0.003, 0.1])
def test_lambda_differences(kT) -> None:
    def lam(z):
        # Schwarz reflection for the upper half plane
        if z.imag < 0:
            return lambda_series(z, kT, 0)[0]
        return np.conj(lambda_series(np.conj(z), kT, 0)[0])
    for z1, z2 in ((0.1 - 0.02j, -0.3 - 0.01j), (0.1 - 0.02j, 0.05 + 0.03j),
                   (0.0 - 1e-3j, 0.0 + 1e-3j), (2.0 - 0.5j, -1.0 + 0.2j)):
        ref = _lambda_diff_quad(z1, z2, kT)
        assert abs(lam(z1) - lam(z2) - ref) <= 1e-10 * max(abs(ref), 1.0)


def _mp_funcs(kT):
    """Λ and K_a as mpmath functions of ζ (Im ζ < 0), straight from their theory §3 definitions."""
    b = 1 / mp.mpf(kT)
    def c(z):
        return 0.5 + 1j * b * z / (2 * mp.pi)
    def lam(z):
        return mp.digamma(c(z)) - mp.log(b / (2 * mp.pi)) - 0.5j * mp.pi
    def k0(z):
        return -(1j * b / (2 * mp.pi)) * mp.psi(1, c(z))
    return lam, (k0, lambda z: 1 + z * k0(z), lambda z: z + z * z * k0(z))


@pytest.mark.parametrize("kT", [0.01, 1e-4])
def test_series_derivatives_against_mpmath(kT) -> None:
    # mpmath differentiates numerically (its own step/extrapolation), independent of our series
    mp.mp.dps = 30
    zeta = np.array([0.02 - 0.01j, -0.3 - 0.002j, 0.001 - 0.02j, 1.0 - 1e-3j])
    qmax = 6
    lam, ks = lambda_series(zeta, kT, qmax), k_series(zeta, kT, qmax)
    mlam, mks = _mp_funcs(kT)
    for i, z in enumerate(zeta):
        zc = mp.mpc(z.real, z.imag)
        for q, ref in enumerate(mp.diffs(mlam, zc, qmax)):
            assert abs(lam[q, i] - complex(ref)) <= 1e-11 * abs(ref) + 1e-13, (q, z)
        for a in range(3):
            for q, ref in enumerate(mp.diffs(mks[a], zc, qmax)):
                assert abs(ks[a, q, i] - complex(ref)) <= 1e-9 * abs(ref) + 1e-12, (a, q, z)


def test_k_series_finite_differences() -> None:
    # d/dζ of order q−1 by a 4-point central difference, in both evaluation branches
    kT, h = 0.02, 1e-4
    zeta = np.array([0.01 - 0.01j, 0.5 - 0.03j, 3.0 - 0.1j])
    q = 9
    ks = k_series(zeta, kT, q)
    up = [k_series(zeta + s * h, kT, q - 1)[:, q - 1] for s in (-2, -1, 1, 2)]
    fd = (up[0] - 8 * up[1] + 8 * up[2] - up[3]) / (12 * h)
    np.testing.assert_allclose(fd, ks[:, q], rtol=1e-6)


def test_fermi_helpers_overflow_safe() -> None:
    x = np.array([-1e5, -1.0, 0.0, 1.0, 1e5])
    with np.errstate(over="raise"):
        f, mfp = fermi(x, 1e-3), minus_fermi_prime(x, 1e-3)
    assert f[0] == 1.0 and f[2] == 0.5 and f[-1] == 0.0
    assert mfp[2] == pytest.approx(250.0) and mfp[0] == 0.0 and mfp[-1] == 0.0
    with pytest.raises(ValueError):
        lambda_series(np.array([0.1 + 0.01j]), 0.01, 2)
