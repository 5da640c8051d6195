"""Vectorised complex polygamma functions ψ^(n)(z), n = 0..nmax (theory §3).

SciPy has no complex polygamma; the closed-form kernels of theory §3 need ψ, ψ', ψ'', ... of
complex argument c with Re c ≥ 1/2.  Method (theory §3, "recurrence to large |c|, then the
asymptotic series"):

* upward recurrence  ψ^(n)(z) = ψ^(n)(z+M) + (−1)^(n+1) n! Σ_{k=0}^{M−1} (z+k)^(−n−1),
  with a per-element shift M, the smallest with |z+M| ≥ R (elements already outside the disc
  pay nothing; elements are sorted by M so every step works on a contiguous prefix);
* asymptotic series at w = z+M:
  ψ(w) ~ ln w − 1/(2w) − Σ_k B_2k/(2k w^2k),
  ψ^(n)(w) ~ (−1)^(n+1) [(n−1)!/w^n + n!/(2 w^(n+1)) + Σ_k B_2k (2k+n−1)!/((2k)! w^(2k+n))].

All orders are computed together and share the powers of 1/(z+k) and 1/w.  The radius R and
the number of Bernoulli terms K are chosen per nmax from the remainder bound |first omitted
term| × sec^(2K+n)(arg w / 2) with |arg w| ≤ π/2, so the truncation error is < 1e-17 relative.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.special import bernoulli

__all__ = ["digamma", "polygamma", "tetragamma", "trigamma", "trigamma_half_remainder"]

_TARGET = 1e-17  # relative truncation target of the asymptotic series


def _log_bound(n: int, K: int, R: float) -> float:
    """log10 of the remainder bound of the K-term asymptotic series of ψ^(n), relative."""
    b2 = abs(float(bernoulli(2 * K + 2)[-1]))
    m = 2 * K + 2
    lf = math.lgamma(m + n) - math.lgamma(m + 1) - math.lgamma(max(n, 1))
    return (math.log(b2) + lf - m * math.log(R) + 0.5 * (m + n) * math.log(2.0)) / math.log(10)


@lru_cache(maxsize=64)
def _plan(nmax: int) -> tuple[float, np.ndarray]:
    """Radius R and asymptotic coefficient table for orders 0..nmax (theory §3).

    Returns R and C of shape (nmax+1, K) with C[n, k−1] the coefficient of w^(−2k) inside the
    bracket of ψ^(n) (for n = 0: −B_2k/(2k); for n ≥ 1: B_2k (2k+n−1)!/(2k)!).
    """
    R = float(max(12, nmax + 14))
    K = 4
    while K < 60 and max(_log_bound(n, K, R) for n in range(nmax + 1)) > math.log10(_TARGET):
        K += 1
    b = bernoulli(2 * K)
    C = np.empty((nmax + 1, K))
    for k in range(1, K + 1):
        C[0, k - 1] = -b[2 * k] / (2 * k)
        for n in range(1, nmax + 1):
            C[n, k - 1] = b[2 * k] * math.exp(
                math.lgamma(2 * k + n) - math.lgamma(2 * k + 1)
            )
    return R, C


def _shifts(z: np.ndarray, R: float) -> np.ndarray:
    """Smallest integer M ≥ 0 per element with |z + M| ≥ R (Re z ≥ 0 assumed)."""
    y2 = z.imag**2
    need = np.sqrt(np.maximum(R * R - y2, 0.0)) - z.real
    return np.where(y2 >= R * R, 0, np.ceil(np.maximum(need, 0.0))).astype(np.int64)


def _asymptotic(nmax: int, w: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Asymptotic series of ψ^(n)(w), n = 0..nmax, for flat |w| ≥ R (theory §3)."""
    u = 1.0 / w
    u2 = u * u
    powers = np.empty((C.shape[1], w.size), dtype=complex)
    powers[0] = u2
    for k in range(1, C.shape[1]):
        powers[k] = powers[k - 1] * u2
    series = C @ powers
    out = np.empty((nmax + 1, w.size), dtype=complex)
    out[0] = np.log(w) - 0.5 * u + series[0]
    un = np.ones_like(u)
    for n in range(1, nmax + 1):
        un = un * u
        lead = math.factorial(n - 1) + 0.5 * math.factorial(n) * u + series[n]
        out[n] = (-1.0) ** (n + 1) * un * lead
    return out


