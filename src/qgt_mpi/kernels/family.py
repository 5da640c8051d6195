"""The digamma family at a set of points in one upward recurrence (theory §3.4, §4.6).

The sweep evaluation needs, at every c = 1/2 + iβζ/2π of a kernel table, ψ^(n)(c) for
n = 0..nmax and, for the Hall energy moments, the remainders R_1(c) and E(c) of
kernels.hall_moments. Evaluating them one by one repeats the shift to |c + M| ≥ R for each
function, and E(c) needed ψ and ln Γ at every shifted point (O(M²) work per element).
Here one pass over k = M−1, …, 0 carries everything, in terms of the Stirling remainders

    r_ψ(x) = ψ(x) − ln x + 1/(2x),        r_Γ(x) = ln Γ(x) − (x − ½) ln x + x − ln(2π)/2,

which are O(1/x) and obey, with t = 1/(2x + 1) (|t| ≤ 1/2 for Re x ≥ 1/2),

    r_ψ(x) = r_ψ(x + 1) + 2 artanh t − ½ (1/x + 1/(x + 1)),     (ln(1 + 1/x) = 2 artanh t)
    r_Γ(x) = r_Γ(x + 1) + artanh(t)/t − 1.

Both increments are O(1/x³) and O(1/x²), formed without cancellation beyond their own size,
so the errors of the pass stay at the rounding of the increments. In these variables the
recurrence step of E (hall_moments docstring) is E(x) = E(x + 1) − [2x r_ψ(x) − 2 r_Γ(x) +
1/(3x)], whose O(1/x) terms cancel to O(1/x³) only by a factor x² (before: terms of size
x ln x for a step of size 1/x³). Against 40-digit mpmath over |c| ≤ 30 the maximum error of
E is 1.5e-14 absolute (1.4e-13 before). Finally

    ψ(c) = r_ψ(c) + ln c − 1/(2c),   R_1(c) = (c − ½) r_ψ(c) − r_Γ(c) + 1/(4c),
    ψ^(n)(c) = ψ^(n)(c + M) + (−1)^(n+1) n! Σ_{k<M} (c + k)^(−n−1),  n ≥ 1,

and at w = c + M (|w| ≥ R) every function is its asymptotic series (Stirling's series term
by term; E as in hall_moments), all from one table of powers w^(−2k). R = R_FAMILY up to
nmax = 3 and nmax + 14 above (the series of high derivatives need a larger |w| before their
terms fall below 1e-17); the number of terms K is the smallest that meets polygamma's
remainder bound < 1e-17 relative for every order (≥ 16 for the Hall remainders).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .polygamma import _log_bound, _shifts

__all__ = ["R_FAMILY", "Family", "bernoulli_even", "family"]

R_FAMILY = 12.0  # |w| from which the asymptotic series are used (nmax ≤ 3)
_K_MAX = 60  # most Bernoulli terms a series may need
_BLOCK = 4096  # arguments per pass: the recurrence's arrays stay in cache (−27 % at 10⁴)
_HALL_TERMS = 16  # Bernoulli terms of the Hall remainders' series at R_FAMILY
_LN2PI = math.log(2.0 * math.pi)


class Family(NamedTuple):
    """ψ^(n)(c), n = 0..nmax (shape (nmax+1, n_c)); R_1(c) and E(c) (None without hall)."""

    psi: np.ndarray
    r1: np.ndarray | None
    e: np.ndarray | None


@lru_cache(maxsize=8)
def bernoulli_even(kmax: int) -> np.ndarray:
    """Exact B_2, B_4, ..., B_2kmax (Akiyama–Tanigawa; scipy's B_4 is off by 2e-12)."""
    a = [Fraction(0)] * (2 * kmax + 1)
    out = []
    for m in range(2 * kmax + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        if m >= 2 and m % 2 == 0:
            out.append(float(a[0]))
    return np.array(out)


def radius(nmax: int) -> float:
    """|w| from which the asymptotic series of orders 0..nmax are used (module docstring)."""
    return R_FAMILY if nmax <= 3 else float(nmax + 14)


@lru_cache(maxsize=32)
def _series_rows(nmax: int, hall: bool) -> np.ndarray:
    """Coefficient rows against w^(−2k), k = 1..K (module docstring).

    Row 0: r_ψ; row 1: r_Γ/w; rows 2..nmax+1: the bracket sums of ψ^(n), n = 1..nmax
    (polygamma._plan); with ``hall`` two more rows, E's odd part times w and its even part.
    """
    K = _HALL_TERMS if hall else 4
    while max(_log_bound(n, K, radius(nmax)) for n in range(nmax + 1)) > -17:
        K += 1
        if K > _K_MAX:
            raise ValueError(f"no asymptotic series of psi^({nmax}) reaches 1e-17 at "
                             f"|w| = {radius(nmax)}")
    b = bernoulli_even(K + 1)  # b[k-1] = B_2k
    k = np.arange(1, K + 1)
    rows = [-b[:K] / (2 * k), b[:K] / (2 * k * (2 * k - 1))]
    for n in range(1, nmax + 1):
        rows.append(b[:K] * np.exp([math.lgamma(2 * j + n) - math.lgamma(2 * j + 1) for j in k]))
    if hall:
        rows.append(b[1 : K + 1] / (2 * k + 1))  # B_2(j+1)/(2j+1) w^(−2j−1)
        rows.append(-(b[:K] / (6 * k) + b[1 : K + 1] / (2 * k)))  # w^(−2j)
    return np.array(rows)


def _asymptotic(w: np.ndarray, nmax: int, hall: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """r_ψ, r_Γ, ψ^(1..nmax) and E at |w| ≥ R_FAMILY from their series."""
    rows = _series_rows(nmax, hall)
    inv = 1.0 / w
    inv2 = inv * inv
    powers = np.empty((rows.shape[1], w.size), dtype=complex)
    powers[0] = inv2
    for k in range(1, rows.shape[1]):
        np.multiply(powers[k - 1], inv2, out=powers[k])
    s = rows @ powers
    derivs = np.empty((nmax, w.size), dtype=complex)
    un = np.ones_like(inv)
    for n in range(1, nmax + 1):
        un = un * inv
        lead = math.factorial(n - 1) + 0.5 * math.factorial(n) * inv + s[1 + n]
        derivs[n - 1] = (-1.0) ** (n + 1) * un * lead
    e = s[nmax + 2] * inv + s[nmax + 3] if hall else None
    return s[0], s[1] * w, derivs, e


def family(c: np.ndarray, nmax: int, hall: bool) -> Family:
    """ψ^(n)(c), n = 0..nmax, and with ``hall`` R_1(c), E(c), for flat complex c, Re c ≥ 1/2.

    One upward recurrence shared by all functions (module docstring). Local, vectorised
    over c; the Python loop runs over the shift k only (≤ radius(nmax) + 1 steps).
    """
    c = np.asarray(c, dtype=complex).ravel()
    if c.size and (not np.all(np.isfinite(c)) or np.min(c.real) < 0.5 - 1e-12):
        raise ValueError("the digamma family needs finite arguments with real part >= 1/2")
    if c.size <= _BLOCK:
        return _family(c, nmax, hall)
    parts = [_family(c[i : i + _BLOCK], nmax, hall) for i in range(0, c.size, _BLOCK)]
    return Family(np.concatenate([p.psi for p in parts], axis=1),
                  *(None if not hall else np.concatenate([getattr(p, f) for p in parts])
                    for f in ("r1", "e")))


def _family(c: np.ndarray, nmax: int, hall: bool) -> Family:
    """family() on one block of at most _BLOCK arguments."""
    m = _shifts(c, radius(nmax))
    order = np.argsort(-m, kind="stable")
    ms = m[order]
    cs = c[order]
    w = cs + ms
    rpsi, rgam, derivs, e = _asymptotic(w, nmax, hall)
    sums = np.zeros((nmax + 1, c.size), dtype=complex)  # Σ_k (c + k)^(−n−1)
    x_rpsi, sum_rgam = np.zeros_like(cs), np.zeros_like(cs)  # used with ``hall`` only
    counts = np.searchsorted(-ms, -np.arange(int(ms[0]) if ms.size else 0), side="left")
    top = ms - 1.0
    for i, cnt in enumerate(counts):  # x = c + k, k = M−1 … 0; elements with M > i
        x = cs[:cnt] + (top[:cnt] - i)  # c + k exactly as c + integer (not w − integer)
        inv = 1.0 / x
        sums[0, :cnt] += inv
        if hall:  # ½(1/x + 1/(x + 1)) = 2t/(1 − t²)
            t = 1.0 / (2.0 * x + 1.0)
            a = np.arctanh(t)
            rp, rg = rpsi[:cnt], rgam[:cnt]
            rp += 2.0 * (a - t / (1.0 - t * t))
            rg += a / t - 1.0
            x_rpsi[:cnt] += x * rp  # E(c) = E(w) − Σ [2x r_ψ(x) − 2 r_Γ(x) + 1/(3x)]
            sum_rgam[:cnt] += rg
        p = inv
        for n in range(1, nmax + 1):
            p = p * inv
            sums[n, :cnt] += p
    psi = np.empty((nmax + 1, c.size), dtype=complex)
    for n in range(1, nmax + 1):
        psi[n, order] = derivs[n - 1] + (-1.0) ** (n + 1) * math.factorial(n) * sums[n]
    if not hall:  # ψ(c) = ψ(w) − Σ 1/(c + k): no Stirling remainders needed
        psi[0, order] = rpsi + np.log(w) - 0.5 / w - sums[0]
        return Family(psi, None, None)
    psi[0, order] = rpsi + np.log(cs) - 0.5 / cs
    assert e is not None  # _asymptotic returns E with ``hall``
    r1, e_out = np.empty_like(c), np.empty_like(c)
    r1[order] = (cs - 0.5) * rpsi - rgam + 0.25 / cs
    e_out[order] = e - (2.0 * (x_rpsi - sum_rgam) + sums[0] / 3.0)
    return Family(psi, r1, e_out)
