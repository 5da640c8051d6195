"""Per-k cost of the reduced-basis accelerator against the full window solve (theory §5.10).

The four flat bands of atomistic TBG (nev = 4 at charge neutrality, with velocities and the
out-of-window metric) at ``--count`` consecutive k-points of an n × n moiré grid (one k-pass
block, from flat index ``--start``): first every k-point by the full SLEPc solve, then the same
block through ``[solver] accelerate = "basis"``. Prints wall and CPU time per k-point of both,
the accelerator's counts (k-points by Rayleigh–Ritz / in full, Davidson steps, largest basis,
why k-points fell back) and the largest differences (eigenvalues in meV, out-of-window metric
relative). docs/performance.md §8.5 quotes it.

Usage::

    .venv/bin/python bench/bench_accelerate.py --m 15 --grid 24 --count 12
    .venv/bin/python bench/bench_accelerate.py --m 31 --grid 48 --count 6 --json FILE
"""

# ruff: noqa: E402  (the thread settings must precede the numpy/petsc4py imports)
from __future__ import annotations

from qgt_mpi._env import pin_threads  # environment before numpy/petsc4py

pin_threads()

import argparse
import json
import time

import numpy as np
from mpi4py import MPI

from qgt_mpi.models import build_model
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.solvers.accelerate import AccelOptions, ReducedBasis
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions


def _timed(solver, model, k):
    wall, cpu = time.perf_counter(), time.process_time()
    eig = solver.solve(model, k)
    return eig, (time.perf_counter() - wall) / len(k), (time.process_time() - cpu) / len(k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=15)
    ap.add_argument("--grid", type=int, default=24)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--nev", type=int, default=4)
    ap.add_argument("--refine", type=int, default=8)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    model = build_model("tbg_atomistic", {"m": a.m})
    build = time.perf_counter() - t0
    k = kgrid_points(model.reciprocal, a.grid, a.grid, a.start, a.start + a.count)
    opts = WindowOptions(nev=a.nev, target=0.0)
    full, wall_f, cpu_f = _timed(SlepcSolver(opts, MPI.COMM_SELF), model, k)
    acc = ReducedBasis(SlepcSolver(opts, MPI.COMM_SELF),
                       AccelOptions(tol=a.tol, refine=a.refine))
    got, wall_a, cpu_a = _timed(acc, model, k)
    rep = acc.report
    out = {"m": a.m, "norb": model.norb, "grid": a.grid, "start": a.start, "count": a.count,
           "nev": a.nev, "build_s": build, "full_wall_per_k": wall_f, "full_cpu_per_k": cpu_f,
           "accel_wall_per_k": wall_a, "accel_cpu_per_k": cpu_a, "ritz_kpoints": rep.ritz,
           "full_kpoints": rep.full, "davidson_steps": rep.refinements,
           "max_basis": rep.max_basis, "fallback_reasons": rep.reasons,
           "max_energy_diff_meV": float(np.max(np.abs(got.energies - full.energies))),
           "max_metric_out_rel_diff": float(np.max(np.abs(got.metric_out - full.metric_out))
                                            / np.max(np.abs(full.metric_out))),
           "window_gap_meV": float(np.nanmin(np.abs(full.outside - full.energies[:, [0, -1]])))}
    for key, value in out.items():
        print(f"{key:26s} {value}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
