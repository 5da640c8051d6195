"""``qgt-mpi dry-run``: what a run would cost on N ranks, from a short timed sample.

Nothing is written. The decomposition is the real one (blocks dealt round-robin), the memory
estimate is qgt_mpi.run.memory's (base footprint, one block's work arrays, the expected energy
cells of the full grid, its k-resolved fields, one evaluation unit), and the time estimate
scales a timed sample: seconds per k-point, and seconds per (cell, μ) pair of a timed sweep
evaluation times the expected pairs of the whole sweep for the full grid
(transport/estimate.py). Samples are timed in CPU seconds (an idle-machine estimate).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.run.blocks import default_chunk, idle_warning, imbalance, pool_loads
from qgt_mpi.run.kpass import _block
from qgt_mpi.run.memory import rss_mib, run_estimate
from qgt_mpi.run.setup import make_job, model_from_config, solver_from_config, window_terms
from qgt_mpi.run.sweep import SweepEvaluation
from qgt_mpi.solvers import Eigensolver
from qgt_mpi.transport.estimate import expected_cells, expected_pairs
from qgt_mpi.transport.evaluate import cover_pairs

_SAMPLE_K = 4096  # a dense solver's timed sample: one block of the run's size, at most this
# many k-points (per-k cost grows with the block: pair arrays leave the cache)
_STARTUP_S = 0.2  # s per rank of the launcher, the HDF5 output, the checkpoint at the end of
# the k-pass and MPI_Finalize, beyond this process's own start (interpreter, imports,
# MPI_Init), which is measured; a 24 x 24 one-point 2-band run takes 0.7 s wall in all


def plan(comm: MPI.Comm, config: RunConfig, nprocs: int, pools: int = 1) -> str:
    """Human report of the decomposition, memory and cost of ``config`` on ``nprocs`` ranks.

    Collective over ``comm`` (normally run on one process); raises InputError for an
    impossible layout.
    """
    startup = _process_age() + _STARTUP_S  # interpreter, imports, MPI_Init, deck; the file
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
    bands = None if s.filling is None else list(s.filling_bands)
    n_pools = pools if solver.windowed else nprocs  # blocks go to pools
    nk = int(config.kgrid[0]) * int(config.kgrid[1])
    chunk = config.run.chunk or default_chunk(nk, n_pools, solver.windowed)
    job = make_job(MPI.COMM_SELF, model, config.kgrid, s.temperature, s.mu, delta,
                   chunk, False, solver, window, bands)
    per_k, energies, per_pair, per_point, (t_red, cells) = _timed_sample(job, s, window,
                                                                          bands)
    blocks_max = math.ceil(job.n_blocks / n_pools)
    k_max = max(pool_loads(job.nk, job.chunk, n_pools))
    n_points = len(delta) * s.temperature.size
    kpass = per_k * k_max
    # [solver] valley = true solves every k-point's window once more (results.valley_group):
    # measured 112 s against a 107 s k-pass at m = 31 (docs/validation.md)
    valley = kpass if config.solver.valley else 0.0
    n_first = s.mu.size if s.filling is None else s.filling.size
    extra = max(_total_pairs(job, energies, n_first) - n_points * per_point[1], 0.0)
    full_cells = expected_cells(job.sums.lattice, energies, job.nk)
    reduce = t_red * max(full_cells / cells, 1.0)  # every rank builds the whole tree
    sweep = (per_point[0] * n_points + per_pair * extra) / nprocs + reduce
    mem = run_estimate(job, nprocs, config.output.kresolved, base)
    lines = [
        f"dry run of {config.source} on {nprocs} rank(s) in {pools} pool(s) "
        f"({nprocs // pools} rank(s) per pool)",
        f"  model        {model.describe().get('kind', '?')}, {model.norb} orbitals, "
        f"{model.nbands} bands",
        _solver_line(solver, config, pools, nprocs),
        f"  k-grid       {job.nk} k-points in {job.n_blocks} blocks of {min(job.chunk, job.nk)} "
        f"({'[run] chunk' if config.run.chunk else 'default'}) dealt to {n_pools} "
        f"{'pool(s)' if solver.windowed else 'rank(s)'}; <= {blocks_max} blocks = {k_max} "
        "k-points each",
        f"  balance      k-pass imbalance {imbalance(job.nk, job.chunk, n_pools):.2f} "
        "(the busiest one's k-points / the mean; 1.00 = all equally busy)",
        f"  sweep        {s.mu.size} mu x {len(delta)} delta x {s.temperature.size} T; "
        f"{n_points} (delta, T) points shared over ranks",
        f"  memory       ~{mem['total']:.0f} MiB per rank (estimate: "
        + ", ".join(f"{k} {v:.0f}" for k, v in mem.items() if k != "total") + ")",
        f"  sample       {per_k * 1e6:.1f} us per k-point, {per_pair * 1e6:.2f} us per "
        "(cell, mu) pair of the evaluation (CPU time: idle-machine estimate)",
        f"  estimate     start-up {startup:.1f} s + k-pass {kpass:.1f} s + sweep {sweep:.1f} s "
        f"(reduction {reduce:.1f} s) " + (f"+ valley {valley:.1f} s " if valley else "")
        + f"= {startup + kpass + sweep + valley:.1f} s per run "
        f"({(startup + kpass + sweep + valley) * nprocs / 3600:.3g} core-hours)",
        "  output       none written (dry run)",
    ]
    idle = idle_warning(job.nk, job.chunk, n_pools, config.run.chunk is not None)
    if idle:
        lines.append(f"  warning      {idle}")
    return "\n".join(lines)


def _process_age() -> float:
    """Wall seconds since this process started (Linux /proc; CPU seconds elsewhere)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return time.process_time()


