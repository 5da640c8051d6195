"""Closed-form Lorentzian kernels W^(a)_nm and Y_nm (theory §3).

Energies in meV, temperature as kT in meV (β = 1/kT); z_n = ε_n − iδ_n, ζ = z − μ and
c = 1/2 + iβζ/2π (Re c ≥ 1/2 for Im ζ < 0).  Every function is evaluated for Im ζ < 0; values
at ζ̄ follow from Schwarz reflection F(ζ̄) = conj F(ζ).

* Λ(ζ) = ψ(c) − ln(β/2π) − iπ/2 is the regularised ∫ f(x)/(x − ζ) dx (only differences are
  used, and those are exact); Λ^(q) = (iβ/2π)^q ψ^(q)(c).
* K_a(ζ) = ∫ (−f'(x)) x^a/(x − ζ) dx:  K_0 = −Λ', K_1 = 1 + ζK_0, K_2 = ζ + ζ²K_0.
  For |w| = β|ζ|/2π ≥ 1 they are formed from the thermal part R_0 = K_0 + 1/ζ =
  −(iβ/2π) φ(w) (:func:`trigamma_half_remainder`) as K_1 = ζR_0, K_2 = ζ²R_0, which avoids the
  cancellation 1 + ζK_0 → 0 at |ζ| ≫ kT.
* π W^(a)_nm = ½ Re[K_a[ζ_n, ζ̄_m] − K_a[ζ_n, ζ_m]] (divided differences), the last one by its
  Taylor series about ζ_n when |z_m − z_n| < ETA_DEG (min δ + π kT).
* Y_nm = −(1/π) Im(Λ[ζ_n, ζ_m, ζ_m] + Λ[ζ_n, ζ̄_m, ζ̄_m]), the first by its Taylor series
  Σ_{p≥2} Λ^(p)(ζ_n) h^(p−2) (p−1)/p! (h = ζ_m − ζ_n) under the same criterion.

Accuracy: ~1e-12 relative in general.  Known loss: pairs that are close (|z_m − z_n| just above
the degeneracy radius) but far from μ with δ, kT ≪ |ε − μ| lose about
1e-16 (|ε−μ|/δ)² |ε−μ|/|z_m − z_n| (W) and similarly for Y (e.g. 2e-8 for δ = 1e-3,
kT = 1e-5, ε − μ = 0.25, ε_m − ε_n = 1.2e-4); there the kernels are tail-dominated and tiny.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from .polygamma import polygamma, trigamma_half_remainder

__all__ = [
    "ETA_DEG",
    "fermi",
    "k_series",
    "lambda_from_psi",
    "lambda_series",
    "minus_fermi_prime",
    "w_pair",
    "y_from_series",
    "y_pair",
]

ETA_DEG = 0.1  # degeneracy radius, in units of (min δ + π kT), theory §3
_P_TAYLOR = 17  # Taylor terms: error ≲ (P+1) ETA_DEG^P relative


def fermi(x: np.ndarray, kT: float) -> np.ndarray:
    """Fermi function f(x) = 1/(e^(x/kT) + 1), x = ω − μ, overflow-safe (theory §3)."""
    return expit(-np.asarray(x, dtype=float) / kT)


def minus_fermi_prime(x: np.ndarray, kT: float) -> np.ndarray:
    """−f'(x) = β f(x) (1 − f(x)), overflow-safe (theory §3)."""
    bx = np.asarray(x, dtype=float) / kT
    return expit(bx) * expit(-bx) / kT


def _lower(zeta: np.ndarray) -> np.ndarray:
    zeta = np.asarray(zeta, dtype=complex)
    if zeta.size and not np.all(zeta.imag < 0):
        raise ValueError("closed-form kernels need Im zeta < 0 (use Schwarz reflection)")
    return zeta


def lambda_series(zeta: np.ndarray, kT: float | np.ndarray, qmax: int) -> np.ndarray:
    """Λ^(q)(ζ), q = 0..qmax, for Im ζ < 0; shape ``(qmax+1,) + ζ.shape`` (theory §3).

    Λ(ζ) = ψ(c) − ln(β/2π) − iπ/2 and Λ^(q)(ζ) = (iβ/2π)^q ψ^(q)(c), c = 1/2 + iβζ/2π.
    """
    zeta = _lower(zeta)
    g = 1j / (2.0 * np.pi * kT)
    return lambda_from_psi(polygamma(qmax, 0.5 + g * zeta), kT)


