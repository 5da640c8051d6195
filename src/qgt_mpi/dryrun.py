"""``qgt-mpi dry-run``: what a run would cost on N ranks, from a short timed sample.

Nothing is written. The decomposition is the real one (blocks dealt round-robin), the memory
estimate adds up the arrays a rank holds (one block's work arrays, the energy-bin moments,
its k-resolved fields), and the time estimate scales a timed sample of k-points and of one
sweep-point evaluation.
"""

from __future__ import annotations

import math
import time

from mpi4py import MPI

from qgt_mpi.driver import make_job, model_from_config
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.kpass import _block
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.transport.binning import N_SLOTS, NCOMP

_SAMPLE = 256  # k-points in the timed sample
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
        delta = delta_for_bands(config.sweep, model.nbands)
    s = config.sweep
    job = make_job(MPI.COMM_SELF, model, config.kgrid, s.temperature, s.mu, delta,
                   config.run.chunk, False)
    per_k, per_point = _timed_sample(job, s)
    blocks_max = math.ceil(job.n_blocks / nprocs)
    k_max = min(job.nk, blocks_max * job.chunk)
    n_points = len(delta) * s.temperature.size
    kpass = per_k * k_max
    sweep = per_point * math.ceil(n_points / nprocs)
    mem = _memory_mib(job, config, k_max, len(delta))
    lines = [
        f"dry run of {config.source} on {nprocs} rank(s) in {pools} pool(s) "
        f"({nprocs // pools} rank(s) per pool)",
        f"  model        {model.describe().get('kind', '?')}, {model.norb} orbitals, "
        f"{model.nbands} bands",
        "  solver       dense (batched LAPACK eigh, all bands; pools only matter for "
        "distributed solvers)",
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


def _timed_sample(job, sweep) -> tuple[float, float]:
    """Seconds per k-point (one sample block) and per sweep point evaluation."""
    n = min(_SAMPLE, job.nk)
    sample = make_job(MPI.COMM_SELF, job.model, job.grid, sweep.temperature, sweep.mu,
                      job.sums.delta, n, False)
    t0 = time.perf_counter()
    _block(sample, 0, Timers())
    per_k = (time.perf_counter() - t0) / n
    tree = sample.sums.tree(sample.sums.moments.reduce(MPI.COMM_SELF))
    t0 = time.perf_counter()
    sample.sums._point(tree, 0, 0)
    return per_k, time.perf_counter() - t0


def _memory_mib(job, config, k_max: int, n_delta: int) -> float:
    """Bytes a rank holds at its peak, in MiB (estimate)."""
    norb, nb, c = job.model.norb, job.model.nbands, job.chunk
    work = c * (3 * norb * norb + 5 * norb * nb + 8 * nb * nb) * 16  # H, dH, vectors, corners
    work += c * nb * NCOMP * (2 + N_SLOTS) * 16 * 2  # weights and Taylor contributions
    nch = job.sums.moments.n_channels
    bins = _bins_estimate(job) * nch * NCOMP * N_SLOTS * 16 * 4  # store, union, sum, tree
    kfields = k_max * (4 + 5 * nb) * 8 if config.output.kresolved else 0
    return _BASE_MIB + (work + bins + kfields) / 2**20


def _bins_estimate(job) -> int:
    """Occupied energy cells from a sample block (a lower bound for sparse bands)."""
    store = job.sums.moments
    if store.keys.size == 0:
        sample = make_job(MPI.COMM_SELF, job.model, job.grid, job.sums.temperature,
                          job.sums.mu, job.sums.delta, min(_SAMPLE, job.nk), False)
        _block(sample, 0, Timers())
        store = sample.sums.moments
    return int(max(store.keys.size, 1))