def _shifted_sum(z: np.ndarray, R: float, nout: int, step: Callable[[np.ndarray], np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Σ_{k<M} step(z+k) with the per-element shift M of :func:`_shifts` (theory §3).

    ``step(u)`` returns the ``(nout, u.size)`` contributions of one recurrence step.  Elements are
    sorted by decreasing M so that step k only touches the contiguous prefix with M > k.
    Returns the sums and the shifted arguments z + M, both in the original element order.
    """
    M = _shifts(z, R)
    order = np.argsort(-M, kind="stable")
    zs, Ms = z[order], M[order]
    acc = np.zeros((nout, z.size), dtype=complex)
    for k in range(int(Ms[0]) if Ms.size else 0):
        cnt = int(np.searchsorted(-Ms, -k, side="left"))  # elements with M > k
        acc[:, :cnt] += step(zs[:cnt] + k)
    out = np.empty_like(acc)
    out[:, order] = acc
    return out, z + M


def _check(z: np.ndarray, lo: float, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=complex)
    if z.size and (not np.all(np.isfinite(z)) or np.min(z.real) < lo - 1e-12):
        raise ValueError(f"{name} needs finite arguments with real part >= {lo}")
    return z


def polygamma(nmax: int, z: np.ndarray) -> np.ndarray:
    """ψ^(n)(z) for n = 0..nmax and complex z with Re z ≥ 1/2 (theory §3).

    Parameters
    ----------
    nmax : int
        Highest derivative order (≥ 0).
    z : array_like
        Complex arguments, any shape, Re z ≥ 1/2.

    Returns
    -------
    numpy.ndarray
        complex128 array of shape ``(nmax+1,) + z.shape``.

    Raises
    ------
    ValueError
        If any Re z < 1/2 (beyond a 1e-12 tolerance) or nmax < 0.
    """
    if nmax < 0:
        raise ValueError("nmax must be >= 0")
    z = _check(z, 0.5, "polygamma")
    R, C = _plan(nmax)

    def step(u: np.ndarray) -> np.ndarray:
        inv = 1.0 / u
        pw = np.empty((nmax + 1, u.size), dtype=complex)
        pw[0] = inv
        for n in range(1, nmax + 1):
            np.multiply(pw[n - 1], inv, out=pw[n])
        return pw

    acc, shifted = _shifted_sum(z.ravel(), R, nmax + 1, step)
    out = _asymptotic(nmax, shifted, C)
    for n in range(nmax + 1):
        out[n] += (-1.0) ** (n + 1) * math.factorial(n) * acc[n]
    return out.reshape((nmax + 1, *z.shape))


def digamma(z: np.ndarray) -> np.ndarray:
    """ψ(z) for Re z ≥ 1/2 (theory §3)."""
    return polygamma(0, z)[0]


def trigamma(z: np.ndarray) -> np.ndarray:
    """ψ'(z) for Re z ≥ 1/2 (theory §3)."""
    return polygamma(1, z)[1]


def tetragamma(z: np.ndarray) -> np.ndarray:
    """ψ''(z) for Re z ≥ 1/2 (theory §3)."""
    return polygamma(2, z)[2]


def _phi_step(qmax: int, u: np.ndarray) -> np.ndarray:
    """E_q(u), q = 0..qmax, with g^(q)(u) = −¼ (−1)^q q! P(u) E_q(u) (theory §3).

    g(u) = φ(u) − φ(u+1) = 1/(u+½)² − 1/(u(u+1)) = −¼ P(u), P = (u+½)^(−2) u^(−1) (u+1)^(−1).
    Leibniz on the product gives q! (−1)^q P Σ_{i+j+l=q} (i+1) a^i b^j c^l with a = 1/(u+½),
    b = 1/u, c = 1/(u+1): all terms share a phase, so no cancellation.  Recursions:
    T_s = c T_(s−1) + b^s, F_q = a F_(q−1) + T_q, E_q = a E_(q−1) + F_q.  Returns P E_q.
    """
    a, b, c = 1.0 / (u + 0.5), 1.0 / u, 1.0 / (u + 1.0)
    P = a * a * b * c
    out = np.empty((qmax + 1, u.size), dtype=complex)
    T = np.ones_like(u)
    F = T.copy()
    E = T.copy()
    bs = T.copy()
    out[0] = P
    for q in range(1, qmax + 1):
        bs *= b
        T = c * T + bs
        F = a * F + T
        E = a * E + F
        out[q] = P * E
    return out


def _phi_asymptotic(qmax: int, w: np.ndarray, K: int) -> np.ndarray:
    """φ^(q)(w) ~ −(−1)^q Σ_k (1 − 2^(1−2k)) B_2k (2k+q)!/(2k)! w^(−2k−1−q) (theory §3)."""
    b = bernoulli(2 * K)
    u = 1.0 / w
    u2 = u * u
    out = np.empty((qmax + 1, w.size), dtype=complex)
    uq = u.copy()
    for q in range(qmax + 1):
        coef = [
            -(-1.0) ** q * (1 - 2.0 ** (1 - 2 * k)) * b[2 * k]
            * math.exp(math.lgamma(2 * k + q + 1) - math.lgamma(2 * k + 1))
            for k in range(1, K + 1)
        ]
        out[q] = np.polyval([*coef[::-1], 0.0], u2) * uq
        uq = uq * u
    return out


def trigamma_half_remainder(qmax: int, w: np.ndarray) -> np.ndarray:
    """φ^(q)(w), q = 0..qmax, of φ(w) = ψ'(1/2 + w) − 1/w, for Re w ≥ 0, w ≠ 0 (theory §3).

    φ is the thermal part of the K_0 kernel, K_0(ζ) = −1/ζ − (iβ/2π) φ(iβζ/2π); it is small
    (≈ −1/(12 w³)) for large |w|, where ψ'(1/2+w) − 1/w would cancel.  Computed without
    cancellation: recurrence φ(w) = φ(w+1) + g(w) (see :func:`_phi_step`) up to |w+M| ≥ R, then
    the odd asymptotic series ψ'(1/2+w) − 1/w ~ −Σ_k (1 − 2^(1−2k)) B_2k w^(−2k−1), which
    follows from B_2k(1/2) = −(1 − 2^(1−2k)) B_2k.

    Returns
    -------
    numpy.ndarray
        complex128, shape ``(qmax+1,) + w.shape``.
    """
    w = _check(w, 0.0, "trigamma_half_remainder")
    if w.size and np.min(np.abs(w)) == 0.0:
        raise ValueError("trigamma_half_remainder has a pole at w = 0")
    R, C = _plan(qmax + 1)
    acc, shifted = _shifted_sum(w.ravel(), R, qmax + 1, lambda u: _phi_step(qmax, u))
    out = _phi_asymptotic(qmax, shifted, C.shape[1])
    for q in range(qmax + 1):
        out[q] += -0.25 * (-1.0) ** q * math.factorial(q) * acc[q]
    return out.reshape((qmax + 1, *w.shape))