def lambda_from_psi(psi: np.ndarray, kT: float | np.ndarray) -> np.ndarray:
    """Λ^(q) from ψ^(q)(c), q = 0..qmax (leading axis), by (3.4); ``psi`` is overwritten.
    ``kT`` is a scalar or one value per element (trailing axis)."""
    kT = np.asarray(kT, dtype=float)
    g = 1j / (2.0 * np.pi * kT)
    psi[0] -= np.log(1.0 / (2.0 * np.pi * kT)) + 0.5j * np.pi
    for q in range(1, psi.shape[0]):
        psi[q] *= g**q
    return psi


def _leibniz(B: np.ndarray, zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of ζB and ζ²B from those of B, q = 0..qmax (theory §3, Leibniz rule)."""
    Bm1 = np.concatenate([np.zeros_like(B[:1]), B[:-1]])
    Bm2 = np.concatenate([np.zeros_like(B[:1]), Bm1[:-1]])
    q = np.arange(B.shape[0]).reshape((-1,) + (1,) * (B.ndim - 1))
    return zeta * B + q * Bm1, zeta**2 * B + 2 * q * zeta * Bm1 + q * (q - 1) * Bm2


def k_series(zeta: np.ndarray, kT: float | np.ndarray, qmax: int,
             lam: np.ndarray | None = None) -> np.ndarray:
    """K_a^(q)(ζ) for a = 0, 1, 2 and q = 0..qmax, Im ζ < 0; shape ``(3, qmax+1) + ζ.shape``.

    theory §3: K_0 = −Λ', K_1 = 1 + ζK_0, K_2 = ζ + ζ²K_0, derivatives by Leibniz.  Where
    β|ζ|/2π ≥ 1 the same functions are built from R_0 = K_0 + 1/ζ (see module docstring).
    ``lam``, if given, is Λ^(q)(ζ) for q = 0..qmax+1 (flat, as lambda_series) and is used
    where β|ζ|/2π < 1 instead of evaluating it again; then ``kT`` may also be one value per
    element of the flat ζ.
    """
    zeta = _lower(zeta)
    flat = zeta.ravel()
    g = 1j / (2.0 * np.pi * np.asarray(kT))
    w = g * flat
    far = np.abs(w) >= 1.0
    out = np.empty((3, qmax + 1, flat.size), dtype=complex)
    near = ~far
    if np.any(near):
        zn = flat[near]
        K0 = -(lambda_series(zn, kT, qmax + 1) if lam is None else lam[:, near])[1:]
        K1, K2 = _leibniz(K0, zn)
        K1[0] += 1.0
        K2[0] += zn
        if qmax >= 1:
            K2[1] += 1.0
        out[:, :, near] = np.stack([K0, K1, K2])
    if np.any(far):
        zf = flat[far]
        R0 = -trigamma_half_remainder(qmax, w[far])
        inv = 1.0 / zf
        pole = inv.copy()
        g_far = g if np.ndim(g) == 0 else g[far]
        for q in range(qmax + 1):
            R0[q] *= g_far ** (q + 1)
            out[0, q, far] = R0[q] - (-1.0) ** q * math.factorial(q) * pole
            pole = pole * inv
        K1, K2 = _leibniz(R0, zf)
        out[1][:, far] = K1
        out[2][:, far] = K2
    return out.reshape((3, qmax + 1, *zeta.shape))


def _pairs(eps_n: ArrayLike, eps_m: ArrayLike, delta_n: ArrayLike, delta_m: ArrayLike,
           mu: ArrayLike, kT: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast inputs; return flat ζ_n, ζ_m, the degeneracy mask and the output shape."""
    en, em, dn, dm, m = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (eps_n, eps_m, delta_n, delta_m, mu))
    )
    if np.any(dn <= 0) or np.any(dm <= 0) or kT <= 0:
        raise ValueError("broadenings and kT must be positive")
    zn = (en - m - 1j * dn).ravel()
    zm = (em - m - 1j * dm).ravel()
    scale = np.minimum(dn, dm).ravel() + np.pi * kT
    deg = np.abs(zm - zn) < ETA_DEG * scale
    return zn, zm, deg, en.shape


