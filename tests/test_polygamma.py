"""Complex polygamma against mpmath (theory §3)."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from qgt_mpi.kernels.polygamma import (
    digamma,
    polygamma,
    tetragamma,
    trigamma,
    trigamma_half_remainder,
)

NMAX = 24
RE = [0.5, 0.5 + 1e-3, 1.0, 3.0, 30.0, 1e4]
IM = [0.0, 1e-3, -1e-3, 0.7, -0.7, 15.0, -15.0, 1e3, -1e3, 1e6, -1e6]


def _grid() -> np.ndarray:
    # the required spread, plus the neighbourhood of the shift radius R ≈ nmax + 14
    extra = [0.5 + 1j * y for y in (37.9, 38.1, 45.0, 80.0)] + [37.5 + 0.1j, 12.0 - 30.0j]
    return np.array([x + 1j * y for x in RE for y in IM] + extra)


def _scale(n: int, ref: complex) -> float:
    # ψ has a real zero at 1.4616…; there compare with the O(1) size of the function
    return max(abs(ref), 1.0) if n == 0 else abs(ref)


def test_polygamma_against_mpmath() -> None:
    mp.mp.dps = 30
    z = _grid()
    got = polygamma(NMAX, z)
    worst = 0.0
    for i, zz in enumerate(z):
        for n in range(NMAX + 1):
            ref = complex(mp.polygamma(n, mp.mpc(zz.real, zz.imag)))
            worst = max(worst, abs(got[n, i] - ref) / _scale(n, ref))
    assert worst <= 1e-12, worst


def test_polygamma_near_real_zero_and_small_orders() -> None:
    mp.mp.dps = 30
    z = np.array([1.4616321449683622, 1.4616321449683622 + 1e-9j, 0.5, 0.75 - 2e-4j])
    for f, n in ((digamma, 0), (trigamma, 1), (tetragamma, 2)):
        got = f(z)
        for i, zz in enumerate(z):
            ref = complex(mp.polygamma(n, mp.mpc(zz.real, zz.imag)))
            assert abs(got[i] - ref) <= 1e-14 * max(abs(ref), 1.0)


def test_polygamma_real_axis_reflection() -> None:
    # Schwarz reflection ψ^(n)(z̄) = conj ψ^(n)(z) and realness on the real axis
    z = np.array([0.5 + 0.3j, 2.0 + 7.0j, 40.0 + 1e3j])
    a, b = polygamma(6, z), polygamma(6, np.conj(z))
    np.testing.assert_allclose(b, np.conj(a), rtol=1e-14)
    assert np.all(polygamma(6, np.array([0.5, 2.0, 77.0])).imag == 0.0)


def test_shapes_and_dtype() -> None:
    z = 1.0 + np.arange(12).reshape(3, 4) * (0.5 + 0.25j)
    out = polygamma(5, z)
    assert out.shape == (6, 3, 4) and out.dtype == np.complex128
    np.testing.assert_allclose(out[:, 1, 2], polygamma(5, z[1:2, 2:3])[:, 0, 0], rtol=1e-15)
    assert polygamma(3, 2.0).shape == (4,)
    assert polygamma(0, np.zeros((0, 2)) + 1.0).shape == (1, 0, 2)


@pytest.mark.parametrize("bad", [0.49, 0.0 + 3j, -2.0, np.array([1.0, 0.4 + 1e3j])])
def test_rejects_left_half(bad) -> None:
    with pytest.raises(ValueError):
        polygamma(2, bad)


def test_accepts_boundary_tolerance() -> None:
    polygamma(2, 0.5 - 1e-13)


def test_half_remainder_against_mpmath() -> None:
    # φ(w) = ψ'(1/2 + w) − 1/w and derivatives, evaluated in high precision (cancellation)
    mp.mp.dps = 60
    w = np.array([1e-3 + 0.2j, 0.3 - 1j, 1.0, 5.0 + 5.0j, 20.0 - 0.2j, 39.0 + 3.0j,
                  41.0 + 0.0j, 0.01 + 60.0j, 1e3 - 2e3j])
    qmax = 8
    got = trigamma_half_remainder(qmax, w)
    for i, ww in enumerate(w):
        t = mp.mpc(ww.real, ww.imag)
        for q in range(qmax + 1):
            ref = mp.polygamma(q + 1, 0.5 + t) - (-1) ** q * math.factorial(q) / t ** (q + 1)
            assert abs(got[q, i] - complex(ref)) <= 1e-13 * abs(ref), (ww, q)


def test_timing_is_reasonable() -> None:
    # ~1e5 points, nmax = 20 (loose bound so slow CI machines pass)
    rng = np.random.default_rng(1)
    z = 0.5 + 50 * rng.random(100_000) + 1j * (100 * rng.random(100_000) - 50)
    import time

    t0 = time.perf_counter()
    polygamma(20, z)
    assert time.perf_counter() - t0 < 2.0
