"""Issue 9 benchmark: transport at materials scale (eV bands, many bands, huge sweeps).

Cases (each a whole ``mpirun -n NP`` process; printed: wall time, reduce+evaluate time,
energy cells, peak RSS of the largest rank):

Wall times depend on the machine's load (printed); the CPU seconds of all ranks (user +
system, from the child rusage) are the load-independent figure.

1. ``ev``: Haldane t1 = 2700 meV, t2 = 0.1 t1, 200² grid, 281 μ spanning the bands,
   T = 1 K, δ = 0.01 meV, and the same deck with t1 = 1 meV (``qgt-mpi run``).
2. ``bands``: random Wannier-like models with 16/32/64 bands (:func:`random_model`),
   100² grid, 281 μ × 50 T, δ = 1 meV, through ``driver.compute`` (no deck kind exists
   for them); this script re-launches itself under mpirun with ``--inner``.
3. ``sweep``: flattened Haldane, 200² grid, 10⁴ T × 10³ μ (``qgt-mpi run``;
   ``--n-temperature`` scales the T axis down).
4. ``peer``: the qgt_mpi side of the WannierBerri comparison (docs/performance.md §3).

Usage::

    .venv/bin/python bench/bench_scale.py [--np 2] [--cases ev bands sweep]
"""

from __future__ import annotations

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
from _common import MODELS, format_table, mpi_env, read_timing, run_qgt, write_deck

HALDANE_EV = {"kind": "haldane", "t1": 2700.0, "t2": 270.0, "mass": 0.0, "phi": 1.5707963}
HALDANE_MEV = {"kind": "haldane", "t1": 1.0, "t2": 0.1, "mass": 0.0, "phi": 1.5707963}


def random_model(norb: int, seed: int = 0):
    """Random 'Wannier-like' model: norb orbitals, hoppings to R ∈ {0, ±a1, ±a2, ±(a1−a2)}.

    On-site energies spread over ±1.5 eV, hoppings ~ 150 meV / R-shell: bands of a few
    hundred meV that overlap and cross (a dense multi-band spectrum like a Wannier model).
    """
    from qgt_mpi.models import TightBinding

    rng = np.random.default_rng(seed)
    lattice = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    pos = rng.uniform(0, 1, (norb, 2)) @ lattice
    shells = [(1, 0), (0, 1), (1, -1)]
    rows = []
    onsite = rng.uniform(-1500, 1500, norb)
    h0 = 60 * (rng.normal(size=(norb, norb)) + 1j * rng.normal(size=(norb, norb)))
    h0 = (h0 + h0.conj().T) / 2 + np.diag(onsite)
    rows.append(((0, 0), h0))
    for r in shells:
        hr = 150 / np.sqrt(norb) * (rng.normal(size=(norb, norb))
                                    + 1j * rng.normal(size=(norb, norb)))
        rows += [(r, hr), ((-r[0], -r[1]), hr.conj().T)]
    a_idx, b_idx = np.meshgrid(np.arange(norb), np.arange(norb), indexing="ij")
    R = np.concatenate([np.tile(r, (norb * norb, 1)) for r, _ in rows])
    t = np.concatenate([h.ravel() for _, h in rows])
    a = np.tile(a_idx.ravel(), len(rows))
    b = np.tile(b_idx.ravel(), len(rows))
    return TightBinding(lattice, pos, R, a, b, t, {"kind": f"random{norb}"})