def _taylor_weights(d: np.ndarray, kind: str) -> np.ndarray:
    """Weights of the degenerate Taylor series (theory §3) for p = 0.._P_TAYLOR."""
    p = np.arange(_P_TAYLOR + 1)[:, None]
    fact = np.array([math.factorial(k) for k in range(_P_TAYLOR + 1)], dtype=float)[:, None]
    if kind == "first":  # f[ζ, ζ+d] = Σ_{p≥1} f^(p) d^(p−1)/p!
        return np.where(p >= 1, d ** np.maximum(p - 1, 0) / fact, 0.0)
    # f[ζ, ζ+h, ζ+h] = Σ_{p≥2} f^(p) h^(p−2) (p−1)/p!
    return np.where(p >= 2, (p - 1) * d ** np.maximum(p - 2, 0) / fact, 0.0)


def w_pair(a: int, eps_n: ArrayLike, eps_m: ArrayLike, delta_n: ArrayLike,
           delta_m: ArrayLike, mu: ArrayLike, kT: float) -> np.ndarray:
    """Symmetric kernel W^(a)_nm = (1/π)∫ dω (ω−μ)^a (−f') L_n L_m, a = 0, 1, 2 (theory §3).

    Broadcasts over all array arguments; kT is a positive scalar (meV).  Returns a real array.
    """
    if a not in (0, 1, 2):
        raise ValueError("a must be 0, 1 or 2")
    zn, zm, deg, shape = _pairs(eps_n, eps_m, delta_n, delta_m, mu, kT)
    K = k_series(np.concatenate([zn, zm]), kT, 0)[a, 0]
    Kn, Km = K[: zn.size], K[zn.size :]
    A = (Kn - np.conj(Km)) / (zn - np.conj(zm))
    B = np.empty_like(A)
    nd = ~deg
    B[nd] = (Kn[nd] - Km[nd]) / (zn[nd] - zm[nd])
    if np.any(deg):
        ser = k_series(zn[deg], kT, _P_TAYLOR)[a]
        B[deg] = np.sum(ser * _taylor_weights(zm[deg] - zn[deg], "first"), axis=0)
    return (0.5 / np.pi * (A - B).real).reshape(shape)


def y_pair(eps_n: ArrayLike, eps_m: ArrayLike, delta_n: ArrayLike, delta_m: ArrayLike,
           mu: ArrayLike, kT: float) -> np.ndarray:
    """Hall kernel Y_nm = (2/π²) FP∬ f(ω) L_n(ω) L_m(ω')/(ω − ω')² (theory §3).

    Evaluated as −(1/π) Im(Λ[ζ_n, ζ_m, ζ_m] + Λ[ζ_n, ζ̄_m, ζ̄_m]); broadcasts, returns real.
    """
    return y_from_series(lambda_series, eps_n, eps_m, delta_n, delta_m, mu, kT)


def y_from_series(series: Callable[[np.ndarray, float, int], np.ndarray], eps_n: ArrayLike,
                  eps_m: ArrayLike, delta_n: ArrayLike, delta_m: ArrayLike, mu: ArrayLike,
                  kT: float) -> np.ndarray:
    """−(1/π) Im(F[ζ_n, ζ_m, ζ_m] + F[ζ_n, ζ̄_m, ζ̄_m]) for F^(q) = ``series(ζ, kT, qmax)[q]``.

    The Hall kernel (F = Λ) and its energy moments (F = Λ_a, kernels.hall_moments) share this
    second divided difference and its near-degenerate Taylor series (theory §3, §4.6).
    """
    zn, zm, deg, shape = _pairs(eps_n, eps_m, delta_n, delta_m, mu, kT)
    L = series(np.concatenate([zn, zm]), kT, 1)
    Ln, Lm, dLm = L[0, : zn.size], L[0, zn.size :], L[1, zn.size :]
    h = zn - np.conj(zm)
    T2 = (Ln - np.conj(Lm) - h * np.conj(dLm)) / h**2
    T1 = np.empty_like(T2)
    nd = ~deg
    h1 = zn[nd] - zm[nd]
    T1[nd] = (Ln[nd] - Lm[nd] - h1 * dLm[nd]) / h1**2
    if np.any(deg):
        ser = series(zn[deg], kT, _P_TAYLOR)
        T1[deg] = np.sum(ser * _taylor_weights(zm[deg] - zn[deg], "second"), axis=0)
    return (-(T1 + T2).imag / np.pi).reshape(shape)
