"""Whole runs with the symmetry accelerator against full solves (theory §5.11).

The issue-24 workload: relaxed atomistic TBG (``--m``, default 31, sublattice mass 20 meV),
the four flat bands (SLEPc nev = 4 at charge neutrality, velocities and out-of-window metric),
one transport sweep, k-resolved output. Runs, each as ``mpirun -n RANKS qgt-mpi run --pools
RANKS``:

1. ``accelerate = "symmetry"`` on the fine ``--grid`` (48: the goal is ≤ 10 min on 2 ranks);
2. the plain run (every k solved) on the coarse ``--ref-grid`` (12), whose points are a
   sub-grid of the fine one: per-k energies, metric and curvature compared there;
3. ``accelerate = "symmetry"`` on the coarse grid: σ, S, κ, Chern numbers against run 2.

Prints wall times, the phases of each file's /timing, the accelerator's counts and the
largest differences; ``--json FILE`` writes them. docs/performance.md §8.6 quotes it.

Usage::

    .venv/bin/python bench/bench_symmetry.py --m 31 --grid 48 --ref-grid 12 --ranks 2
    .venv/bin/python bench/bench_symmetry.py --m 10 --grid 24 --ref-grid 6   # minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

DECK = """title = "bench_symmetry: m = {m}, {n} x {n}, accelerate = {acc}"
degeneracy = 2
[model]
kind = "tbg_atomistic"
m = {m}
mass = 20.0
[model.relax]
method = "continuum"
[solver]
kind = "slepc"
nev = 4
target = 0.0
chern_below = 0
accelerate = "{acc}"
[kgrid]
size = [{n}, {n}]
[sweep]
temperature = [1.0, 10.0, 40.0]
mu = {{ start = -20.0, stop = 20.0, num = 41 }}
delta = [0.1]
[output]
file = "{out}"
kresolved = true
"""
TRANSPORT = ("sigma_xx", "sigma_xx_geometric", "sigma_xy", "seebeck", "kappa_xx")


def _run(work: Path, m: int, n: int, acc: str, ranks: int) -> dict:
    name = f"m{m}_{acc}_{n}"
    deck = work / f"{name}.toml"
    out = work / f"{name}.h5"
    deck.write_text(DECK.format(m=m, n=n, acc=acc, out=out))
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}
    cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "qgt_mpi", "run", str(deck),
           "--pools", str(ranks), "--overwrite"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"{name} failed ({proc.returncode}): see {work / name}.log")
    with h5py.File(out, "r") as f:
        phases = [p.decode() if isinstance(p, bytes) else str(p) for p in f["timing/phases"][()]]
        mean = f["timing/seconds"][()][:, 1]
        facts = {k: (v.item() if hasattr(v, "item") else v) for k, v in f["solver"].attrs.items()
                 if str(k).startswith("symmetry")}
    return {"name": name, "wall_s": wall, "load_before": load, "load_after": os.getloadavg()[0],
            "phases_s": {p: float(s) for p, s in zip(phases, mean, strict=True)
                         if p in ("setup", "k-pass", "solve", "geometry", "reduce+evaluate")},
            "symmetry": facts, "file": str(out)}


DEGENERATE_MEV = 1e-6  # bands closer than this at a k-point form one group there


def _grouped(energies: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``field`` (…, nb, …) summed over each k-point's degenerate groups, written on every
    band of the group: per-band curvature and metric are basis dependent inside a degenerate
    group (theory §5.7), their group sums are not."""
    out = np.array(field, dtype=float)
    flat_e = energies.reshape(-1, energies.shape[-1])
    flat_f = out.reshape(flat_e.shape[0], flat_e.shape[1], -1)
    for k in range(flat_e.shape[0]):
        start = 0
        for b in range(1, flat_e.shape[1] + 1):
            if b == flat_e.shape[1] or flat_e[k, b] - flat_e[k, b - 1] > DEGENERATE_MEV:
                flat_f[k, start:b] = flat_f[k, start:b].sum(axis=0)
                start = b
    return flat_f.reshape(out.shape)


