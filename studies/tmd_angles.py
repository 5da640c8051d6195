"""Twisted MoTe₂ (tmd_continuum, theory §2.5a): the top two valence bands of valley K vs angle.

Why: the "ideal band" map of issue 20 — widths, gaps, Chern numbers, (1/2π)∫Tr g and the
trace-condition violation (1/2π)∫(Tr g − |Ω|) of the top two bands of the Wang 2024 set for
θ = 2°…5°, a table a reader can hold against the fractional-Chern-insulator literature; and
the plane-wave convergence at 3.9°. Dense solves (74 states at 3 shells) on an N×N grid;
Chern numbers by link variables (geometry/chern.py), metric and curvature per k by the
Kubo sums of theory §1.4 (geometry/bands.py). Prints markdown tables (docs/validation.md).
Run:
    .venv/bin/python studies/tmd_angles.py [N]        (N = 24 by default; about 30 s)
"""

from __future__ import annotations

import qgt_mpi  # noqa: F401  (environment before numpy/petsc4py)

# isort: split
import sys

import numpy as np

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.geometry.chern import chern_numbers
from qgt_mpi.models.continuum import tmd_continuum
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.solvers import DenseSolver

ANGLES = np.round(np.arange(2.0, 5.001, 0.25), 2)


def top_two(theta: float, n: int, shells: int = 3, params: str = "wang2024") -> dict:
    """Widths, gaps, C, (1/2π)∫Tr g, (1/2π)∫(Tr g − |Ω|) of the top band (1) and second (2)."""
    model = tmd_continuum(theta, params, shells=shells)
    nb = model.norb
    k = kgrid_points(model.reciprocal, n, n, 0, n * n)
    eig = DenseSolver().solve(model, k)
    curvature, metric = band_geometry(eig)
    area = abs(np.linalg.det(model.reciprocal)) / (n * n) / (2 * np.pi)
    e = eig.energies
    out = {"theta": theta, "C": chern_numbers(model, DenseSolver(), n, n,
                                              [(nb - 1, nb), (nb - 2, nb - 1)])}
    for i, band in ((1, nb - 1), (2, nb - 2)):
        trace = metric[:, band, 0] + metric[:, band, 1]
        out[f"W{i}"] = float(np.ptp(e[:, band]))
        out[f"trg{i}"] = float(trace.sum() * area)
        out[f"viol{i}"] = float((trace - np.abs(curvature[:, band])).sum() * area)
    out["gap12"] = float((e[:, nb - 1] - e[:, nb - 2]).min())  # direct
    out["gap23"] = float((e[:, nb - 2] - e[:, nb - 3]).min())
    return out


def main(n: int) -> None:
    print(f"tMoTe2, Wang 2024 set, valley K, 3 shells, {n}x{n} grid (energies meV)\n")
    print("| θ (°) | W₁ | gap₁₂ | W₂ | gap₂₃ | C₁, C₂ | ∫Tr g/2π (1) | viol. (1) "
          "| ∫Tr g/2π (2) | viol. (2) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for theta in ANGLES:
        r = top_two(float(theta), n)
        c1, c2 = np.rint(r["C"]).astype(int)
        print(f"| {theta:.2f} | {r['W1']:.2f} | {r['gap12']:.2f} | {r['W2']:.2f} | "
              f"{r['gap23']:.2f} | {c1:+d}, {c2:+d} | {r['trg1']:.3f} | {r['viol1']:.3f} | "
              f"{r['trg2']:.3f} | {r['viol2']:.3f} |")
    print("\nplane-wave convergence at 3.9°:\n")
    print("| shells | states | W₁ | gap₁₂ | ∫Tr g/2π (1) |")
    print("|---|---|---|---|---|")
    for shells in (2, 3, 4, 5):
        r = top_two(3.9, n, shells)
        print(f"| {shells} | {2 * (1 + 3 * shells * (shells + 1))} | {r['W1']:.4f} | "
              f"{r['gap12']:.4f} | {r['trg1']:.4f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 24)
