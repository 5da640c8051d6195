"""Large Wannier90 models: file reading and k-points per second for a 100-orbital model.

Builds a random Hermitian model (``--norb`` orbitals at random centres of a triangular
lattice, every orbital pair hopping to the cells |R1|, |R2| <= ``--reach``: norb² (2 reach+1)²
hoppings, 90 000 for the defaults), writes it as ``_hr.dat`` + ``_centres.xyz``
(models/w90write.py) and reports

- the time to read and check the files (``read_wannier90``: parse, degeneracy weights,
  Hermiticity, 2D slice) and the bytes of the hopping table;
- H(k) and ∂H/∂k: k-points per second for one batch (one matrix product phases × hoppings);
- the whole pipeline through ``qgt_mpi.compute`` (solve, geometry, transport sums, one sweep
  point): k-points per second on one process.

Why: Wannier90 models of real materials have ~100 orbitals and 10⁵ hoppings; the reader and
H(k) must not be what limits such a run (docs/performance.md §6).

Suite presets (bench/run.py): ``quick`` and ``full`` are the same (≈ 6 s): 100 orbitals
(90 000 hoppings), ``compute()`` on 8 × 8; 3 repetitions of each timing (the file read and
``compute()`` 2).

Usage::

    .venv/bin/python bench/bench_wannier.py [--norb 100] [--reach 1] [--nk 512] [--grid 8]
                                            [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np
from _common import add_suite_options, case_record, format_table, write_record
from mpi4py import MPI

import qgt_mpi as q
from qgt_mpi.models import TightBinding, read_wannier90
from qgt_mpi.models.w90write import embed, hr_text, xyz_text


def random_model(norb: int, reach: int, seed: int = 7) -> TightBinding:
    """Random Hermitian model: t_ab(R) ~ e^{-|d|} (complex), full list with partners."""
    rng = np.random.default_rng(seed)
    lattice = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    tau = rng.random((norb, 2)) @ lattice
    cells = np.array([(i, j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)])
    R = np.repeat(cells, norb * norb, axis=0)
    a = np.tile(np.repeat(np.arange(norb), norb), len(cells))
    b = np.tile(np.tile(np.arange(norb), norb), len(cells))
    dist = np.linalg.norm(R @ lattice + tau[b] - tau[a], axis=1)
    t = np.exp(-dist) * (rng.normal(size=len(R)) + 1j * rng.normal(size=len(R)))
    key = {(tuple(r), i, j): n for n, (r, i, j) in enumerate(zip(map(tuple, R), a, b,
                                                                strict=True))}
    partner = np.array([key[((-r[0], -r[1]), j, i)] for r, i, j in zip(R, a, b, strict=True)])
    t = 0.5 * (t + t[partner].conj())  # exactly Hermitian
    return TightBinding(lattice, tau, R, a, b, 50.0 * t)


def timed(func, repeat: int = 3) -> list[float]:
    """Wall times of ``repeat`` calls of ``func`` (s)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return times


SUITE = {"quick": {"norb": 100, "grid": 8, "repeat": 3, "repeat_slow": 2},
         "full": {"norb": 100, "grid": 8, "repeat": 3, "repeat_slow": 2}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--norb", type=int, default=100)
    p.add_argument("--reach", type=int, default=1)
    p.add_argument("--nk", type=int, default=512, help="k-points in the H(k) batch")
    p.add_argument("--grid", type=int, default=8, help="N for the N x N compute() grid")
    p.add_argument("--repeat", type=int, default=3, help="repetitions of the fast timings")
    p.add_argument("--repeat-slow", type=int, default=1,
                   help="repetitions of the file read and of compute()")
    add_suite_options(p)
    args = p.parse_args()
    for key, value in SUITE.get(args.suite, {}).items():
        setattr(args, key, value)
    model = random_model(args.norb, args.reach)
    lat, centres, R3 = embed(model, scale=3.0)
    with tempfile.TemporaryDirectory() as tmp:
        hr, xyz = os.path.join(tmp, "big_hr.dat"), os.path.join(tmp, "big_centres.xyz")
        with open(hr, "w") as fh:
            fh.write(hr_text(model, R3))
        with open(xyz, "w") as fh:
            fh.write(xyz_text(centres))
        size = os.path.getsize(hr)
        reads = []
        t_read = timed(lambda: reads.append(read_wannier90(hr=hr, centres=xyz, lattice=lat)),
                       args.repeat_slow)
        read = reads[-1]
    k = np.random.default_rng(1).uniform(-6, 6, (args.nk, 2))
    t_h = timed(lambda: read.hamiltonian(k, derivatives=False), args.repeat)
    t_dh = timed(lambda: read.hamiltonian(k, derivatives=True), args.repeat)
    n = args.grid
    t_c = timed(lambda: q.compute(read, (n, n), [1.0], [0.0], [1.0], comm=MPI.COMM_SELF),
                args.repeat_slow)
    h_rate, dh_rate, c_rate = args.nk / min(t_h), args.nk / min(t_dh), n * n / min(t_c)
    table_mib = sum(getattr(read, f).nbytes for f in ("R", "a", "b", "t")) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = {"norb": read.norb, "hoppings": int(read.t.size), "reach": args.reach}
    records = [
        case_record("read + check", {**params, "hr_mib": size / 2**20}, t_read,
                    table_mib=table_mib),
        case_record("H(k)", {**params, "batch": args.nk}, t_h, kpts_per_s=h_rate),
        case_record("H(k) + dH/dk", {**params, "batch": args.nk}, t_dh, kpts_per_s=dh_rate),
        case_record("compute()", {**params, "grid": n, "processes": 1}, t_c, peak,
                    kpts_per_s=c_rate),
    ]
    t_read = min(t_read)
    rows = [
        ("orbitals, hoppings", f"{read.norb}, {read.t.size}"),
        ("hr.dat size [MiB]", f"{size / 2**20:.1f}"),
        ("read + check [s]", f"{t_read:.2f}"),
        ("hopping table [MiB]", f"{table_mib:.1f}"),
        (f"H(k) [k-points/s], batch {args.nk}", f"{h_rate:.0f}"),
        ("H(k) + dH/dk [k-points/s]", f"{dh_rate:.0f}"),
        (f"compute() [k-points/s], {n}x{n}, 1 process", f"{c_rate:.1f}"),
    ]
    print(format_table(["quantity", "value"], rows))
    print("uptime:", os.popen("uptime").read().strip())
    write_record(args.json, "wannier", args.suite,
                 {**params, "repeat": args.repeat, "repeat_slow": args.repeat_slow,
                  "peak_mib_process": peak}, records)


if __name__ == "__main__":
    main()
