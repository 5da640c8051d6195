"""Energy moments of the Hall kernel, Y^(a)_nm, a = 0, 1, 2, in closed form (theory §3, §4).

theory §4 defines the antisymmetric transport coefficients by the Smrčka–Středa form
L^(a)_xy = ∫ dε (ε − μ)^a (−f'(ε − μ)) σ_xy(ε; T = 0).  Pair by pair that is

    Y^(a)_nm = ∫ dε (ε − μ)^a (−f'(ε − μ)) Y_nm(μ = ε, T = 0) = ∫ dω g_nm(ω) h_a(ω − μ),

with g_nm(ω) = −(2/π) L_n(ω) Re(ω − z_m)^(−2) the integrand of the Hall kernel (theory §3,
Y_nm = ∫ g_nm f) and, after one integration by parts (Y_nm(ε, 0) = ∫_{−∞}^ε g_nm),

    h_a(x) = ∫_x^∞ y^a (−f'(y)) dy:   h_0 = f,   h_1 = x f + kT ln(1 + e^(−x/kT)) = kT s(f),
    h_2 = x² f + 2 ∫_x^∞ y f(y) dy,

s(f) = −f ln f − (1 − f) ln(1 − f) the entropy function.  Since only the weight f → h_a
changes, the closed form of Y (closed.py) carries over with Λ replaced by the Cauchy
transform Λ_a(ζ) = ∫ h_a(x)/(x − ζ) dx, and Λ_a' = −K_a (K_a of closed.py) because
h_a' = −x^a(−f').  With c = 1/2 + iβζ/2π, g = iβ/2π (Im ζ < 0), L = ln 2π:

* Λ_1(ζ) = R_1(c)/g,  R_1(c) = (c − ½) ψ(c) − ln Γ(c) − (c − ½) + L/2, which decays like
  1/(12c) (Λ_1 → −(π²kT²/3)/ζ; h_1 is integrable, so no regularisation);
* Λ_2(ζ) = (π²kT²/3) Λ_0(ζ) + E(c)/g², where h_2 − (π²kT²/3) f is integrable and
  E(c) = B(c) + ψ(c)/12 − const, B = −u²/2 + u²ψ(c) − 2u ln Γ(c) + 2ψ^(−2)(c), u = c − ½,
  decays like −1/(90c²).  E obeys the recurrence E(c) = E(c + 1) − [ΔB(c) + 1/(12c)],
  ΔB(x) = −3x + 2xψ(x) + (x + ½)²/x − 2 ln Γ(x) − ln x + L (Raabe's ∫_x^{x+1} ln Γ =
  L/2 + x ln x − x), and at |c| ≥ R_ASY its asymptotic series
  E = Σ_{k≥2} B_2k/((2k−1) c^(2k−1)) − Σ_{j≥1} [B_2j/(6j) + B_{2j+2}/(2j)] c^(−2j).

R_1 and E come from kernels.family, which carries ψ, the Stirling remainders of ψ and ln Γ
and E through one upward recurrence to |c + M| ≥ R_ASY (its docstring: errors, cost).

The pair kernels then follow exactly as in closed.y_pair:
Y^(a)_nm = −(1/π) Im(Λ_a[ζ_n, ζ_m, ζ_m] + Λ_a[ζ_n, ζ̄_m, ζ̄_m]), the degenerate first term by
its Taylor series about ζ_n.  All functions are for Im ζ < 0 (Schwarz reflection otherwise).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import spence

from .closed import k_series, lambda_series, y_from_series
from .family import R_FAMILY, Family, family

__all__ = ["R_ASY", "entropy", "h_moment", "lambda_12", "lambda_12_from", "lambda_moments",
           "y_moment_pair"]

R_ASY = R_FAMILY  # |c| from which the asymptotic series are used


def entropy(f: np.ndarray) -> np.ndarray:
    """Entropy function s(f) = −f ln f − (1 − f) ln(1 − f), 0 at f = 0 and 1 (theory §4)."""
    f = np.asarray(f, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -(np.where(f > 0, f * np.log(f), 0.0) + np.where(f < 1, (1 - f) * np.log1p(-f), 0.0))
    return s


def h_moment(a: int, x: np.ndarray, kT: float) -> np.ndarray:
    """Weight h_a(x) = ∫_x^∞ y^a (−f'(y)) dy of the Hall moment Y^(a) (module docstring).

    Evaluated at |x| and reflected (y^a(−f') has parity (−1)^a): h_0(−x) = 1 − h_0(x),
    h_1(−x) = h_1(x), h_2(−x) = π²kT²/3 − h_2(x), which avoids cancellation for x < 0.
    """
    x = np.asarray(x, dtype=float)
    t = np.abs(x) / kT
    u = np.exp(-t)  # ≤ 1
    f = u / (1.0 + u)  # f(|x|)
    lg = np.log1p(u)  # ln(1 + e^(−|x|/kT))
    if a == 0:
        return np.where(x >= 0, f, 1.0 - f)
    if a == 1:
        return kT * (t * f + lg)  # = kT s(f), even in x
    # ∫_|x|^∞ y f = kT|x| lg − kT² Li2(−u); Li2(−u) = −Σ_k (−1)^(k+1) u^k/k² (u ≤ 1/4),
    # else scipy's spence(1 + u) = Li2(−u).
    k = np.arange(1, 31)[:, None]
    series = np.sum((-u.ravel()[None, :]) ** k / k**2, axis=0).reshape(u.shape)
    li2 = np.where(u > 0.25, spence(1.0 + u), series)
    pos = kT**2 * (t * t * f + 2.0 * (t * lg - li2))
    return np.where(x >= 0, pos, math.pi**2 * kT**2 / 3.0 - pos)


def lambda_moments(a: int, zeta: np.ndarray, kT: float, qmax: int) -> np.ndarray:
    """Λ_a^(q)(ζ), q = 0..qmax, Im ζ < 0; shape ``(qmax+1,) + ζ.shape`` (module docstring).

    Λ_0 is closed.lambda_series; for q ≥ 1, Λ_a^(q) = −K_a^(q−1).
    """
    if a not in (0, 1, 2):
        raise ValueError("a must be 0, 1 or 2")
    zeta = np.asarray(zeta, dtype=complex)
    if a == 0:
        return lambda_series(zeta, kT, qmax)
    out = np.empty((qmax + 1, *zeta.shape), dtype=complex)
    if qmax >= 1:
        out[1:] = -k_series(zeta, kT, qmax - 1)[a]
    flat = zeta.ravel()
    if flat.size and not np.all(flat.imag < 0):
        raise ValueError("closed-form kernels need Im zeta < 0 (use Schwarz reflection)")
    out[0] = lambda_12(zeta, kT, lambda_series(zeta, kT, 0)[0])[a - 1]
    return out


def lambda_12(zeta: np.ndarray, kT: float, lam0: np.ndarray) -> np.ndarray:
    """Λ_1(ζ), Λ_2(ζ) at order 0 given Λ_0(ζ) (``lam0``, same shape); (2, ...) (see above).

    The sweep evaluation's fast path: c is formed once and Λ_0 is not recomputed.
    """
    zeta = np.asarray(zeta, dtype=complex)
    g = 1j / (2.0 * math.pi * kT)
    fam = family(0.5 + g * zeta.ravel(), 0, True)
    return lambda_12_from(fam, kT, lam0, zeta.shape)


def lambda_12_from(fam: Family, kT: float | np.ndarray, lam0: np.ndarray,
                   shape: tuple[int, ...]) -> np.ndarray:
    """Λ_1, Λ_2 at order 0 from a kernels.family result with ``hall`` (see lambda_12)."""
    if fam.r1 is None or fam.e is None:
        raise ValueError("lambda_12_from needs a family computed with hall=True")
    g = 1j / (2.0 * math.pi * kT)
    lam1 = fam.r1 / g
    lam2 = math.pi**2 * kT**2 / 3.0 * np.ravel(lam0) + fam.e / g**2
    return np.stack([lam1.reshape(shape), lam2.reshape(shape)])


def y_moment_pair(a: int, eps_n: ArrayLike, eps_m: ArrayLike, delta_n: ArrayLike,
                  delta_m: ArrayLike, mu: ArrayLike, kT: float) -> np.ndarray:
    """Hall energy moment Y^(a)_nm = ∫ dω g_nm(ω) h_a(ω − μ), a = 0, 1, 2 (theory §4).

    Y^(0) is closed.y_pair.  Evaluated as −(1/π) Im(Λ_a[ζ_n, ζ_m, ζ_m] + Λ_a[ζ_n, ζ̄_m, ζ̄_m]);
    broadcasts over the array arguments, kT a positive scalar (meV); returns a real array.
    """
    return y_from_series(lambda z, t, q: lambda_moments(a, z, t, q), eps_n, eps_m, delta_n,
                         delta_m, mu, kT)
