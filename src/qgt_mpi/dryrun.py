"""``qgt-mpi dry-run``: what a run would cost on N ranks, from a short timed sample.

Nothing is written. The decomposition is the real one (blocks dealt round-robin), the memory
estimate adds up the arrays a rank holds (one block's work arrays, the energy-bin moments,
its k-resolved fields), and the time estimate scales a timed sample of k-points and of one
sweep-point evaluation.
"""

from __future__ import annotations

import math
import resource
import time

import numpy as np
from mpi4py import MPI

from qgt_mpi.driver import make_job, model_from_config, solver_from_config, window_terms
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.kpass import _block
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.solvers import is_windowed
from qgt_mpi.transport.binning import N_SLOTS, NCOMP

_SAMPLE = 256  # k-points in the timed sample
_SAMPLE_WINDOW = 2  # k-points in the timed sample of a windowed (SLEPc) solver
_BASE_MIB = 90.0  # interpreter, numpy, mpi4py, h5py


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
    s = config.sweep
    job = make_job(MPI.COMM_SELF, model, config.kgrid, s.temperature, s.mu, delta,
                   config.run.chunk, False, solver, window)
    rss0 = _rss_mib()
    per_k, per_point, sample = _timed_sample(job, s)
    windowed = is_windowed(solver)
    n_points = len(delta) * s.temperature.size
    sweep = per_point * math.ceil(n_points / nprocs)
    n_pools = pools if windowed else nprocs
    blocks_max = math.ceil(job.n_blocks / n_pools)
    k_max = min(job.nk, blocks_max * job.chunk)
    kpass = per_k * k_max
    mem = _memory_mib(job, config, k_max, len(delta), sample)
    if windowed:  # factorisation memory is measured on the sample, not modelled
        mem += max(_rss_mib() - rss0, 0.0)
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
        f"  memory       ~{mem:.0f} MiB per rank (estimate)",
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


def _rss_mib() -> float:
    """Peak resident set size of this process so far [MiB]."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed_sample(job, sweep):
    """Seconds per k-point (one sample block), per sweep point evaluation, the sample job."""
    n = min(_SAMPLE if not is_windowed(job.solver) else _SAMPLE_WINDOW, job.nk)
    sample = make_job(MPI.COMM_SELF, job.model, job.grid, sweep.temperature, sweep.mu,
                      job.sums.delta, n, False, job.solver,
                      {"delta_out": job.sums.delta_out, "chern_below": job.sums.chern_below}
                      if job.sums.delta_out is not None else None)
    t0 = time.perf_counter()
    _block(sample, 0, Timers())
    per_k = (time.perf_counter() - t0) / n
    reduced = sample.sums.moments.reduce(MPI.COMM_SELF)
    t0 = time.perf_counter()
    sample.sums._point(reduced, 0, 0)
    return per_k, time.perf_counter() - t0, sample


def _memory_mib(job, config, k_max: int, n_delta: int, sample) -> float:
    """Bytes a rank holds at its peak, in MiB (estimate)."""
    norb, nb, c = job.model.norb, job.geometry.nb, job.chunk
    dense = 3 * norb * norb if not is_windowed(job.solver) else 0  # H, dH (dense solver)
    work = c * (dense + 5 * norb * nb + 8 * nb * nb) * 16  # vectors, corners, velocities
    work += c * nb * NCOMP * (2 + N_SLOTS) * 16 * 2  # weights and Taylor contributions
    bins = _bins_estimate(sample) * nb * n_delta * NCOMP * N_SLOTS * 16 * 2  # store + reduce
    kfields = k_max * (4 + 5 * nb) * 8 if config.output.kresolved else 0
    return _BASE_MIB + (work + bins + kfields) / 2**20


def _bins_estimate(sample) -> int:
    """Energy bins per band from the timed sample's band extent and the bin width."""
    return int(max(np.max([d.shape[1] for d in sample.sums.moments.data]), 1))