def _solver_line(solver: Eigensolver, config: RunConfig, pools: int, nprocs: int) -> str:
    """One report line on the eigensolver and what pools mean for it."""
    if not solver.windowed:
        return ("  solver       dense (batched LAPACK eigh, all bands; pools only matter for "
                "distributed solvers)")
    sv = config.solver
    return (f"  solver       slepc window of {sv.nev} bands nearest {sv.target:g} meV, "
            f"{pools} pool(s) of {nprocs // pools} rank(s); the sample ran on one rank (a pool "
            "of p ranks divides the time per k-point by at most p)")


def _timed_sample(job, sweep, window, bands) -> tuple:
    """Seconds per k-point, sample energies, seconds per cover pair, (seconds, cover pairs)
    of one (δ, T) point over every μ on the sample's tree, and (seconds, cells) of the
    sample's reduction (cells merged and the tree built).

    The sample is one block of the run's block size (at most _SAMPLE_K k-points; two for a
    windowed solver) on a coarse grid spanning the zone (its energies stand for every
    band). A (δ, T) point of the full grid costs the sample's point (with its point masses
    of flat bands, which do not depend on the grid) plus its extra cover pairs, each at the
    cost per pair of the sample (timed over one μ and over all μ).
    """
    windowed = job.solver.windowed
    want = 2 if windowed else min(job.chunk, _SAMPLE_K, job.nk)
    side = math.ceil(math.sqrt(want))
    n1, n2 = (min(n, side) for n in job.grid)
    n = min(n1 * n2, want)
    sample = make_job(MPI.COMM_SELF, job.model, (n1, n2), sweep.temperature, sweep.mu,
                      job.sums.delta, n, False, job.solver, window, bands)
    t0 = time.process_time()
    _block(sample, 0, Timers())
    per_k = (time.process_time() - t0) / n
    k = kgrid_points(job.model.reciprocal, n1, n2, 0, n)
    energies = job.solver.solve(job.model, k, velocities=False).energies
    t0 = time.process_time()
    reduced = sample.sums.reduce(MPI.COMM_SELF)
    reduce_s = (time.process_time() - t0, max(reduced.n_cells, 1))
    i_d, i_t = len(job.sums.delta) // 2, sweep.temperature.size // 2
    mus = sweep.mu if bands is None else np.linspace(energies.min(), energies.max(), 64)
    fixed = None if bands is None else (sweep.filling, bands)
    cost = [_timed_point(reduced, i_d, i_t, m, fixed) for m in (mus[:1], mus)]
    grown = cost[1][1] - cost[0][1]
    per_pair = max((cost[1][0] - cost[0][0]) / grown, 0.0) if grown > 0 else 0.0
    return per_k, energies, per_pair, cost[1], reduce_s


def _timed_point(reduced, i_d: int, i_t: int, mu: np.ndarray, fixed=None
                 ) -> tuple[float, int]:
    """(CPU seconds, cover pairs) of one evaluation unit (δ, T, all ``mu``) on a sample tree,
    observables and flags included (evaluation.SweepEvaluation); at fixed filling
    (``fixed`` = (fillings, bands)) the unit of all fillings with its μ bisection.

    Occupation channels (one per band kept) cover the whole occupation tree each.
    """
    s = reduced.sums
    unit = SweepEvaluation(s, reduced, 1.0, 1.0, *(fixed or (None, None)))
    t0 = time.process_time()
    unit((i_d, slice(i_t, i_t + 1), slice(0, mu.size if fixed is None else fixed[0].size)))
    elapsed = time.process_time() - t0
    kt = K_B_MEV_PER_K * s.temperature[i_t]
    pairs = sum(r.size for ch in np.flatnonzero(s.chan_choice == i_d)
                for _, r, _ in cover_pairs(reduced.tree, mu, s.chan_delta[ch] + math.pi * kt))
    return elapsed, pairs * (1 + s.occ_bands.size / max(s.chan_delta.size, 1))


def _total_pairs(job, energies: np.ndarray, n_first: int) -> float:
    """Expected cover pairs of the whole sweep for the full grid (transport/estimate.py).

    Per channel at up to 6 temperatures (interpolated between them), times the occupation
    channels' share; a fixed-filling sweep evaluates ~n_first μ per (δ, T) point plus the
    bisection (counted as 40 evaluations of the occupations).
    """
    s = job.sums
    temps = s.temperature
    picks = np.unique(np.linspace(0, temps.size - 1, min(temps.size, 6)).round().astype(int))
    mu = s.mu if not s.lattice.anywhere else np.linspace(energies.min(), energies.max(),
                                                           n_first)
    total = 0.0
    for delta_c in s.chan_delta:
        per_t = [expected_pairs(s.lattice, energies, job.nk, mu,
                                delta_c + math.pi * K_B_MEV_PER_K * temps[t]) for t in picks]
        total += float(np.interp(np.arange(temps.size), picks, per_t).sum())
    occ = s.occ_bands.size / max(s.chan_delta.size, 1)
    return total * (1 + occ * (40 if s.lattice.anywhere else 1))
