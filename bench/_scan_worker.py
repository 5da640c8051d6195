"""Worker of bench/bench_scan.py, run under mpirun: the tMoTe₂ deck's run over many angles
as one ``qgt_mpi.scan`` (src/qgt_mpi/param_scan.py), a result file per angle.

Arguments: output directory, grid size N, then the twist angles (degrees). Rank 0 prints the
wall time from its import to the end, the summed per-angle compute times of each rank and
the top two bands' Chern numbers of every angle (a check that the runs did the work).
"""

# ruff: noqa: E402  (the thread settings must precede the numpy/petsc4py imports)
from __future__ import annotations

import time

T0 = time.perf_counter()

from qgt_mpi._env import pin_threads  # one BLAS thread per rank, as qgt-mpi run

pin_threads()

import sys

import numpy as np
from mpi4py import MPI

import qgt_mpi as q


def main() -> None:
    out, n, thetas = sys.argv[1], int(sys.argv[2]), [float(t) for t in sys.argv[3:]]
    t_import = time.perf_counter() - T0
    res = q.scan("tmd_continuum", "theta", thetas,
                 model={"params": "wang2024", "shells": 3, "valley": 1},
                 kgrid=(n, n), temperature=[2.0, 10.0], delta=[0.2], degeneracy=1,
                 filling={"start": 0.05, "stop": 0.95, "num": 10}, filling_bands=[73],
                 save=f"{out}/scan_{{index:02d}}.h5")
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        per_rank = [float(res.seconds[r::comm.size].sum()) for r in range(comm.size)]
        chern = np.rint(res.stack("chern")[:, -2:]).astype(int)
        print(f"ranks {comm.size}  angles {len(res)}  import {t_import:.2f} s  "
              f"scan wall {time.perf_counter() - T0 - t_import:.2f} s  per-rank compute "
              + ", ".join(f"{s:.1f}" for s in per_rank) + " s")
        print("theta: C(second), C(top): " + "; ".join(
            f"{t:.3f}: {c[0]:+d} {c[1]:+d}" for t, c in zip(thetas, chern, strict=True)))


if __name__ == "__main__":
    main()
