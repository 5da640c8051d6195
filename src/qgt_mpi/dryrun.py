"""``qgt-mpi dry-run``: what a run would cost on N ranks, from a short timed sample.

Nothing is written. The decomposition is the real one (blocks dealt round-robin), the memory
estimate is qgt_mpi.memory's (base footprint, one block's work arrays, the bin moments,
its k-resolved fields, the sweep arrays), and the time estimate scales a timed sample of
k-points and of one sweep-point evaluation.
"""

from __future__ import annotations

import math
import time

from mpi4py import MPI

from qgt_mpi.configure import make_job, model_from_config, solver_from_config, window_terms
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.kpass import _block
from qgt_mpi.memory import rss_mib, run_estimate
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.solvers import is_windowed

_SAMPLE = 256  # k-points in the timed sample
_SAMPLE_WINDOW = 2  # k-points in the timed sample of a windowed (SLEPc) solver


def plan(comm: MPI.Comm, config: RunConfig, nprocs: int, pools: int = 1) -> str:
    """Human report of the decomposition, memory and cost of ``config`` on ``nprocs`` ranks.

    Collective over ``comm`` (normally run on one process); raises InputError for an
    impossible layout.
    """
    with collective(comm):
        if nprocs < 1:
            raise InputError("--np", nprocs, "must be >= 1")
        if pools < 1 or nprocs % pools:
            raise InputError("--pools", pools, f"must be >= 1 and divide --np {nprocs}")
        model = model_from_config(config)
        solver = solver_from_config(config, model, MPI.COMM_SELF)
        delta = delta_for_bands(config.sweep, solver.bands(model))
        window = window_terms(config, solver, delta)
    base = rss_mib()  # before the timed sample allocates anything
    s = config.sweep
    job = make_job(MPI.COMM_SELF, model, config.kgrid, s.temperature, s.mu, delta,
                   config.run.chunk, False, solver, window)
    per_k, per_point = _timed_sample(job, s, window)
    n_pools = pools if is_windowed(solver) else nprocs  # blocks go to pools
    blocks_max = math.ceil(job.n_blocks / n_pools)
    k_max = min(job.nk, blocks_max * job.chunk)
    n_points = len(delta) * s.temperature.size
    kpass = per_k * k_max
    sweep = per_point * math.ceil(n_points / nprocs)
    mem = run_estimate(job, nprocs, config.output.kresolved, base)
    lines = [
        f"dry run of {config.source} on {nprocs} rank(s) in {pools} pool(s) "
        f"({nprocs // pools} rank(s) per pool)",
        f"  model        {model.describe().get('kind', '?')}, {model.norb} orbitals, "
        f"{model.nbands} bands",
        _solver_line(solver, config, pools, nprocs),
        f"  k-grid       {job.nk} k-points in {job.n_blocks} blocks of {job.chunk}; "
        f"<= {blocks_max} blocks = {k_max} k-points per rank",
        f"  sweep        {s.mu.size} mu x {len(delta)} delta x {s.temperature.size} T; "
        f"{n_points} (delta, T) points shared over ranks",
        f"  memory       ~{mem['total']:.0f} MiB per rank (estimate: "
        + ", ".join(f"{k} {v:.0f}" for k, v in mem.items() if k != "total") + ")",
        f"  sample       {per_k * 1e6:.1f} us per k-point, {per_point * 1e3:.2f} ms per "
        "(delta, T) point on this machine",
        f"  estimate     k-pass {kpass:.1f} s + sweep {sweep:.1f} s = {kpass + sweep:.1f} s "
        f"per run ({(kpass + sweep) * nprocs / 3600:.3g} core-hours)",
        "  output       none written (dry run)",
    ]
    if job.n_blocks < nprocs:
        lines.append(f"  warning      only {job.n_blocks} blocks for {nprocs} ranks: "
                     f"{nprocs - job.n_blocks} rank(s) idle in the k-pass; lower [run] chunk")
    return "\n".join(lines)


def _solver_line(solver, config, pools: int, nprocs: int) -> str:
    """One report line on the eigensolver and what pools mean for it."""
    if not is_windowed(solver):
        return ("  solver       dense (batched LAPACK eigh, all bands; pools only matter for "
                "distributed solvers)")
    sv = config.solver
    return (f"  solver       slepc window of {sv.nev} bands nearest {sv.target:g} meV, "
            f"{pools} pool(s) of {nprocs // pools} rank(s); the sample ran on one rank (a pool "
            "of p ranks divides the time per k-point by at most p)")


def _timed_sample(job, sweep, window) -> tuple[float, float]:
    """Seconds per k-point (one sample block) and per sweep point evaluation."""
    n = min(_SAMPLE_WINDOW if is_windowed(job.solver) else _SAMPLE, job.nk)
    sample = make_job(MPI.COMM_SELF, job.model, job.grid, sweep.temperature, sweep.mu,
                      job.sums.delta, n, False, job.solver, window)
    t0 = time.perf_counter()
    _block(sample, 0, Timers())
    per_k = (time.perf_counter() - t0) / n
    reduced = sample.sums.moments.reduce(MPI.COMM_SELF)
    t0 = time.perf_counter()
    sample.sums._point(reduced, 0, 0)
    return per_k, time.perf_counter() - t0
