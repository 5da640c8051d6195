"""Geometric transport of the top Chern bands of twisted MoTe₂ (theory §2.5a, §4).

Why: issue 20 item 3 — the transport tensor of the top valence bands of tMoTe₂ (Wang 2024
set, 3.9°) versus hole filling ν_h = 0 … 2 per moiré cell, valley polarised (valley K only,
degeneracy 1: the quantum-anomalous-Hall setting) and unpolarised (valley = "both",
degeneracy 1, spin locked to the valley): σ_xx split into Drude and geometric parts, σ_xy,
the diagonal Seebeck coefficient S_xx and the Hall-channel thermopower S_xy, at fixed filling
(μ solved per T). Dense solver, 3 shells, N×N grid, δ = 0.5 meV. Prints markdown tables
(docs/validation.md). Run:
    .venv/bin/python studies/tmd_transport.py [N]        (N = 18 by default; about a minute)
"""

from __future__ import annotations

import qgt_mpi  # noqa: F401  (environment before numpy/petsc4py)

# isort: split
import sys
import warnings

import numpy as np

from qgt_mpi.api import compute
from qgt_mpi.models.continuum import tmd_continuum

NU_H = np.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])  # holes per moiré cell
TEMPERATURES = [2.0, 10.0, 30.0]  # K
DELTA = 0.5  # meV


def sweep(valley: object, n: int) -> tuple[np.ndarray, dict]:
    """Transport at fixed hole filling of the top two bands of one valley or of both."""
    model = tmd_continuum(3.9, "wang2024", valley=valley)
    nb = model.norb
    # one valley: its top two bands (C = -1, +1); both: the top band of K and of K' (the
    # union's top two: the top bands lie 15.8 meV above the second ones at every k)
    bands = [nb - 2, nb - 1]
    filling = 1.0 - NU_H / 2.0  # the group holds two holes per cell
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = compute(model, (n, n), TEMPERATURES, delta=[DELTA], filling=list(filling),
                         filling_bands=bands, degeneracy=1.0)
    return filling, result.transport


def main(n: int) -> None:
    for name, valley in (("polarised (valley K)", 1), ('unpolarised (valley = "both")', "both")):
        _, t = sweep(valley, n)
        print(f"\ntMoTe2 3.9°, {name}, {n}x{n}, δ = {DELTA} meV; σ in e²/h, S in μV/K\n")
        print("| ν_h | T (K) | σ_xx | Drude | geometric | σ_xy | S_xx | S_xy |")
        print("|---|---|---|---|---|---|---|---|")
        for i, nu in enumerate(NU_H):
            for j, temp in enumerate(TEMPERATURES):
                row = [float(np.asarray(t[key])[i, 0, j]) for key in (
                    "sigma_xx", "sigma_xx_drude", "sigma_xx_geometric", "sigma_xy",
                    "seebeck_xx", "seebeck_xy")]
                print(f"| {nu:.2f} | {temp:g} | " + " | ".join(f"{x:.3f}" for x in row) + " |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 18)
