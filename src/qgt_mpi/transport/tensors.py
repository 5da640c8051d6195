"""Full thermoelectric and thermal tensors from the k-sums (theory §4 "Full tensors").

Conventions (stated once; theory §1): carriers have charge −e, e > 0; J = σE + α(−∇T);
L^(a)_ij with i, j = x, y has the symmetric part (e²/ħ) S^(a)_ii from the W^(a) sums and the
antisymmetric part L^(a)_xy = −L^(a)_yx = (e²/ħ) H^(a) from the Hall energy moments Y^(a)
(kernels.hall_moments); the symmetric off-diagonal part vanishes for the C3-symmetric models
here and is not accumulated. Then

    σ = L^(0),   α = −L^(1)/(eT),   S = σ⁻¹α   (S_xx; S_xy is the Nernst signal),
    κ = [L^(2) − L^(1) (L^(0))⁻¹ L^(1)] / (e²T)   (κ_xy the thermal Hall conductivity).

Units: L^(a) in (e²/h) meV^a is L̃^(a) = 2π g S^(a) (g the flavour degeneracy); then
α/(e k_B/h) = −L̃^(1)/k_BT, S/(k_B/e) = σ̃⁻¹α̃, and κ/T in π²k_B²/(3h) is
3 [L̃^(2) − L̃^(1)(L̃^(0))⁻¹L̃^(1)] / (π² (k_BT)²), so κ/(Tσ) in the same units is the Lorenz
ratio L/L_0. The paper's Eq. 19 Seebeck (−L^(1)_xx/(eT L^(0)_xx), the `seebeck` dataset) equals
S_xx only when σ_xy = 0.
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K

K_B_OVER_E_UV_PER_K = 1000.0 * K_B_MEV_PER_K  # k_B/e in μV/K (meV/(e·K) = 1000 μV/K)


def coefficient_tensors(sym: np.ndarray, hall: np.ndarray, degeneracy: float) -> np.ndarray:
    """L̃^(a) in (e²/h) meV^a as a (3, ..., 2, 2) stack.

    ``sym`` is (3, 4, ...) with components (drude_xx, drude_yy, geo_xx, geo_yy); ``hall`` is
    (3, ...): the normalised sums of theory §4 for a = 0, 1, 2.
    """
    scale = 2.0 * math.pi * float(degeneracy)
    xx = scale * (sym[:, 0] + sym[:, 2])
    yy = scale * (sym[:, 1] + sym[:, 3])
    xy = scale * np.asarray(hall)
    return np.stack([np.stack([xx, xy], -1), np.stack([-xy, yy], -1)], -2)


def full_tensors(sym: np.ndarray, hall: np.ndarray, temperature: np.ndarray,
                 degeneracy: float) -> dict[str, np.ndarray]:
    """α, S = σ⁻¹α, κ and the Lorenz ratios of theory §4 for every sweep point.

    Trailing axes of ``sym``/``hall`` are the sweep, the last one temperature (K).
    Returns the components named in :data:`QUANTITIES` (xx and xy; yy where it differs).
    """
    L = coefficient_tensors(sym, hall, degeneracy)
    kt = (K_B_MEV_PER_K * np.asarray(temperature, dtype=float))[..., None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = -L[1] / kt  # e k_B/h
        seebeck = K_B_OVER_E_UV_PER_K * _solve(L[0], alpha)  # μV/K
        excess = L[2] - L[1] @ _solve(L[0], L[1])
        kappa = 3.0 * excess / (math.pi**2 * kt**2)  # κ/T in π²k_B²/(3h)
        out = {
            "alpha_xx": alpha[..., 0, 0],
            "alpha_xy": alpha[..., 0, 1],
            "seebeck_xx": seebeck[..., 0, 0],
            "seebeck_xy": seebeck[..., 0, 1],
            "kappa_xx_full": kappa[..., 0, 0],
            "kappa_xy": kappa[..., 0, 1],
            "lorenz_ratio_xx_full": kappa[..., 0, 0] / L[0][..., 0, 0],
            "lorenz_ratio_xy": kappa[..., 0, 1] / L[0][..., 0, 1],
        }
    return out


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a⁻¹ b for stacks of 2×2 matrices by the explicit inverse (NaN where singular)."""
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    inv = np.stack([np.stack([a[..., 1, 1], -a[..., 0, 1]], -1),
                    np.stack([-a[..., 1, 0], a[..., 0, 0]], -1)], -2)
    inv = inv / np.where(det == 0, np.nan, det)[..., None, None]
    return inv @ b


# The tensor components a run returns; units and long names are io/conventions.py's.
QUANTITIES = ("alpha_xx", "alpha_xy", "seebeck_xx", "seebeck_xy", "kappa_xx_full", "kappa_xy",
              "lorenz_ratio_xx_full", "lorenz_ratio_xy")
