"""Read fixed-filling result files and add the transport tensors of several flavour runs.

A valley-unpolarised state of the continuum model is the sum of two runs, valley +1 and
valley −1 (each with ``degeneracy = 2`` for spin). The Onsager matrices add (theory §4 "Full
tensors"): L^(a) = Σ_runs L^(a), with, in the units of the result files,

    L^(0) = σ                         [e²/h]
    L^(1) = −eT α                     α [e k_B/h]
    L^(2)/(e²T²) = κ/T + α σ⁻¹ α      κ/T [π²k_B²/(3h)], α σ⁻¹ α [k_B²/h] = (3/π²) [π²k_B²/(3h)]

and S = σ⁻¹ α [k_B/e], κ/T = L^(2)/(e²T²) − α σ⁻¹ α. The 2×2 tensors are [[xx, xy], [−xy, yy]]
(C3: α_yy = α_xx, checked through σ_yy = σ_xx). :func:`combine` applied to a single run gives
back that run's ``seebeck_xx``, ``seebeck_xy`` and ``kappa_xx_full`` (checked in the script).
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

KB_OVER_E_UV = 86.17333262  # k_B/e [μV/K]
TO_KAPPA_UNIT = 3.0 / math.pi**2  # k_B²/h in units of π²k_B²/(3h)
KEYS = ("sigma_xx", "sigma_yy", "sigma_xy", "sigma_xx_drude", "sigma_xx_geometric", "alpha_xx",
        "alpha_xy", "kappa_xx", "kappa_xx_full", "kappa_xy", "seebeck", "seebeck_xx",
        "seebeck_xy", "mu_solved", "density")


def read_run(path: Path) -> dict[str, np.ndarray]:
    """Transport datasets (n_filling, n_delta, n_T) and axes of one fixed-filling result file."""
    with h5py.File(path, "r") as f:
        t = f["transport"]
        out = {k: t[k][()] for k in KEYS}
        out["filling_target"] = t["filling_target"][()]
        out["temperature"] = t["temperature"][()]
        out["delta"] = t["delta"][()][:, 0]
        out["band_min"] = f["bands/min"][()]
        out["band_max"] = f["bands/max"][()]
        if "kgrid/energies" in f:  # k-resolved output: band means over the grid
            e = f["kgrid/energies"][()]
            out["band_mean"] = e.reshape(-1, e.shape[-1]).mean(axis=0)
        out["degeneracy"] = float(f.attrs["degeneracy"])
    return out


def _tensor(xx: np.ndarray, xy: np.ndarray, yy: np.ndarray | None = None) -> np.ndarray:
    """[[xx, xy], [−xy, yy]] with the 2×2 axes last."""
    yy = xx if yy is None else yy
    return np.stack([np.stack([xx, xy], -1), np.stack([-xy, yy], -1)], -2)


def combine(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Summed σ, α, κ/T of ``runs`` and S = σ⁻¹α [μV/K], as (n_filling, n_delta, n_T) arrays."""
    sigma = sum(_tensor(r["sigma_xx"], r["sigma_xy"], r["sigma_yy"]) for r in runs)
    alpha = sum(_tensor(r["alpha_xx"], r["alpha_xy"]) for r in runs)
    l2 = 0.0
    for r in runs:
        s, a = _tensor(r["sigma_xx"], r["sigma_xy"], r["sigma_yy"]), _tensor(r["alpha_xx"],
                                                                                r["alpha_xy"])
        l2 = l2 + _tensor(r["kappa_xx_full"], r["kappa_xy"]) + TO_KAPPA_UNIT * (
            a @ np.linalg.solve(s, a))
    seebeck = np.linalg.solve(sigma, alpha)
    kappa = l2 - TO_KAPPA_UNIT * alpha @ seebeck
    drude = sum(r["sigma_xx_drude"] for r in runs)
    geometric = sum(r["sigma_xx_geometric"] for r in runs)
    return {"sigma_xx": sigma[..., 0, 0], "sigma_xy": sigma[..., 0, 1],
            "sigma_xx_drude": drude, "sigma_xx_geometric": geometric,
            "seebeck_xx": KB_OVER_E_UV * seebeck[..., 0, 0],
            "seebeck_xy": KB_OVER_E_UV * seebeck[..., 0, 1],
            "kappa_xx_full": kappa[..., 0, 0], "kappa_xy": kappa[..., 0, 1],
            "seebeck_diag": KB_OVER_E_UV * alpha[..., 0, 0] / sigma[..., 0, 0],
            "density": sum(r["density"] for r in runs),
            "mu": runs[0]["mu_solved"]}


def self_check(run: dict[str, np.ndarray]) -> float:
    """Largest relative difference of :func:`combine` on one run against its own file values."""
    c = combine([run])
    worst = 0.0
    for key in ("seebeck_xx", "seebeck_xy", "kappa_xx_full"):
        scale = np.max(np.abs(run[key])) + 1e-300
        worst = max(worst, float(np.max(np.abs(c[key] - run[key])) / scale))
    return worst


def sign_changes(nu: np.ndarray, s: np.ndarray) -> list[float]:
    """Fillings where S(ν) changes sign (linear interpolation between grid points)."""
    idx = np.nonzero(np.sign(s[:-1]) * np.sign(s[1:]) < 0)[0]
    return [float(nu[i] - s[i] * (nu[i + 1] - nu[i]) / (s[i + 1] - s[i])) for i in idx]
