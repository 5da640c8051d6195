"""Sparse engine benchmark: dense vs SLEPc per k-point, the SciPy path, pools vs ranks.

Part 1: time per k-point and peak memory versus matrix size on n×n supercells of the
dispersive Haldane model (t1 = 1, t2 = 0.3, M = 0.2 meV, φ = π/2, box disorder W = 0.5 meV,
seed 1; 2n² orbitals), for the dense solver (all bands, batched eigh + velocities; up to
~3000 orbitals) and SLEPc (nev = 8 nearest σ = −2 meV, inside the lower band, tol 1e-10),
without and with the out-of-window (Sternheimer) geometry; the crossover size where SLEPc
with out-of-window geometry beats dense per k-point (what ``[solver] kind = "auto"`` uses,
io/deck_solver.py AUTO_CROSSOVER).

Part 2: proxy of the issue's 12 000-row reference matrix (AB bilayer graphene supercell,
bench/_sparse_models.py, 3 000 / 6 048 / 12 000 orbitals, σ = 800 meV near charge
neutrality): SLEPc (with and without out-of-window geometry) against SciPy SuperLU + ARPACK
(``eigsh(sigma=σ)``, 8 eigenpairs, same tolerance), and dense ``eigh`` extrapolated from
part 1 with the fitted power law.

Part 3: ``mpirun -n 2`` on the largest cases: pools = 2 (each rank solves its own k-points)
against pools = 1 (one 2-rank pool solves every k-point with distributed MUMPS).

Each case runs in a fresh process (bench/_sparse_worker.py), so peak RSS is per case; every
timing is the best of ``--repeat`` repetitions (the dense 2888-orbital case and the SciPy
12 000-row case run ``--repeat-slow`` times). Single-rank columns give the process CPU time
(the machine is shared: wall time then includes waiting for a core) and the wall time.

Why: large models are diagonalised in a window; these tables justify the ``auto`` crossover,
show the windowed solver against SciPy and dense at the issue's reference size, and decide
between pools and distributed solves (docs/performance.md §5).

Suite presets (bench/run.py): ``quick`` = part 1 on 50–800 orbitals, part 2 at 3 000 rows
(SciPy at the same size), part 3 on the 800-orbital Haldane supercell, 2 repetitions;
``full`` = the sizes of the docs (part 1 up to 11 858 orbitals, part 2 up to 12 000 rows,
part 3 on the largest cases), 3 repetitions (1 for the two slowest cases). Part 3 runs with
``--yield-idle`` in both (the machine is shared).

Usage::

    .venv/bin/python bench/bench_sparse.py [--repeat 3] [--repeat-slow 1] [--parts 1 2 3]
                                           [--yield-idle] [--records FILE.jsonl]
                                           [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _common import add_suite_options, case_record, format_table, mpi_env, write_record

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_sparse_worker.py"
HALDANE_N = (5, 7, 8, 10, 12, 14, 20, 28, 38, 56, 77)  # 50 ... 11 858 orbitals
DENSE_MAX, SLOW_DENSE = 3000, 2000  # orbitals: dense limit; above SLOW_DENSE --repeat-slow
BILAYER = ((30, 25), (42, 36), (60, 50))  # 3 000, 6 048, 12 000 orbitals
WINDOW = {"nev": 8, "tol": 1e-10}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TARGET = {"haldane": -2.0, "bilayer": 800.0}  # meV


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="repetitions (best is kept)")
    p.add_argument("--repeat-slow", type=int, default=1,
                   help="repetitions of the dense 2888 and SciPy 12 000 cases")
    p.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--yield-idle", action="store_true",
                   help="part 3 with OpenMPI mpi_yield_when_idle = 1 (shared cores)")
    p.add_argument("--records", type=Path, default=None,
                   help="append every case's JSON record to this file")
    add_suite_options(p)
    return p


# Sizes of each suite preset: part 1 supercells, part 2 bilayers, part 3 cases.
SIZES = {
    "full": {"haldane": HALDANE_N, "bilayer": BILAYER,
             "pools": (("haldane", HALDANE_N[-1], 4), ("bilayer", list(BILAYER[-1]), 2))},
    "quick": {"haldane": (5, 8, 10, 14, 20), "bilayer": ((30, 25),),
              "pools": (("haldane", 20, 4),)},
}
ACTIVE = dict(SIZES["full"])  # what part1/part2/part3 use (set by --suite)
ALL: list[dict] = []  # every record of this invocation (for --json)
FAILED: list[dict] = []  # cases whose worker failed: spec and the end of its stderr


class CaseFailedError(RuntimeError):
    """A worker process failed; the suite records it and goes on with the next case."""


RECORDS: list[Path] = []  # where run() appends records (set by --records)
MPI_EXTRA: dict[str, str] = {}  # extra environment of mpirun cases (set by --yield-idle)


def run(spec: dict, nprocs: int = 1) -> dict:
    """Run one worker case (``mpirun -n nprocs`` when nprocs > 1) and parse its record."""
    cmd = [sys.executable, str(WORKER), json.dumps(spec)]
    if nprocs > 1:
        cmd = ["mpirun", "-n", str(nprocs), *cmd]
    env = {**mpi_env(), **dict.fromkeys(THREAD_VARS, "1"), **MPI_EXTRA}  # one core per rank
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                          cwd=HERE)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode or not lines:
        tail = proc.stderr.strip()[-1500:]
        FAILED.append({"spec": spec, "nprocs": nprocs, "error": tail})
        print(f"  FAILED {spec}: {tail.splitlines()[-1] if tail else '?'}", flush=True)
        raise CaseFailedError(f"worker failed for {spec}: {tail[-400:]}")
    rec = json.loads(lines[-1])
    rec["nprocs"] = nprocs
    ALL.append(rec)
    for path in RECORDS:
        with path.open("a") as f:
            f.write(lines[-1] + "\n")
    print(f"  {rec['engine']:5s} {rec['model']:7s} N = {rec['norb']:6d}"
          f" oow={rec.get('oow', '-')!s:5s} pools={rec.get('pools', 1)}"
          f"  cpu/k {rec['cpu']:.4g} s  wall/k {rec['wall']:.4g} s", flush=True)
    return rec


def slepc_spec(model: str, size, oow: bool, nk: int, repeat: int, pools: int = 1) -> dict:
    """Worker spec of a SLEPc case."""
    return {"engine": "slepc", "model": model, "size": size, "nk": nk, "repeat": repeat,
            "target": TARGET[model], "oow": oow, "pools": pools, **WINDOW}


def part1(repeat: int, repeat_slow: int) -> list[dict]:
    """Dense and SLEPc on the Haldane supercells (part 1)."""
    recs = []
    for n in ACTIVE["haldane"]:
        norb = 2 * n * n
        if norb <= DENSE_MAX:
            batch = int(min(64, max(1, 4e6 // norb**2)))
            reps = repeat if norb <= SLOW_DENSE else repeat_slow
            recs += _try({"engine": "dense", "model": "haldane", "size": n, "nk": batch,
                          "repeat": reps})
        for oow in (False, True):
            recs += _try(slepc_spec("haldane", n, oow, 4 if norb <= 3000 else 2, repeat))
    return recs


def _try(spec: dict, nprocs: int = 1) -> list[dict]:
    """``[run(spec, nprocs)]``, or ``[]`` when the case failed (it is in FAILED)."""
    try:
        return [run(spec, nprocs)]
    except CaseFailedError:
        return []


def _mib(rec: dict) -> str:
    """Peak RSS of the largest rank (MiB)."""
    return f"{max(rec['rss_peak']):.0f}"


def table1(recs: list[dict]) -> str:
    """Part 1 table: one row per size."""
    rows = []
    for norb in sorted({r["norb"] for r in recs}):
        d = next((r for r in recs if r["norb"] == norb and r["engine"] == "dense"), None)
        s0, s1 = (next((r for r in recs if r["norb"] == norb and r["engine"] == "slepc"
                        and r["oow"] is oow), None) for oow in (False, True))
        dense = [f"{d['cpu']:.4g}", f"{d['wall']:.4g}", _mib(d)] if d else ["-"] * 3
        w0 = ([f"{s0['cpu']:.4g}", f"{s0['wall']:.4g}", _mib(s0), f"{s0['eps_its']:.1f}"]
              if s0 else ["-"] * 4)
        w1 = ([f"{s1['cpu']:.4g}", f"{s1['wall']:.4g}", _mib(s1), f"{s1['cg_its']:.1f}"]
              if s1 else ["-"] * 4)
        nnz = next(r["nnz"] for r in recs if r["norb"] == norb)
        rows.append([str(norb), str(nnz), *dense, *w0, *w1])
    head = ["N", "nnz", "dense cpu/k", "wall/k", "MiB", "slepc cpu/k", "wall/k", "MiB",
            "KS its", "+oow cpu/k", "wall/k", "MiB", "CG its"]
    return format_table(head, rows)


def crossover(recs: list[dict], oow: bool) -> float:
    """Size where SLEPc CPU time per k-point equals dense (log-log interpolation)."""
    pts = []
    for d in (r for r in recs if r["engine"] == "dense"):
        s = next((r for r in recs if r["engine"] == "slepc" and r["norb"] == d["norb"]
                  and r["oow"] is oow), None)
        if s is None:
            continue
        pts.append((d["norb"], math.log(s["cpu"] / d["cpu"])))
    pts.sort()
    for (n0, r0), (n1, r1) in itertools.pairwise(pts):
        if r0 > 0 >= r1:
            return math.exp(math.log(n0) + (math.log(n1) - math.log(n0)) * r0 / (r0 - r1))
    return float(pts[0][0]) if pts and pts[0][1] <= 0 else float("nan")


def power_law(sizes, values) -> tuple[float, float]:
    """Least-squares fit values = c · sizes^p in log-log; returns (c, p)."""
    p, logc = np.polyfit(np.log(sizes), np.log(values), 1)
    return float(math.exp(logc)), float(p)


def part2(repeat: int, repeat_slow: int) -> tuple[list[dict], dict]:
    """SLEPc on bilayer supercells and SciPy at 12 000 rows (part 2)."""
    recs = [r for s in ACTIVE["bilayer"] for oow in (False, True)
            for r in _try(slepc_spec("bilayer", list(s), oow, 1, repeat))]
    spec = {"engine": "scipy", "model": "bilayer", "size": list(ACTIVE["bilayer"][-1]), "nk": 1,
            "repeat": repeat_slow, "target": TARGET["bilayer"], **WINDOW}
    sci = _try(spec)
    return recs, (sci[0] if sci else None)


def fits2(recs: list[dict], sci: dict, dense: list[dict]) -> dict:
    """Part 2 figures: dense power law and extrapolation, SLEPc exponents and ratios."""
    big = sorted(dense, key=lambda d: d["norb"])[-3:]  # the three largest dense sizes
    c, p = power_law([d["norb"] for d in big], [d["cpu"] for d in big])
    n = sci["norb"]
    out = {"dense_exponent": p, "dense_extrapolated_cpu_s": c * n**p, "norb": n,
           "dense_3_matrices_mib": 3 * n * n * 16 / 2**20}
    for oow in (False, True):
        sel = [r for r in recs if r["oow"] is oow]
        key = "slepc_oow" if oow else "slepc"
        out[f"{key}_exponent"] = power_law([r["norb"] for r in sel],
                                           [r["cpu"] for r in sel])[1] if len(sel) > 1 else None
        out[f"scipy_over_{key}_cpu"] = sci["cpu"] / sel[-1]["cpu"]
        out[f"scipy_over_{key}_wall"] = sci["wall"] / sel[-1]["wall"]
        out[f"dense_over_{key}_cpu"] = c * n**p / sel[-1]["cpu"]
    out["max_eigenvalue_diff_meV"] = float(np.max(np.abs(np.array(sci["energies"])
                                                         - np.array(recs[-1]["energies"]))))
    return out


def report2(recs: list[dict], sci: dict, dense: list[dict]) -> str:
    """Part 2 table, fits, dense extrapolation and cross-check."""
    rows = [[str(r["norb"]), str(r["nnz"]), "slepc" + (" +oow" if r["oow"] else ""),
             f"{r['cpu']:.3f}", f"{r['wall']:.3f}", _mib(r), f"{r['eps_its']:.0f}",
             f"{r['cg_its']:.0f}"] for r in recs]
    rows.append([str(sci["norb"]), str(sci["nnz"]), "scipy splu+eigsh", f"{sci['cpu']:.3f}",
                 f"{sci['wall']:.3f}", _mib(sci), "-", "-"])
    big = sorted(dense, key=lambda d: d["norb"])[-3:]  # the three largest dense sizes
    c, p = power_law([d["norb"] for d in big], [d["cpu"] for d in big])
    n = sci["norb"]
    rows.append([str(n), "-", f"dense (extrapolated, N^{p:.2f})", f"{c * n**p:.0f}", "-",
                 f"{3 * n * n * 16 / 2**20:.0f} (3 N² matrices)", "-", "-"])
    text = [format_table(["N", "nnz", "engine", "cpu/k [s]", "wall/k [s]", "peak MiB",
                          "KS its", "CG its"], rows)]
    for oow in (False, True):
        sel = [r for r in recs if r["oow"] is oow]
        ps = power_law([r["norb"] for r in sel], [r["cpu"] for r in sel])[1] \
            if len(sel) > 1 else float("nan")
        last = sel[-1]
        text.append(f"slepc{' +oow' if oow else ''}: cpu/k ~ N^{ps:.2f};"
                    f" SciPy/SLEPc = {sci['cpu'] / last['cpu']:.1f}x (cpu),"
                    f" {sci['wall'] / last['wall']:.1f}x (wall);"
                    f" dense/SLEPc = {c * n**p / last['cpu']:.0f}x (cpu)")
    diff = np.max(np.abs(np.array(sci["energies"]) - np.array(recs[-1]["energies"])))
    text.append(f"max |eigenvalue(SciPy) - eigenvalue(SLEPc)| = {diff:.2e} meV")
    return "\n".join(text)


def part3(repeat: int) -> str:
    """Pools = 2 vs pools = 1 under mpirun -n 2 on the largest cases (part 3)."""
    rows = []
    for model, size, nk in ACTIVE["pools"]:
        first = None
        for pools in (2, 1):
            got = _try(slepc_spec(model, size, True, nk, repeat, pools), nprocs=2)
            if not got:
                continue
            r = got[0]
            first = first or r["energies"]  # same first k-point in both layouts
            diff = np.max(np.abs(np.array(r["energies"]) - np.array(first)))
            r["max_energy_diff_meV"] = float(diff)
            rows.append([model, str(r["norb"]), str(pools), str(2 // pools), f"{r['wall']:.3f}",
                         " ".join(f"{w:.2f}" for w in r["walls"]),
                         "/".join(f"{m:.0f}" for m in r["rss_peak"]), f"{r['cg_its']:.0f}",
                         f"{diff:.1e}"])
    return format_table(["model", "N", "pools", "ranks/pool", "wall/k [s]", "all repeats",
                         "peak MiB per rank", "CG its", "max |Δε| [meV]"], rows)


def main() -> None:
    """Run the selected parts and print their tables."""
    args = _parser().parse_args()
    if args.suite:
        ACTIVE.update(SIZES[args.suite])
        args.repeat = 2 if args.suite == "quick" else 3
        args.repeat_slow, args.parts, args.yield_idle = 1, [1, 2, 3], True
    RECORDS.extend([args.records] if args.records else [])
    MPI_EXTRA.update({"OMPI_MCA_mpi_yield_when_idle": "1"} if args.yield_idle else {})
    print(f"load average before: {os.getloadavg()}", flush=True)
    out, dense, extra = [], [], {}
    if 1 in args.parts:
        recs = part1(args.repeat, args.repeat_slow)
        dense = [r for r in recs if r["engine"] == "dense"]
        extra["crossover_oow"] = crossover(recs, True)
        extra["crossover"] = crossover(recs, False)
        out += ["Part 1: Haldane supercells (per k-point, one rank)", table1(recs),
                f"crossover (cpu/k, slepc +oow = dense): N = {crossover(recs, True):.0f};"
                f" without oow: N = {crossover(recs, False):.0f}"]
    if 2 in args.parts:
        recs2, sci = part2(args.repeat, args.repeat_slow)
        ok = sci is not None and all(any(r["oow"] is o for r in recs2) for o in (False, True))
        extra["part2"] = fits2(recs2, sci, dense) if dense and ok else None
        out += ["", "Part 2: 12 000-row bilayer-graphene proxy (one rank)",
                report2(recs2, sci, dense) if dense and ok else json.dumps([*recs2, sci])]
    if 3 in args.parts:
        out += ["", "Part 3: mpirun -n 2, pools vs ranks (slepc +oow)", part3(args.repeat)]
    print("\n" + "\n".join(out))
    print(f"\nload average after: {os.getloadavg()}")
    for f in FAILED:
        print(f"FAILED: {f['spec']}\n  {f['error'].splitlines()[-1] if f['error'] else '?'}")
    write_record(args.json, "sparse", args.suite,
                 {"repeat": args.repeat, "repeat_slow": args.repeat_slow, "parts": args.parts,
                  "yield_idle": args.yield_idle, "window": WINDOW, "target": TARGET},
                 [_case(r) for r in ALL]
                 + [case_record(f"FAILED {f['spec']['engine']} {f['spec']['model']} "
                                f"size={f['spec']['size']} oow={f['spec'].get('oow')}",
                                {**f["spec"], "nprocs": f["nprocs"]}, None, error=f["error"])
                    for f in FAILED], **extra)


def _case(rec: dict) -> dict:
    """A worker record as a :func:`_common.case_record` (per-k-point wall times)."""
    part = 3 if rec["nprocs"] > 1 else (1 if rec["model"] == "haldane" else 2)
    label = (f"part{part} {rec['engine']}{' +oow' if rec.get('oow') else ''} {rec['model']} "
             f"N={rec['norb']}" + (f" pools={rec.get('pools', 1)}" if part == 3 else ""))
    params = {k: rec.get(k) for k in ("engine", "model", "size", "norb", "nnz", "nk", "oow",
                                      "pools", "nprocs", "nev", "tol", "target")}
    derived = {k: rec[k] for k in ("eps_its", "cg_its", "rss_peak", "max_energy_diff_meV")
               if k in rec}
    derived.update(cpu_per_k_s=rec["cpu"], wall_per_k_s=rec["wall"])
    return case_record(label, {**params, "part": part}, rec["walls"], max(rec["rss_peak"]),
                       **derived)


if __name__ == "__main__":
    main()
