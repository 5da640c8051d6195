"""``qgt-mpi dry-run``: what a run would cost on N ranks, from a short timed sample.

Nothing is written. The decomposition is the real one (blocks dealt round-robin), the memory
estimate adds up the arrays a rank holds (one block's work arrays, the expected energy cells
of the full grid (transport/estimate.py), one evaluation chunk, its k-resolved fields), and
the time estimate scales a timed coarse-grid sample: seconds per k-point, and seconds per
(cell, μ) pair of one timed sweep unit times the expected pairs of the whole sweep. Samples
are timed in CPU seconds, so the estimate is that of an idle machine; a shared machine
stretches the wall time by its load.
"""

from __future__ import annotations

import math
import time

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.driver import make_job, model_from_config
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.kpass import _block
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.transport.accumulate import _PAIR_ELEMENTS
from qgt_mpi.transport.binning import N_SLOTS, NCOMP
from qgt_mpi.transport.estimate import expected_cells, expected_pairs
from qgt_mpi.transport.evaluate import _PAIR_CHUNK, cover_pairs

_MPI_STARTUP_S = 0.7  # CPU s/rank of mpirun + MPI_Init + HDF5 output (2-band decks, measured)
_SAMPLE_GRID = 24  # the timed sample is at most a 24 x 24 grid
_BASE_MIB = 80.0  # interpreter, numpy, mpi4py, h5py (measured: 2-band 48² run)


def plan(comm: MPI.Comm, config: RunConfig, nprocs: int, pools: int = 1) -> str:
    """Human report of the decomposition, memory and cost of ``config`` on ``nprocs`` ranks.

    Collective over ``comm`` (normally run on one process); raises InputError for an
    impossible layout.
    """
    # CPU of start-up so far (interpreter, imports, deck) plus mpirun, MPI_Init and the file
    startup = time.process_time() + _MPI_STARTUP_S
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
    per_k, sample, per_pair, per_unit = _timed_sample(job, s)
    blocks_max = math.ceil(job.n_blocks / nprocs)
    k_max = min(job.nk, blocks_max * job.chunk)
    n_points = len(delta) * s.temperature.size
    kpass = per_k * k_max
    units = len(job.sums.units()) * job.sums.moments.n_channels / len(delta)
    pairs = _total_pairs(job, sample)
    sweep = (per_pair * pairs + per_unit * units) / nprocs
    mem = _memory_mib(job, config, k_max, sample, pairs / max(units, 1))
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
        f"  sample       {per_k * 1e6:.1f} us per k-point, {per_pair * 1e6:.1f} us per "
        "(cell, mu) pair of the evaluation (CPU time: idle-machine estimate)",
        f"  estimate     start-up {startup:.1f} s + k-pass {kpass:.1f} s + sweep {sweep:.1f} s"
        f" = {startup + kpass + sweep:.1f} s per run "
        f"({(startup + kpass + sweep) * nprocs / 3600:.3g} core-hours)",
        "  output       none written (dry run)",
    ]
    if job.n_blocks < nprocs:
        lines.append(f"  warning      only {job.n_blocks} blocks for {nprocs} ranks: "
                     f"{nprocs - job.n_blocks} rank(s) idle in the k-pass; lower [run] chunk")
    return "\n".join(lines)


def _timed_sample(job, sweep) -> tuple[float, np.ndarray, float, float]:
    """Seconds per k-point, sample energies, seconds per cover pair and per sweep unit.

    The sample is a coarse grid (at most _SAMPLE_GRID² k-points) spanning the zone, so
    its energies represent every band; one sweep unit is timed on its cell tree.
    """
    n1, n2 = (min(n, _SAMPLE_GRID) for n in job.grid)
    sample = make_job(MPI.COMM_SELF, job.model, (n1, n2), sweep.temperature, sweep.mu,
                      job.sums.delta, n1 * n2, False)
    t0 = time.process_time()
    k = kgrid_points(job.model.reciprocal, n1, n2, 0, n1 * n2)
    energies = sample.solver.solve(job.model, k).energies
    _block(sample, 0, Timers())
    per_k = (time.process_time() - t0) / (2 * n1 * n2)
    tree = sample.sums.tree(sample.sums.moments.reduce(MPI.COMM_SELF))
    i_d, i_t = len(job.sums.delta) // 2, sweep.temperature.size // 2
    cost = [_timed_unit(sample.sums, tree, i_d, i_t, mus)
            for mus in (slice(0, 1), slice(0, sweep.mu.size))]
    per_pair = max((cost[1][0] - cost[0][0]) / max(cost[1][1] - cost[0][1], 1), 0.0)
    per_unit = max(cost[0][0] - per_pair * cost[0][1], 0.0)
    return per_k, energies, per_pair, per_unit


def _timed_unit(sums, tree, i_d: int, i_t: int, mus: slice) -> tuple[float, int]:
    """(seconds, cover pairs) of one evaluation on the sample tree."""
    store = sums.moments
    t0 = time.process_time()
    sums._point(tree, i_d, i_t, mus)
    elapsed = time.process_time() - t0
    kt = K_B_MEV_PER_K * sums.temperature[i_t]
    pairs = sum(sum(r.size for _, r, _ in cover_pairs(tree, sums.mu[mus], d + math.pi * kt))
                for d in store.chan_delta[store.chan_choice == i_d])
    return elapsed, pairs


def _total_pairs(job, sample: np.ndarray) -> float:
    """Expected cover pairs of the whole sweep for the full grid (estimate.py)."""
    sums = job.sums
    temps = sums.temperature
    picks = np.unique(np.linspace(0, temps.size - 1, min(temps.size, 6)).round().astype(int))
    total = 0.0
    for ch, delta_c in enumerate(sums.moments.chan_delta):
        del ch
        per_t = [expected_pairs(sums.lattice, sample, job.nk, sums.mu,
                                delta_c + math.pi * K_B_MEV_PER_K * temps[t]) for t in picks]
        total += float(np.interp(np.arange(temps.size), picks, per_t).sum())
    return total


def _memory_mib(job, config, k_max: int, sample: np.ndarray, pairs_per_unit: float) -> float:
    """Bytes a rank holds at its peak, in MiB (estimate).

    Cell moments: the rank's store, the union copy and the reduced sum, then the tree
    (≈ 2.7 stores at the peak, measured on the bench cases); one evaluation chunk of
    (cell, μ) pairs; the k-pass work arrays of one block and one weight sub-batch.
    """
    norb, nb, c = job.model.norb, job.model.nbands, job.chunk
    work = c * (3 * norb * norb + 5 * norb * nb + 8 * nb * nb) * 16  # H, dH, vectors, corners
    sub = min(c, max(1, _PAIR_ELEMENTS // (nb * nb)))
    work += sub * nb * nb * 16 * 8 + sub * nb * NCOMP * 2 * 16  # weights of one sub-batch
    cells = expected_cells(job.sums.lattice, sample, job.nk)
    store = 2.7 * cells * job.sums.moments.n_channels * NCOMP * N_SLOTS * 16
    chunk = min(_PAIR_CHUNK, pairs_per_unit)
    evaluation = chunk * (2 * NCOMP * N_SLOTS + 4 * 3 * (N_SLOTS + 2)) * 16
    kfields = k_max * (4 + 5 * nb) * 8 if config.output.kresolved else 0
    return _BASE_MIB + (work + store + evaluation + kfields) / 2**20
