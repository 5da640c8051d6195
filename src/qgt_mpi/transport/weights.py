"""Per-band weights: every pair term of theory §3–§4 rewritten as one band's kernel times a weight.

The closed forms of theory §3 are linear combinations of one-band functions:

* symmetric kernels:  π W^(a)_nm = ½ Re[(K_a(ζ_n) − K_a(ζ̄_m))/(z_n − z̄_m)
  − (K_a(ζ_n) − K_a(ζ_m))/(z_n − z_m)],  with K_a(ζ̄) = conj K_a(ζ);
* Hall kernel: Y_nm = −(1/π) Im[Λ[z_n, z_m, z_m] + Λ[z_n, z̄_m, z̄_m]] with the divided
  difference Λ[a,b,b] = [Λ(a) − Λ(b) − (a − b)Λ'(b)]/(a − b)² and Λ(ζ̄) = conj Λ(ζ).

Multiplying by the velocity products of theory §4 and collecting, for each band n the k-sum
becomes Σ_k Σ_q Re[B^(q)_n(k) K_a^(q)(ε_n(k) − μ − iδ_n)] (symmetric) and
Σ_k Σ_q Im[B^(q)_n(k) Λ^(q)(ε_n(k) − μ − iδ_n)] (Hall), where the weights B depend on the
energies, velocities and δ, but not on T or μ: one k-pass serves the whole sweep (theory §4).
Pairs with |z_n − z_m| below ``near_tol`` (near-degenerate) use the Taylor series of the
divided differences around z_n instead of the split form, so nothing is ever divided by a
vanishing energy difference (theory §1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Components of the accumulated sums (order fixed: the HDF5 writer and evaluator rely on it).
COMPONENTS = ("drude_xx", "drude_yy", "geo_xx", "geo_yy", "hall", "density")
DRUDE_XX, DRUDE_YY, GEO_XX, GEO_YY, HALL, DENSITY = range(6)
SYMMETRIC = (DRUDE_XX, DRUDE_YY, GEO_XX, GEO_YY)
# Components evaluated with Im[B Λ_a] (the Hall kernel family, theory §3–§4); HALL carries the
# energy moments a = 0, 1, 2 (kernels.hall_moments), DENSITY only a = 0.
DENSITY_WEIGHT = -1.0 / math.pi  # n_n = −(1/π) Im Λ_0(ζ_n) = ∫ f A_n (see _density)
N_NEAR_ORDERS = 8  # Taylor orders of the near-degenerate series (error ≤ η_deg^8)


@dataclass
class BandWeights:
    """Weights of one δ choice for a batch of k-points.

    Attributes
    ----------
    regular : (nk, nb, len(COMPONENTS), 2) complex
        Weights of kernel orders q = 0 and 1 for each band and component.
    near_k, near_n : (npair,) int
        k index and band of each near-degenerate pair's series (expanded around band n).
    near : (npair, len(COMPONENTS), N_NEAR_ORDERS + 1) complex
        Series weights of orders 0..N_NEAR_ORDERS for those pairs.
    """

    regular: np.ndarray
    near_k: np.ndarray
    near_n: np.ndarray
    near: np.ndarray


def band_weights(
    energies: np.ndarray,
    delta: np.ndarray,
    m_xx: np.ndarray,
    m_yy: np.ndarray,
    n_xy: np.ndarray,
    near_tol: float,
) -> BandWeights:
    """Per-band kernel weights for one broadening vector (theory §3, §4).

    Parameters
    ----------
    energies : (nk, nb) band energies ε_n(k) [meV].
    delta : (nb,) broadenings δ_n > 0 [meV].
    m_xx, m_yy : (nk, nb, nb) Re(v^i_nm v^i_mn).
    n_xy : (nk, nb, nb) Im(v^x_nm v^y_mn).
    near_tol : pairs with |z_n − z_m| < near_tol use the near-degenerate series.
    """
    nk, nb = energies.shape
    z = energies - 1j * np.asarray(delta, dtype=float)[None, :]
    dz = z[:, :, None] - z[:, None, :]
    inv_dzb = 1.0 / (z[:, :, None] - np.conj(z)[:, None, :])
    diag = np.arange(nb)
    inv_dzb_nn = inv_dzb[:, diag, diag].copy()  # 1/(z_n − z̄_n): the Drude terms
    inv_dzb[:, diag, diag] = 0.0  # off-diagonal from here on (the pairs n ≠ m)
    off = ~np.eye(nb, dtype=bool)[None]
    near = off & (np.abs(dz) < near_tol)
    inv_dz = np.where(near, 0.0, 1.0 / np.where(off & ~near, dz, 1.0))  # no 1/0 on near pairs
    inv_dz[:, diag, diag] = 0.0
    w = np.zeros((nk, nb, len(COMPONENTS), 2), dtype=complex)
    # Shared by both directions and the Hall weights; all zero on the diagonal, so the
    # contractions below run over n ≠ m without masks (theory §3 split forms).
    d_n = inv_dzb - inv_dz  # on band n: K(ζ_n)/(z_n − z̄_m) − K(ζ_n)/(z_n − z_m)
    d_m = inv_dz - np.conj(inv_dzb)  # on band m: −K(ζ̄_m)/(z_n − z̄_m) + K(ζ_m)/(z_n − z_m)
    for drude, geo, m in ((DRUDE_XX, GEO_XX, m_xx), (DRUDE_YY, GEO_YY, m_yy)):
        _symmetric(w, drude, geo, m, d_n, d_m, inv_dzb_nn)
    _hall(w, n_xy, inv_dz, inv_dzb, d_m)
    w[:, :, DENSITY, 0] = DENSITY_WEIGHT
    return _with_near(w, z, dz, near, m_xx, m_yy, n_xy)


def _symmetric(w, drude, geo, m, d_n, d_m, inv_dzb_nn) -> None:
    """Symmetric-kernel weights (theory §3 closed form of W^(a), theory §4 sums).

    Pair (n, m), n ≠ m: A = K(ζ_n)/(z_n − z̄_m) and C = −K(ζ_n)/(z_n − z_m) sit on band n,
    B = −K(ζ̄_m)/(z_n − z̄_m) and D = −C on band m, each times Re(v_nm v_mn)/(2π); the sums
    over partners are single contractions with ``d_n`` and ``d_m`` (one pass each).
    """
    diag = np.arange(m.shape[1])
    m_nn = m[:, diag, diag]
    # Drude (n = m): A + B, and the derivative −K'(ζ_n)/(2π) of the degenerate quotient.
    w[:, :, drude, 0] = m_nn * (inv_dzb_nn - np.conj(inv_dzb_nn)) / (2 * np.pi)
    w[:, :, drude, 1] = -m_nn / (2 * np.pi)
    w[:, :, geo, 0] = (np.einsum("knm,knm->kn", m, d_n)
                       + np.einsum("kmn,kmn->kn", m, d_m)) / (2 * np.pi)


def _hall(w, n_xy, inv_dz, inv_dzb, d_m) -> None:
    """Hall weights from Y_nm (theory §3) times Im(v^x_nm v^y_mn) (theory §4); the inverse
    differences are zero on the diagonal, so only n ≠ m contributes."""
    p = inv_dz**2
    q = inv_dzb**2
    on_n = np.einsum("knm,knm->kn", n_xy, p + q)  # f (1/(z_n − z_m)² + 1/(z_n − z̄_m)²)
    on_m0 = np.einsum("kmn,kmn->kn", n_xy, np.conj(q) - p)
    on_m1 = np.einsum("kmn,kmn->kn", n_xy, d_m)  # f (−1/(z_n − z_m) + 1/(z̄_n − z_m))·(−1)
    w[:, :, HALL, 0] = -(on_n + on_m0) / np.pi
    w[:, :, HALL, 1] = on_m1 / np.pi


# Carrier density (theory §4.7): the occupation of band n with the Lorentzian spectral function
# A_n = −L_n/π of theory §3 is ∫ dω f(ω) A_n(ω) = −(1/π) Im Λ_0(ζ_n) (Λ_0 = ∫ f/(x − ζ), Im ζ < 0),
# i.e. weight −1/π on the Hall kernel family at order 0; it tends to f(ε_n − μ) as δ_n → 0.


def _with_near(w, z, dz, near, m_xx, m_yy, n_xy) -> BandWeights:
    """Series weights of the near-degenerate pairs (derivatives at ζ_n, d = z_m − z_n)."""
    kk, nn, mm = np.nonzero(near)
    series = np.zeros((kk.size, len(COMPONENTS), N_NEAR_ORDERS + 1), dtype=complex)
    if kk.size:
        d = -dz[kk, nn, mm]
        for p in range(1, N_NEAR_ORDERS + 1):
            # (K(ζ_n) − K(ζ_m))/(z_n − z_m) = Σ_{p≥1} K^(p)(ζ_n) d^(p−1)/p!
            term = d ** (p - 1) / math.factorial(p)
            series[:, GEO_XX, p] = -m_xx[kk, nn, mm] * term / (2 * np.pi)
            series[:, GEO_YY, p] = -m_yy[kk, nn, mm] * term / (2 * np.pi)
            if p >= 2:
                # Λ[z_n, z_m, z_m] = Σ_{p≥2} Λ^(p)(ζ_n) d^(p−2)(p−1)/p!
                hall = (p - 1) * d ** (p - 2) / math.factorial(p)
                series[:, HALL, p] = -n_xy[kk, nn, mm] / np.pi * hall
    return BandWeights(regular=w, near_k=kk, near_n=nn, near=series)


def add_far_pairs(w: BandWeights, metric_out: np.ndarray, curvature_out: np.ndarray,
                  delta_out: float) -> None:
    """Add the pairs (n ∈ W, m ∉ W) of a solver window in their far-off-resonance limit.

    theory §3 (far off resonance) and §5: for |ε_n − ε_m| ≫ δ, k_BT, L_m(ω) ≈ −δ_m/(ε_n − ε_m)²
    near ω ≈ ε_n, so W^(a)_nm ≈ −δ_out/(ε_n − ε_m)² · (1/π) Im K_a(ζ_n); the ordered pairs
    (n, m) and (m, n) together give 2 δ_out g^(n,out)_ii (−(1/π) Im K_a(ζ_n)) =
    Re[(2i δ_out g^(n,out)_ii/π) K_a(ζ_n)] (geometric component). The Hall kernel gives
    Y_nm ≈ 2 f̃_n/(ε_n − ε_m)² with the broadened occupation f̃_n = −(1/π) Im Λ(ζ_n), so the
    two orderings give 2 (f̃_n − f̃_m) Im(v^x_nm v^y_mn)/(ε_n − ε_m)². Its f̃_n part summed over
    m ∉ W is −f̃_n Ω^(n,out) = Im[(Ω^(n,out)/π) Λ(ζ_n)]; its f̃_m part belongs to the bands
    outside (zero above the window, the filled bands' Chern number below it: ``chern_below``
    in transport/accumulate.py). Relative error
    O(max(δ, k_BT, |ε_n − μ|)/|ε_n − ε_m|). In place on ``w.regular`` (order q = 0).

    Parameters
    ----------
    metric_out : (nk, nb, 3) out-of-window metric [xx, yy, xy]; curvature_out : (nk, nb).
    delta_out : broadening of the bands outside the window [meV].
    """
    factor = 2j * delta_out / np.pi
    w.regular[:, :, GEO_XX, 0] += factor * metric_out[..., 0]
    w.regular[:, :, GEO_YY, 0] += factor * metric_out[..., 1]
    w.regular[:, :, HALL, 0] += curvature_out / np.pi
