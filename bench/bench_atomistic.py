"""Cost of atomistic twisted bilayer graphene through the SLEPc window (issue 8, item 3).

The commensurate (m, 1) cell (theory §2.6; m = 31: θ = 1.0501°, N = 11 908 orbitals) with its
energy zero at charge neutrality (found with the same SLEPc solver: the four Dirac states at
the moiré K nearest the monolayer Dirac energy, E_CN = the mean of the middle two).

Part ``perf``: time per k-point of the window of nev = 8 (+ 4 padding) eigenpairs nearest
charge neutrality with velocities and the out-of-window (Sternheimer) metric, after one
warm-up k-point; wall and CPU time of every timed k-point, peak RSS per rank and the solver's
iteration counts. ``--method`` block (the default from 2000 orbitals) or krylovschur (SLEPc);
under ``mpirun`` either every rank solves its own k-points (``--own``, pools of one rank) or
all ranks form one pool (distributed MUMPS) and solve the same k-points.

Part ``grid``: the four flat bands (nev = 4) on an n×n moiré grid through ``driver.compute``
on all ranks, pools of one rank, one (T, μ, δ) point, blocks of whole grid rows (one per
rank, so the link corners come from the ranks' own vectors): wall and CPU time, corner solves,
peak RSS per rank, link Chern numbers and integrated metric.

Why: this is the issue's reference problem for the windowed engine (goals: ≤ 2 s of CPU per
k-point, ≤ 10 min for the 24 × 24 grid on 2 ranks, ≤ 1.5 GiB per rank); docs/performance.md
§8 quotes these figures and projects them to m = 60 on 256 ranks.

Suite presets (``--suite``; this process then runs every configuration as its own
``mpirun``/process and merges their records): ``quick`` = m = 14 (2 524 orbitals, block
Lanczos), 3 k-points + warm-up, grid 6 × 6; ``full`` = m = 31, 4 k-points + warm-up, grid
12 × 12 (the docs' 24 × 24 takes ≈ 7 min on an idle machine: ``grid --m 31 --grid 24``).

Usage::

    .venv/bin/python bench/bench_atomistic.py perf --m 31 [--method krylovschur]
    mpirun -n 2 .venv/bin/python bench/bench_atomistic.py perf --m 31 [--own]
    mpirun -n 2 .venv/bin/python bench/bench_atomistic.py grid --m 31 --grid 24
    .venv/bin/python bench/bench_atomistic.py suite --suite quick --json FILE
"""

# ruff: noqa: E402  (the thread settings must precede the numpy/petsc4py imports)
from __future__ import annotations

from qgt_mpi._env import pin_threads  # environment before numpy/petsc4py

pin_threads()  # one BLAS/OpenMP thread per process, as `qgt-mpi run` sets (MUMPS too)

# isort: split
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import add_suite_options, case_record, mpi_env, write_record
from mpi4py import MPI

from qgt_mpi.models.tbg_atomistic import monolayer_dirac_energy, shift_energy, tbg_atomistic
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

SUITE = {"quick": {"m": 14, "nk": 4, "grid": 6}, "full": {"m": 31, "nk": 5, "grid": 12}}


def neutral_model(m: int, comm: MPI.Comm = MPI.COMM_SELF):
    """(model with its zero at charge neutrality, E_CN [meV]) of the (m, 1) cell."""
    model = tbg_atomistic(m)
    e_d = monolayer_dirac_energy(model.params)
    solver = SlepcSolver(WindowOptions(nev=4, target=e_d), comm)
    e = np.sort(solver.solve(model, model.dirac_point()[None], velocities=False).energies[0])
    return shift_energy(model, 0.5 * (e[1] + e[2])), 0.5 * (e[1] + e[2])