def _subgrid(fine: str, coarse: str) -> dict:
    """Largest differences of the k-resolved fields at the coarse grid's points (curvature
    and metric summed over degenerate groups)."""
    with h5py.File(fine, "r") as f, h5py.File(coarse, "r") as c:
        n, nc = f["kgrid/energies"].shape[0], c["kgrid/energies"].shape[0]
        step = n // nc
        pick = (slice(None, None, step), slice(None, None, step))
        e_f, e_c = f["kgrid/energies"][pick], c["kgrid/energies"][()]
        g_f, g_c = (_grouped(e_c, x) for x in (f["kgrid/metric"][pick], c["kgrid/metric"][()]))
        o_f, o_c = (_grouped(e_c, x) for x in (f["kgrid/berry_curvature"][pick],
                                               c["kgrid/berry_curvature"][()]))
        scale = np.nanmax(np.abs(g_c))
        gaps = np.diff(e_c, axis=-1)
        return {"points": int(nc * nc),
                "degenerate_pairs": int(np.sum(gaps <= DEGENERATE_MEV)),
                "max_energy_diff_meV": float(np.nanmax(np.abs(e_f - e_c))),
                "max_metric_diff_rel": float(np.nanmax(np.abs(g_f - g_c)) / scale),
                "max_curvature_diff_rel": float(np.nanmax(np.abs(o_f - o_c)) / scale)}


def _transport(a: str, b: str) -> dict:
    """Largest relative differences of the transport datasets and equal Chern numbers."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        out = {}
        sxx = np.nanmax(np.abs(fa["transport/sigma_xx"][()]))
        for key in TRANSPORT:  # σ parts against σ_xx (their split is basis dependent inside
            x, y = fa[f"transport/{key}"][()], fb[f"transport/{key}"][()]  # degenerate groups)
            scale = sxx if key.startswith("sigma") else np.nanmax(np.abs(x))
            out[key] = float(np.nanmax(np.abs(x - y)) / scale)
        for key in ("chern", "group_chern"):  # NaN: undefined (touching bands), equal too
            if f"geometry/{key}" in fa:
                ca, cb = fa[f"geometry/{key}"][()], fb[f"geometry/{key}"][()]
                out[f"{key}_equal"] = bool(np.array_equal(ca, cb, equal_nan=True))
                out[key] = [float(x) for x in np.ravel(ca)]
        for key in ("metric_integral", "group_metric_integral"):  # NaN where undefined
            if f"geometry/{key}" in fa and np.any(np.isfinite(fa[f"geometry/{key}"][()])):
                g_a, g_b = fa[f"geometry/{key}"][()], fb[f"geometry/{key}"][()]
                out[key] = float(np.nanmax(np.abs(g_a - g_b)) / np.nanmax(np.abs(g_a)))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--m", type=int, default=31)
    ap.add_argument("--grid", type=int, default=48)
    ap.add_argument("--ref-grid", type=int, default=12)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("bench/results/symmetry"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.grid % args.ref_grid:
        raise SystemExit("--grid must be a multiple of --ref-grid (a sub-grid is compared)")
    args.work.mkdir(parents=True, exist_ok=True)
    fine = _run(args.work, args.m, args.grid, "symmetry", args.ranks)
    print(json.dumps(fine, indent=1), flush=True)
    plain = _run(args.work, args.m, args.ref_grid, "none", args.ranks)
    coarse = _run(args.work, args.m, args.ref_grid, "symmetry", args.ranks)
    result = {"m": args.m, "grid": args.grid, "ref_grid": args.ref_grid, "ranks": args.ranks,
              "fine_symmetry": fine, "coarse_plain": plain, "coarse_symmetry": coarse,
              "fine_vs_plain_subgrid": _subgrid(fine["file"], plain["file"]),
              "coarse_symmetry_vs_plain": _transport(plain["file"], coarse["file"])}
    print(json.dumps({k: v for k, v in result.items() if "vs" in k}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
