"""Mean-field pairing in an isolated flat band: gap, superfluid weight, BKT (theory §6).

Flat band at ε_0, attractive on-site U > 0, uniform pairing Δ on N_orb orbitals, filling ν per
spin. Projected on the band, every k has the quasiparticle energy E = √(ξ² + Δ²), ξ = ε_0 − μ,
and with E_0 = U/(2 N_orb):

- gap equation (theory §6): tanh(E/2k_BT) = 2 N_orb E/U, i.e. E = E_0 tanh(E/2k_BT);
- number equation: ν = ½[1 − (ξ/E) tanh(E/2k_BT)]. With the gap equation, (ξ/E) tanh = ξ/E_0,
  so ξ = ε_0 − μ = E_0 (1 − 2ν) = U(1 − 2ν)/(2 N_orb) at every T below T_c;
- Δ(T)² = E(T)² − ξ², Δ(0) = Δ_0 = (U/N_orb)√(ν(1−ν)); Δ vanishes where E = |ξ|, i.e. at
  k_B T_c = E_0 x / (2 artanh x), x = |1 − 2ν| (k_B T_c = E_0/2 = U/(4 N_orb) at ν = ½).

Superfluid weight. With a pair-momentum twist Δ e^{2iq·r} (q = eA/ħ), projection gives
E_k(q)² = ξ² + Δ² |<u_{k+q}|u_{k−q}>|² = ξ² + Δ²(1 − 4 q·g(k)·q), and the grand potential per
area Ω/V = −(2/β)∫ ln(2 cosh(βE_k/2)) d²k/(2π)² + const changes at fixed Δ, μ by
δ(Ω/V) = 2Δ² (tanh(βE/2)/E) q·G·q = (4 N_orb Δ²/U) q·G·q (gap equation), G = ∫ g d²k/(2π)².
D_s = (e²/ħ²) ∂²(Ω/V)/∂q∂q therefore reads, at every T (theory §6),

    D_s,ij(T) = (8e²/ħ²) (N_orb/U) Δ(T)² G_ij,

which at T = 0 (N_orb Δ_0/U = √(ν(1−ν))) is the theory §6 formula (8e²/ħ²) Δ √(ν(1−ν)) G_ij.
Units: meV × e²/ħ² (2D). BKT (theory §6): k_B T = (πħ²/8e²) √det D_s(T), solved for T.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from qgt_mpi.constants import K_B_MEV_PER_K


def chemical_offset(u: float, nu: float, n_orb: int) -> float:
    """ξ = ε_0 − μ = U(1 − 2ν)/(2 N_orb) [meV], fixed by the filling below T_c (theory §6)."""
    return u * (1.0 - 2.0 * nu) / (2.0 * n_orb)


def gap_zero(u: float, nu: float, n_orb: int) -> float:
    """Δ_0 = (U/N_orb)√(ν(1−ν)) [meV] (theory §6)."""
    return u / n_orb * math.sqrt(nu * (1.0 - nu))


def critical_temperature(u: float, nu: float, n_orb: int) -> float:
    """Mean-field T_c [K]: k_B T_c = E_0 x/(2 artanh x), x = |1 − 2ν|, E_0 = U/(2N_orb)."""
    e0, x = u / (2.0 * n_orb), abs(1.0 - 2.0 * nu)
    ratio = 1.0 if x < 1e-12 else x / math.atanh(x)
    return e0 * ratio / (2.0 * K_B_MEV_PER_K)


def _reduced_energy(a: float, x: float) -> float:
    """Root t ∈ (x, 1] of t = tanh(a t) (E = t E_0, a = E_0/2k_BT), for T < T_c."""
    lo = x if x > 0 else 1e-300
    return brentq(lambda t: t - math.tanh(a * t), lo, 1.0, xtol=1e-16, rtol=1e-15)


def gap(temperature, u: float, nu: float, n_orb: int) -> np.ndarray:
    """Δ(T) [meV] from the gap and number equations (theory §6); 0 at and above T_c.

    Parameters
    ----------
    temperature : array of T [K], ≥ 0 (T = 0 gives Δ_0).
    u, nu, n_orb : U [meV], filling ν per spin, number of paired orbitals.
    """
    temps = np.atleast_1d(np.asarray(temperature, dtype=float))
    e0, x = u / (2.0 * n_orb), abs(1.0 - 2.0 * nu)
    t_c = critical_temperature(u, nu, n_orb)
    out = np.zeros(temps.shape)
    for i, temp in enumerate(temps.flat):
        if temp <= 0:
            out.flat[i] = gap_zero(u, nu, n_orb)
        elif temp < t_c:
            t = _reduced_energy(e0 / (2.0 * K_B_MEV_PER_K * temp), x)
            out.flat[i] = e0 * math.sqrt(max(t * t - x * x, 0.0))
    return out


def superfluid_weight(temperature, metric: np.ndarray, u: float, nu: float, n_orb: int
                      ) -> np.ndarray:
    """D_s,ij(T) = (8e²/ħ²)(N_orb/U) Δ(T)² G_ij, (nT, 2, 2) in e²/ħ² × meV (theory §6)."""
    delta = gap(temperature, u, nu, n_orb)
    return 8.0 * n_orb / u * delta[:, None, None] ** 2 * np.asarray(metric)[None]


def bkt_line(temperature) -> np.ndarray:
    """D_s on the BKT criterion, 8 k_B T/π [e²/ħ² × meV] (theory §6)."""
    return 8.0 * K_B_MEV_PER_K * np.asarray(temperature, dtype=float) / math.pi


def stiffness(d_s: np.ndarray) -> np.ndarray:
    """√det D_s, the isotropic-equivalent weight entering the BKT criterion (theory §6)."""
    return np.sqrt(np.clip(np.linalg.det(d_s), 0.0, None))


def bkt_temperature(metric: np.ndarray, u: float, nu: float, n_orb: int) -> float:
    """T_BKT [K] solving k_B T = (πħ²/8e²) √det D_s(T) (theory §6); NaN if there is no crossing.

    f(T) = √det D_s(T) − 8k_BT/π is continuous, decreasing, and < 0 at T_c; a root exists
    iff f > 0 just above T = 0 (i.e. D_s(0) > 0). The root is found with brentq on (0, T_c).
    """
    t_c = critical_temperature(u, nu, n_orb)

    def excess(temp: float) -> float:
        return float(stiffness(superfluid_weight([temp], metric, u, nu, n_orb))[0]
                     - bkt_line(temp))

    lo = 1e-9 * t_c
    if not excess(lo) > 0.0:
        return math.nan
    return brentq(excess, lo, t_c, xtol=1e-14 * t_c, rtol=1e-14)