def _peak_mib() -> float:
    """Peak resident set size of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def part_perf(m: int, nk: int, method: str, own: bool) -> dict | None:
    """Per-k-point cost of the nev = 8 window; the record on rank 0 (None elsewhere).

    Parameters
    ----------
    m : int
        Cell index.
    nk : int
        k-points solved: one warm-up, then ``nk - 1`` timed one by one.
    method : str
        "auto", "block" or "krylovschur".
    own : bool
        Every rank solves its own k-points (pools of one rank); otherwise one pool of all
        ranks solves the same k-points.

    Returns
    -------
    dict or None
        :func:`_common.case_record` of the run (rank 0).
    """
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    model, e_cn = neutral_model(m, comm)
    t_build = time.perf_counter() - t0
    pool = MPI.COMM_SELF if own else comm
    solver = SlepcSolver(WindowOptions(nev=8, target=0.0, method=method), pool)
    rng = np.random.default_rng(7 + (comm.rank if own else 0))
    k = rng.random((nk, 2)) @ model.reciprocal
    solver.solve(model, k[:1])  # warm-up: factor-pattern set-up, imports
    walls, cpus = [], []
    for kk in k[1:]:
        comm.Barrier()
        t1, c1 = time.perf_counter(), time.process_time()
        solver.solve(model, kk[None])
        cpus.append(time.process_time() - c1)
        comm.Barrier()
        walls.append(time.perf_counter() - t1)
    peaks = comm.gather(_peak_mib(), root=0)
    cpu_all = comm.gather(cpus, root=0)
    if comm.rank:
        return None
    layout = ("1 rank" if comm.size == 1 else "ranks side by side (pools of 1)" if own
              else f"one pool of {pool.size} ranks")
    label = f"perf {method} np={comm.size}" + (" own" if own else "")
    cpu_mean = float(np.mean(cpu_all))
    print(f"m = {m}, N = {model.norb}, {comm.size} rank(s), {layout}: model + E_CN "
          f"({e_cn:.2f} meV) {t_build:.1f} s; {np.median(walls):.2f} s per k-point wall "
          f"(median of {len(walls)}), CPU {cpu_mean:.2f} s per rank; method {method}; peak "
          f"RSS per rank {[round(p) for p in peaks]} MiB; load {os.getloadavg()[0]:.1f}",
          flush=True)
    return case_record(label, {"part": "perf", "m": m, "norb": model.norb, "theta_deg":
                               model.theta, "np": comm.size, "own": own, "method": method,
                               "nev": 8, "pad": 4, "timed_k": len(walls), "layout": layout},
                       walls, max(peaks), cpu_per_k_s=cpu_mean, cpu_per_k_rank0=cpus,
                       peak_mib_per_rank=peaks, setup_s=t_build, e_cn_meV=e_cn,
                       iterations=dict(solver.iterations), load=os.getloadavg()[0])


def part_grid(m: int, n: int, chunk: int | None) -> dict | None:
    """The 4 flat bands on an n×n grid, every rank its own pool; the record on rank 0."""
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    model = neutral_model(m, comm)[0]
    solver = SlepcSolver(WindowOptions(nev=4, target=0.0), MPI.COMM_SELF)
    chunk = chunk or n * -(-n // comm.size)  # whole rows, one block per rank
    t1, c1 = time.perf_counter(), time.process_time()
    tr, geo = compute(comm, model, (n, n), np.array([1.0]), np.array([0.0]),
                      np.full((1, 4), 0.1), 4.0, solver=solver, chunk=chunk,
                      window={"delta_out": np.array([0.1]), "chern_below": 0})[1:]
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    counts = comm.gather((dict(solver.iterations), _peak_mib(), cpu), root=0)
    if comm.rank:
        return None
    solved = sum(c[0]["k"] for c in counts)
    corners = sum(c[0]["vectors_only"] for c in counts)
    peaks, cpus = [c[1] for c in counts], [c[2] for c in counts]
    print(f"grid {n}x{n} at m = {m} (N = {model.norb}), {comm.size} rank(s), pools of 1, "
          f"chunk {chunk}: set-up {t1 - t0:.1f} s, compute {wall:.1f} s (CPU per rank "
          f"{[round(c) for c in cpus]} s); {solved} k-points + {corners} corner solves; peak "
          f"RSS per rank {[round(p) for p in peaks]} MiB; load {os.getloadavg()[0]:.1f}",
          flush=True)
    return case_record(f"grid {n}x{n} np={comm.size}",
                       {"part": "grid", "m": m, "norb": model.norb, "grid": n,
                        "np": comm.size, "chunk": chunk, "nev": 4},
                       [wall], max(peaks), cpu_per_rank_s=cpus, kpoints=solved,
                       corner_solves=corners, cpu_per_k_s=sum(cpus) / max(solved, 1),
                       peak_mib_per_rank=peaks, setup_s=t1 - t0,
                       chern_groups=geo["chern_groups"].tolist(),
                       trace_integral=np.asarray(geo["trace_integral"]).tolist(),
                       sigma_xx=float(np.ravel(tr["sigma_xx"])[0]),
                       load=os.getloadavg()[0])


def suite(preset: str, out: Path | None) -> None:
    """Every configuration of the preset as its own process; one merged record."""
    size = SUITE[preset]
    me = [sys.executable, str(Path(__file__).resolve())]
    mpirun2 = ["mpirun", "-n", "2"]
    m, nk = str(size["m"]), str(size["nk"])
    runs = [[*me, "perf", "--m", m, "--nk", nk],
            [*me, "perf", "--m", m, "--nk", nk, "--method", "krylovschur"],
            [*mpirun2, *me, "perf", "--m", m, "--nk", nk, "--own"],
            [*mpirun2, *me, "perf", "--m", m, "--nk", nk],
            [*mpirun2, *me, "grid", "--m", m, "--grid", str(size["grid"])]]
    records = []
    with tempfile.TemporaryDirectory(prefix="qgt-bench-atom-") as tmp:
        for i, cmd in enumerate(runs):
            path = Path(tmp) / f"{i}.json"
            proc = subprocess.run([*cmd, "--json", str(path)], env=mpi_env(), text=True,
                                  capture_output=True, check=False)
            print(proc.stdout.strip(), flush=True)
            if proc.returncode or not path.exists():
                records.append(case_record(" ".join(cmd[cmd.index("perf") if "perf" in cmd
                                                        else cmd.index("grid"):]),
                                           {}, None, error=proc.stderr[-2000:]))
                continue
            records.append(json.loads(path.read_text()))
    write_record(out, "atomistic", preset, dict(size), records)


def main() -> None:
    """Parse the command line and run one part (or the suite)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("perf", "grid", "suite"))
    ap.add_argument("--m", type=int, default=31)
    ap.add_argument("--nk", type=int, default=4, help="perf: k-points (first one warm-up)")
    ap.add_argument("--method", default="auto", choices=("auto", "block", "krylovschur"))
    ap.add_argument("--own", action="store_true", help="perf: each rank its own k-points")
    ap.add_argument("--grid", type=int, default=24, help="grid: n of the n×n grid")
    ap.add_argument("--chunk", type=int, default=None, help="grid: k-points per block")
    add_suite_options(ap)
    args = ap.parse_args()
    if args.part == "suite":
        suite(args.suite or "quick", args.json)
        return
    rec = (part_perf(args.m, args.nk, args.method, args.own) if args.part == "perf"
           else part_grid(args.m, args.grid, args.chunk))
    if rec is not None and args.json is not None:
        args.json.write_text(json.dumps(rec, default=float))


if __name__ == "__main__":
    main()
