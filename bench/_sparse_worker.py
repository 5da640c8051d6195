"""One measurement of bench/bench_sparse.py, run in a fresh process (``python -m`` style).

Usage (internal; bench_sparse.py builds these command lines)::

    python bench/_sparse_worker.py '{"engine": "slepc", "model": "haldane", "size": 20, ...}'
    mpirun -n 2 python bench/_sparse_worker.py '{"engine": "slepc", "pools": 2, ...}'

Engines (per k-point cost, best of ``repeat`` repetitions):

* ``dense``: ``DenseSolver.solve`` on a batch of k-points (dense H(k), ∂H, batched
  ``numpy.linalg.eigh`` of all bands, velocities U†∂HU), as the k-pass calls it;
* ``slepc``: ``SlepcSolver.solve`` (assembly, MUMPS LU of H − σ, Krylov–Schur, window
  velocities, and with ``oow`` the out-of-window Sternheimer geometry, solvers/sternheimer.py);
  under ``mpirun`` the ranks are split into ``pools`` (parallel/pools.py) and each pool solves
  its own k-points, as in the k-pass;
* ``scipy``: SuperLU (``splu``, default COLAMD ordering) of H − σ and ARPACK ``eigsh`` with
  ``sigma = σ`` and that factorisation as OPinv, ``k = nev`` eigenpairs, ``tol`` as SLEPc's.

Prints one JSON line (rank 0): seconds per k-point (wall and CPU of this process, best
repetition), Krylov and CG iterations per k-point, peak resident set size (``ru_maxrss``) and
the resident set size before the model was built, per rank, and the window energies of the
first k-point (for cross-checks).
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
from _sparse_models import bilayer_supercell, haldane_supercell
from mpi4py import MPI

import qgt_mpi  # noqa: F401  (points petsc4py at the complex PETSc build)
from qgt_mpi.parallel.pools import make_pools


def _rss_mib() -> float:
    """Current resident set size (MiB)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def build(spec: dict):
    """The benchmark model named by ``spec`` (``model`` = "haldane" or "bilayer")."""
    if spec["model"] == "haldane":
        return haldane_supercell(spec["size"])
    return bilayer_supercell(tuple(spec["size"]))


def kpoints(model, n: int) -> np.ndarray:
    """``n`` generic Cartesian k-points (seeded, away from symmetry points); (n, 2)."""
    frac = np.random.default_rng(7).uniform(0.05, 0.45, (n, 2))
    return frac @ model.reciprocal


def scipy_window(model, k: np.ndarray, nev: int, target: float, tol: float) -> np.ndarray:
    """SuperLU + ARPACK shift-invert: the ``nev`` eigenvalues nearest ``target`` at one k."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    h = model.csr(k)[0]
    lu = sla.splu((h - target * sp.identity(model.norb, format="csr")).tocsc())
    op = sla.LinearOperator(h.shape, matvec=lu.solve, dtype=complex)
    values = sla.eigsh(h, k=nev, sigma=target, OPinv=op, tol=tol, return_eigenvectors=False)
    return np.sort(values.real)


def make_call(spec: dict, model, comm: MPI.Comm):
    """(call(k) -> window energies, iteration counter or None) for ``spec['engine']``."""
    engine = spec["engine"]
    if engine == "dense":
        from qgt_mpi.solvers.dense import DenseSolver

        solver = DenseSolver()
        return (lambda k: solver.solve(model, k).energies), None
    if engine == "scipy":
        return (lambda k: np.stack([scipy_window(model, kk, spec["nev"], spec["target"],
                                                 spec["tol"]) for kk in k])), None
    from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

    opts = WindowOptions(nev=spec["nev"], target=spec["target"], tol=spec["tol"],
                         out_of_window=spec["oow"])
    solver = SlepcSolver(opts, comm)
    return (lambda k: solver.solve(model, k).energies), solver.iterations


def measure(spec: dict) -> dict | None:
    """Run one case on ``MPI.COMM_WORLD``; the record on rank 0, None elsewhere. Collective."""
    world = MPI.COMM_WORLD
    base = _rss_mib()
    model = build(spec)
    layout = make_pools(world, spec.get("pools", 1))
    call, counter = make_call(spec, model, layout.pool)
    ks = kpoints(model, spec["nk"])
    mine = ks[layout.index :: layout.n_pools]
    walls, cpus, energies = [], [], None
    for _ in range(spec["repeat"]):
        world.Barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        out = call(mine)
        world.Barrier()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        energies = out[0] if energies is None else energies
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mem = world.gather((base, peak), root=0)
    per_k = 1.0 / spec["nk"]
    record = {**spec, "norb": model.norb, "nnz": model.nnz,
              "wall": min(walls) * per_k, "cpu": min(cpus) * per_k * layout.n_pools,
              "walls": [w * per_k for w in walls], "rss_base": [m[0] for m in mem or []],
              "rss_peak": [m[1] for m in mem or []], "energies": np.asarray(energies).tolist()}
    if counter is not None:
        done = max(counter["k"], 1)
        record.update(eps_its=counter["eps"] / done, cg_its=counter["sternheimer"] / done)
    return record if world.rank == 0 else None


def main() -> None:
    """Measure the case given as a JSON argument and print its record."""
    record = measure(json.loads(sys.argv[1]))
    if record is not None:
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