def _inner(norb: int, size: int) -> None:
    """One ``bands`` case inside mpirun: driver.compute, JSON line from rank 0."""
    from mpi4py import MPI

    from qgt_mpi.driver import compute

    comm = MPI.COMM_WORLD
    model = random_model(norb)
    temps = np.geomspace(1.0, 300.0, 50)
    mu = np.linspace(-1500.0, 1500.0, 281)
    t0 = time.perf_counter()
    chunk = min(4096, max(256, 2**21 // norb**2))  # k-pass work arrays ~ chunk × nb²
    job, _, _ = compute(comm, model, (size, size), temps, mu, np.array([[1.0] * norb]),
                        chunk=chunk)
    wall = time.perf_counter() - t0
    peak = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({"wall": wall, "peak": peak, "cells": job.sums.n_cells,
                          "evaluate": job.sums.evaluate_seconds}))


def _cpu() -> float:
    """CPU seconds (user + system) of finished child processes and their descendants."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _bands_row(norb: int, size: int, nprocs: int) -> list[str]:
    cmd = ["mpirun", "-n", str(nprocs), sys.executable, __file__, "--inner", str(norb),
           str(size)]
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, check=False)
    total, cpu = time.perf_counter() - t0, _cpu() - c0
    if proc.returncode:
        return [f"random{norb}", str(size), "281mu x 50T", "FAILED", proc.stderr[-200:], "",
                "", ""]
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    return [f"random{norb}", str(size), "281mu x 50T", f"{rec['cells']}",
            f"{rec['evaluate']:.2f}", f"{total:.1f}", f"{cpu:.1f}", f"{rec['peak']:.0f}"]


def _deck_row(tmp: Path, name: str, model: dict, size: int, sweep: dict, label: str,
              nprocs: int) -> list[str]:
    deck, out = write_deck(tmp, name, model=model, size=size, sweep=sweep)
    c0 = _cpu()
    rec = run_qgt(deck, out, nprocs)
    cpu = _cpu() - c0
    if rec.returncode:
        return [name, str(size), label, "FAILED", rec.stderr[-200:], "", "", ""]
    import h5py

    with h5py.File(out, "r") as f:
        cells = int(f["transport"].attrs.get("cells", -1))
    evaluate = float(read_timing(out)["reduce+evaluate"][2])
    return [name, str(size), label, str(cells), f"{evaluate:.2f}", f"{rec.wall:.1f}",
            f"{cpu:.1f}", f"{rec.peak_kb / 1024:.0f}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--np", type=int, default=2)
    p.add_argument("--cases", nargs="+", default=["ev", "bands", "sweep", "peer"])
    p.add_argument("--n-temperature", type=int, default=10_000)
    p.add_argument("--inner", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        _inner(*args.inner)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "ev" in args.cases:
            for name, model in (("haldane_t1=2700", HALDANE_EV), ("haldane_t1=1", HALDANE_MEV)):
                t1 = model["t1"]
                sweep = {"temperature": [1.0], "delta": [0.01],
                         "mu": {"start": -3.1 * t1, "stop": 3.1 * t1, "num": 281}}
                rows.append(_deck_row(tmp, name, model, 200, sweep, "281mu x 1T", args.np))
        if "bands" in args.cases:
            rows += [_bands_row(n, 100, args.np) for n in (16, 32, 64)]
        if "peer" in args.cases:  # qgt_mpi side of the WannierBerri comparison (§3)
            sweep = {"temperature": [10.0], "delta": [0.05],
                     "mu": {"start": -4.0, "stop": 4.0, "num": 281}}
            rows.append(_deck_row(tmp, "peer_dispersive", MODELS["dispersive"], 400, sweep,
                                  "281mu x 1T", args.np))
        if "sweep" in args.cases:
            nt = args.n_temperature
            sweep = {"temperature": {"start": 0.1, "stop": 30.0, "num": nt},
                     "mu": {"start": -0.5, "stop": 0.5, "num": 1000}, "delta": [0.01]}
            rows.append(_deck_row(tmp, "flat", MODELS["flat"], 200, sweep,
                                  f"1000mu x {nt}T", args.np))
    print(f"load average before: {os.getloadavg()[0]:.1f} (shared machine)")
    print(format_table(["case", "grid", "sweep", "cells", "eval [s]", "wall [s]",
                        "cpu [s]", "peak MiB/rank"], rows))


if __name__ == "__main__":
    main()
