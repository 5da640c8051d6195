"""Bistritzer–MacDonald continuum model of one valley of twisted bilayer graphene (theory §2.5).

A preset of the one continuum builder (models/continuum, theory §2.5a): this module checks the
deck's parameters, writes the model as a spec (``bm_spec``) and keeps the facts below; its
H(k) and ∂H/∂k equal the former stand-alone implementation to 1e-12 (tests/test_continuum.py).
``valley = "both"`` puts valley +1 and its time-reversal partner side by side (block diagonal).

Units: energies meV, lengths nm, k in 1/nm. k_θ = 2 k_D sin(θ/2), k_D = 4π/(3a), a = 0.246 nm;
α = w1/(ħv k_θ) (the Tarnopolsky–Kruchkov–Vishwanath normalisation: first magic α ≈ 0.586).
No rotation of the Dirac cones (σ is not rotated by ±θ/2), so the model has an exact
particle-hole symmetry and, at w0 = 0, the exact chiral symmetry {H, σz} = 0.

Momentum lattice. q1 = k_θ(0, −1), q2 = k_θ(√3/2, 1/2), q3 = k_θ(−√3/2, 1/2); moiré
reciprocal vectors b1 = q2 − q1, b2 = q3 − q1 (60° apart, |b| = √3 k_θ); lattice rows a1, a2
with a_i·b_j = 2π δ_ij. A basis state is (layer ℓ, G, sublattice) with G = n1 b1 + n2 b2 in
``shells`` hexagonal rings, (|n1| + |n2| + |n1 + n2|)/2 ≤ shells (1 + 3s(s+1) vectors per layer:
148 states at 3 shells). Its momentum, measured from its layer's Dirac point, is
p = k + G + q1 (layer 1) or p = k + G + 2 q1 (layer 2). Hence, in reduced coordinates of
(b1, b2): Γ = (0, 0), K = (1/3, 1/3) (layer-1 Dirac point), K' = (2/3, 2/3) (layer 2), and the
cutoff is centred on M = (1/2, 1/2), the centre of the k-grid cell [0, 1]², so no k-point the
geometry code evaluates (it uses unwrapped corners up to (1, 1)) is off-centre by more than
|b1 + b2|/2 = 1.5 k_θ.

H (valley +1): diagonal blocks ħv σ·p + (mass/2) σz (sublattice mass on both layers, hBN
alignment); layer-1 state (G) couples to layer-2 states at p + q_j, i.e. G' = G, G + b1, G + b2
for j = 1, 2, 3, through T_j = w0 σ0 + w1 [cos φ_j σx + sin φ_j σy], φ_j = 2π(j − 1)/3.
Valley −1 is the time-reversal partner, H_−(k) = H_+(2M − k)*, with 2M = b1 + b2 a reciprocal
vector, so ε_−(k) = ε_+(−k) up to the cutoff (exact for an infinite basis; the shift keeps the
cutoff centred on M for both valleys).

Bloch convention (theory §1) for a plane-wave basis: the cell-periodic basis functions e^{iG·r}
do not depend on k, so all k dependence is the explicit k in the diagonal blocks, H(k) =
H0 + k_x Hx + k_y Hy, ∂H/∂k_i = ħv σ_i blocks (−ħv σ_i* for valley −1), and the quantum metric
is the physical one. ``positions`` are therefore all 0. H(k + G) equals H(k) with the labels G'
shifted by G, exactly except at the cutoff edge (see :meth:`BMContinuum.shift_map`).
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.models.continuum import ContinuumModel, bm_spec, valley_key

A_GRAPHENE = 0.246  # nm (theory §2.5)
HBAR_V = 594.4  # meV·nm


def k_theta(theta_deg: float, a: float = A_GRAPHENE) -> float:
    """k_θ = 2 k_D sin(θ/2), k_D = 4π/(3a) [1/nm] (theory §2.5)."""
    return 2.0 * (4.0 * math.pi / (3.0 * a)) * math.sin(math.radians(theta_deg) / 2.0)


def theta_from_alpha(alpha: float, w1: float, hbar_v: float = HBAR_V) -> float:
    """Twist angle (degrees) with α = w1/(ħv k_θ) at coupling w1 (meV)."""
    s = (w1 / (alpha * hbar_v)) / (2.0 * 4.0 * math.pi / (3.0 * A_GRAPHENE))
    if not 0.0 < s < 1.0:
        raise ValueError(f"alpha = {alpha} with w1 = {w1} meV gives no twist angle")
    return math.degrees(2.0 * math.asin(s))


def _check(theta, alpha, w1, hbar_v, shells, valley) -> tuple[float, int, int | str]:
    """Validate the parameters; return (theta in degrees, shells, valley: ±1 or "both")."""
    given = [x is not None for x in (theta, alpha)]
    if sum(given) != 1:
        raise ValueError("bm_continuum needs exactly one of 'theta' (degrees) or 'alpha'")
    if not hbar_v > 0 or not math.isfinite(hbar_v):
        raise ValueError(f"hbar_v must be > 0 meV·nm, got {hbar_v}")
    if float(shells) != int(shells) or int(shells) < 1:
        raise ValueError(f"shells must be an integer >= 1, got {shells}")
    if valley != "both" and valley not in (1, -1, 1.0, -1.0):
        raise ValueError(f"valley must be 1, -1 or 'both', got {valley}")
    if given[0]:
        if not 0.0 < float(theta) < 180.0:
            raise ValueError(f"theta must be in (0, 180) degrees, got {theta}")
        return float(theta), int(shells), _valley(valley)
    if not float(alpha) > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return theta_from_alpha(float(alpha), w1, hbar_v), int(shells), _valley(valley)


def _valley(valley: object) -> int | str:
    """+1, −1 or "both" (checked by :func:`_check`)."""
    return "both" if valley == "both" else int(valley)  # type: ignore[call-overload]


class BMContinuum(ContinuumModel):
    """One valley (or both) of the BM model: the preset of the continuum builder
    (models/continuum, theory §2.5a) with the facts of theory §2.5; see the module doc.

    Parameters
    ----------
    theta : twist angle (degrees), or None when ``alpha`` is given.
    alpha : chiral coupling α = w1/(ħv k_θ); θ then follows from w1 and ħv.
    w0, w1 : AA and AB interlayer couplings (meV). hbar_v : ħv (meV·nm).
    shells : plane-wave cutoff in hexagonal shells of the moiré reciprocal lattice.
    valley : +1, −1 or "both" (block diagonal, valley +1 first).
    mass : sublattice mass (meV), +mass/2 on A, −mass/2 on B, both layers.

    Raises
    ------
    ValueError for inconsistent or out-of-range parameters.
    """

    def __init__(self, theta: float | None = None, alpha: float | None = None,
                 w0: float = 88.0, w1: float = 110.0, hbar_v: float = HBAR_V,
                 shells: float = 3, valley: object = 1, mass: float = 0.0) -> None:
        self.theta, self.shells, valley = _check(theta, alpha, w1, hbar_v, shells, valley)
        self.w0, self.w1, self.hbar_v, self.mass = float(w0), float(w1), float(hbar_v), float(mass)
        self.k_theta = k_theta(self.theta)
        self.alpha = self.w1 / (self.hbar_v * self.k_theta)
        s3 = math.sqrt(3.0)
        self.q = self.k_theta * np.array([[0.0, -1.0], [s3 / 2, 0.5], [-s3 / 2, 0.5]])
        info = {"kind": "bm_continuum", "theta": self.theta, "alpha": self.alpha,
                "w0": self.w0, "w1": self.w1, "hbar_v": self.hbar_v, "shells": self.shells,
                "mass": self.mass, "k_theta": self.k_theta,
                "moire_length": 4.0 * math.pi / (3.0 * self.k_theta)}
        super().__init__(bm_spec(self.theta, self.w0, self.w1, self.hbar_v, self.shells,
                                 valley_key(valley), self.mass, A_GRAPHENE, info))
        # chiral limit (w0 = 0): σ_z anticommutes with the kinetic and AB terms, so the flat
        # bands' degenerate pair is resolved into its sublattice-polarised states (theory §5.7)
        self.resolve_default = "sublattice" if self.w0 == 0.0 else None


def bm_continuum(theta: float = 0.0, alpha: float = 0.0, w0: float = 88.0,
                 w1: float = 110.0, hbar_v: float = HBAR_V, shells: float = 3,
                 valley: object = 1, mass: float = 0.0) -> BMContinuum:
    """Builder for ``kind = "bm_continuum"`` (0 = not given; exactly one of theta, alpha)."""
    return BMContinuum(theta=theta or None, alpha=alpha or None, w0=w0, w1=w1, hbar_v=hbar_v,
                       shells=shells, valley=valley, mass=mass)
