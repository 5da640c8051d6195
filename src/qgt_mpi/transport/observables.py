"""Physical transport quantities from the normalised k-sums (theory §1 units, theory §4 formulas).

Input sums are S^(a)_c = (1/(N_k A_c)) Σ_k Σ_nm W^(a)_nm Re(v^i_nm v^j_mn) for the components
c of weights.COMPONENTS (energies in meV, ħ = 1), and the Hall sums
H^(a) = (1/(N_k A_c)) Σ_k Σ_{n≠m} Y^(a)_nm Im(v^x_nm v^y_mn) (a = 0: σ_xy; a = 1, 2: the energy
moments of theory §4 "Full tensors", whose tensors are built in tensors.py).
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.transport import tensors

# σ = (e²/ħ) S  →  in units of e²/h: σ/(e²/h) = 2π S                      (theory §4, §1)
SIGMA_PER_SUM = 2.0 * math.pi
# S = −(1/(eT)) S^(1)/S^(0) with S^(1)/S^(0) in meV: meV/(e·K) = 1000 μV/K  (theory §4 Eq. 19)
SEEBECK_UV_PER_MEV_K = 1000.0


def transport_quantities(
    sym: np.ndarray, hall: np.ndarray, temperature: np.ndarray, degeneracy: float,
    occupation: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """All theory §4 observables from the sums.

    Parameters
    ----------
    sym : (3, 4, ...) normalised sums for a = 0, 1, 2 and components
        (drude_xx, drude_yy, geo_xx, geo_yy); trailing axes are the sweep, the last one
        temperature.
    hall : (3, ...) normalised Hall sums H^(a), a = 0, 1, 2, same sweep axes.
    temperature : (n_T,) kelvin, broadcast against the last axis.
    degeneracy : flavour factor (spin × valley) multiplying σ and κ (theory §1).
    occupation : (n_bands, ...) per-flavour occupation of each band per cell, or None.

    Returns
    -------
    dict with sigma_xx, sigma_xx_drude, sigma_xx_geometric, sigma_yy, sigma_xy [e²/h],
    seebeck [μV/K], kappa_xx [κ/T in π²k_B²/(3h)], lorenz_ratio [L/L_0], the full-tensor
    quantities of tensors.QUANTITIES and, with ``occupation``, density [1/cell] and filling
    (per band, last axis).
    """
    kt = K_B_MEV_PER_K * np.asarray(temperature, dtype=float)
    s_xx = sym[:, 0] + sym[:, 2]
    s_yy = sym[:, 1] + sym[:, 3]
    g = float(degeneracy)
    out = {
        "sigma_xx": SIGMA_PER_SUM * g * s_xx[0],
        "sigma_xx_drude": SIGMA_PER_SUM * g * sym[0, 0],
        "sigma_xx_geometric": SIGMA_PER_SUM * g * sym[0, 2],
        "sigma_yy": SIGMA_PER_SUM * g * s_yy[0],
        "sigma_xy": SIGMA_PER_SUM * g * np.asarray(hall[0]),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s_xx[1] / s_xx[0]  # S^(1)/S^(0) [meV]
        out["seebeck"] = -SEEBECK_UV_PER_MEV_K * ratio / np.asarray(temperature)
        # κ_xx = (1/ħT)[S^(2) − (S^(1))²/S^(0)] (theory §4 Eq. 18); κ/T in units of
        # π²k_B²/(3h) = πk_B²/(6ħ) is 6 X / (π (k_B T)²) with X in meV².
        excess = s_xx[2] - s_xx[1] ** 2 / s_xx[0]
        out["kappa_xx"] = 6.0 * g * excess / (math.pi * kt**2)
        # L/L_0 = (κ/T)/σ with κ/T in π²k_B²/(3h) and σ in e²/h (L_0 = π²k_B²/(3e²)).
        out["lorenz_ratio"] = out["kappa_xx"] / out["sigma_xx"]
    out.update(tensors.full_tensors(sym, hall, temperature, degeneracy))
    if occupation is not None:
        # n = g Σ_n ∫ f A_n per cell (weights.py density component); filling per band.
        out["density"] = g * np.sum(occupation, axis=0)
        out["filling"] = np.moveaxis(occupation, 0, -1)
    return out


# The quantities of a sweep point, in the order they are written; their units and long names
# live in io/conventions.py (the one metadata table; the API reads natural units from it).
QUANTITIES = ("sigma_xx", "sigma_xx_drude", "sigma_xx_geometric", "sigma_yy", "sigma_xy",
              "seebeck", "kappa_xx", "lorenz_ratio", *tensors.QUANTITIES, "density")
# Per-band quantities (extra trailing axis "band").
BAND_QUANTITIES = ("filling",)
