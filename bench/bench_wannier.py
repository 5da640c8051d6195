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

Usage::

    .venv/bin/python bench/bench_wannier.py [--norb 100] [--reach 1] [--nk 512] [--grid 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from _common import format_table
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


def rate(func, n: int, repeat: int = 3) -> float:
    """Best items per second over ``repeat`` calls of ``func`` (which handles n items)."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--norb", type=int, default=100)
    p.add_argument("--reach", type=int, default=1)
    p.add_argument("--nk", type=int, default=512, help="k-points in the H(k) batch")
    p.add_argument("--grid", type=int, default=8, help="N for the N x N compute() grid")
    args = p.parse_args()
    model = random_model(args.norb, args.reach)
    lat, centres, R3 = embed(model, scale=3.0)
    with tempfile.TemporaryDirectory() as tmp:
        hr, xyz = os.path.join(tmp, "big_hr.dat"), os.path.join(tmp, "big_centres.xyz")
        with open(hr, "w") as fh:
            fh.write(hr_text(model, R3))
        with open(xyz, "w") as fh:
            fh.write(xyz_text(centres))
        size = os.path.getsize(hr)
        t0 = time.perf_counter()
        read = read_wannier90(hr=hr, centres=xyz, lattice=lat)
        t_read = time.perf_counter() - t0
    k = np.random.default_rng(1).uniform(-6, 6, (args.nk, 2))
    h_rate = rate(lambda: read.hamiltonian(k, derivatives=False), args.nk)
    dh_rate = rate(lambda: read.hamiltonian(k, derivatives=True), args.nk)
    n = args.grid
    c_rate = rate(lambda: q.compute(read, (n, n), [1.0], [0.0], [1.0], comm=MPI.COMM_SELF),
                  n * n, repeat=1)
    table_mib = sum(getattr(read, f).nbytes for f in ("R", "a", "b", "t")) / 2**20
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


if __name__ == "__main__":
    main()
