"""Windowed (SLEPc) against dense transport as the window grows (theory §5; docs/validation.md).

Why: the windowed engine replaces the bands outside the window by Sternheimer terms; this
table (docs/validation.md) shows how fast transport converges to the dense result as the
window grows. An accuracy study, not a benchmark.

Model: 2×2 supercell of the Haldane model (t1 = 100, t2 = 30, M = 10 meV, φ = π/2) with seeded
box disorder of width 600 meV, which splits the 8 bands into isolated groups (gaps 14–62 meV).
The windows hold the 2, 4 and 6 bands around the gap between bands 3 and 4; μ sits inside
bands 3 and 4. Every quantity is compared with the dense solver (all 8 bands exact).
Run: .venv/bin/python studies/window_convergence.py   (about 10 s)
"""

from __future__ import annotations

import qgt_mpi  # noqa: F401  (environment before numpy/petsc4py)

# isort: split
import numpy as np
from mpi4py import MPI

from qgt_mpi.models import haldane
from qgt_mpi.models.supercell import supercell
from qgt_mpi.run.driver import compute, window_isolated
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

GRID, TEMPS = (12, 12), np.array([1.0, 10.0, 30.0])
KEYS = ("sigma_xx", "sigma_xx_geometric", "sigma_xy", "seebeck", "kappa_xx")


def main() -> None:
    model = supercell(haldane(100.0, 30.0, 10.0, np.pi / 2), (2, 2), 600.0, 1)
    dense_tr, dense_geo = None, None
    for delta in (1.0, 0.1):
        probe = compute(MPI.COMM_SELF, model, GRID, TEMPS, np.array([0.0]),
                        np.full((1, 8), delta))[2]
        lo, hi = probe["band_min"], probe["band_max"]
        target = 0.5 * (hi[3] + lo[4])
        mu = np.array([0.5 * (lo[3] + hi[3]), 0.5 * (lo[4] + hi[4])])
        dense_tr, dense_geo = compute(MPI.COMM_SELF, model, GRID, TEMPS, mu,
                                      np.full((1, 8), delta))[1:]
        print(f"\ndelta = {delta} meV, target {target:.2f} meV, mu = {np.round(mu, 2)} meV")
        print("| window | nearest outside band [meV] | isolated | "
              + " | ".join(f"max rel. err. {k}" for k in KEYS) + " |")
        print("|---" * (3 + len(KEYS)) + "|")
        for nev in (2, 4, 6):
            solver = SlepcSolver(WindowOptions(nev=nev, target=target, pad=8 - nev),
                                 MPI.COMM_SELF)
            below = int(np.sum(hi < target)) - nev // 2  # bands below the window
            chern_below = int(np.sum(dense_geo["chern_groups"][:below])) if below else 0
            tr, geo = compute(MPI.COMM_SELF, model, GRID, TEMPS, mu, np.full((1, nev), delta),
                              solver=solver, window={"delta_out": np.array([delta]),
                                                     "chern_below": chern_below})[1:]
            edges = geo["window_edges"]
            dist = min(mu.min() - edges[0], edges[1] - mu.max())
            errs = [np.max(np.abs(tr[k] - dense_tr[k])) / np.max(np.abs(dense_tr[k]))
                    for k in KEYS]
            print(f"| {nev} | {dist:.0f} | {window_isolated(geo)} | "
                  + " | ".join(f"{x:.1e}" for x in errs) + " |")


if __name__ == "__main__":
    main()
