"""The k-pass: every k-point solved once, in fixed blocks, feeding all accumulators.

The grid's flat index is cut into blocks of ``chunk`` k-points (the unit of work, of
checkpointing and of restart). The blocks still to do are dealt round-robin to the ranks
and processed in rounds: in each round every rank does at most one block, then all ranks
exchange one small status message (an error, a stop request, "checkpoint due", k-points
done). So a failure or a signal on any rank is seen by all at the same round boundary, and
checkpoints are taken collectively there. Per block: H(k), eigenpairs and band velocities,
curvature and metric, pair products and plaquette fluxes, transport weights into bins.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

from qgt_mpi.geometry.bands import band_geometry, degenerate_pairs, pair_products
from qgt_mpi.geometry.chern import plaquette_flux
from qgt_mpi.geometry.corners import corner_plan
from qgt_mpi.geometry.summary import GeometrySummary
from qgt_mpi.io.kslabs import ENTRY_AXES, KEYS, entry_shapes
from qgt_mpi.logs import Progress
from qgt_mpi.models.lattice import kgrid_points, reduced_indices
from qgt_mpi.models.protocols import BlochModel
from qgt_mpi.parallel import CollectiveError, Timers, allgather
from qgt_mpi.parallel.errors import describe, fail_point
from qgt_mpi.parallel.exchange import exchange
from qgt_mpi.parallel.signals import StopFlag
from qgt_mpi.run.irreducible import prepare_images
from qgt_mpi.solvers.base import Eigensolver
from qgt_mpi.solvers.images import SymmetryImages
from qgt_mpi.status import EXIT_INTERRUPTED
from qgt_mpi.transport.accumulate import TransportSums


@dataclass
class KPass:
    """Inputs and accumulators of one rank's share of the k-grid."""

    model: BlochModel
    solver: Eigensolver
    grid: tuple[int, int]
    chunk: int
    groups: list[tuple[int, int]]
    sums: TransportSums
    geometry: GeometrySummary
    kresolved: bool
    kfields: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def nk(self) -> int:
        """Number of k-points of the grid."""
        return self.grid[0] * self.grid[1]

    @property
    def n_blocks(self) -> int:
        """Number of blocks of the grid."""
        return math.ceil(self.nk / self.chunk)

    def bounds(self, block: int) -> tuple[int, int]:
        """Flat-index range [start, stop) of a block."""
        return block * self.chunk, min((block + 1) * self.chunk, self.nk)


LINK_NESTED_MAX = 16  # nested groups (0, n) up to this n: each costs an n×n determinant per link


def link_groups(nbands: int, window: bool = False) -> list[tuple[int, int]]:
    """Band groups for link Chern numbers: each band, then the bands 0..n−1 below each gap.

    A solver window adds the whole window (0, nbands) (for all bands that group is trivial).
    The nested groups stop at LINK_NESTED_MAX bands (their determinants cost Σ n³ per link;
    a group of isolated bands has the sum of their Chern numbers anyway).
    """
    top = min(nbands + 1 if window else nbands, LINK_NESTED_MAX + 1)
    return [(n, n + 1) for n in range(nbands)] + [(0, n) for n in range(2, top)]


def run_blocks(comm: MPI.Comm, job: KPass, todo: list[int], timers: Timers,
               log: logging.Logger, percent: float, checkpointer=None,
               stop: StopFlag | None = None) -> None:
    """Process blocks ``todo`` (same list on all ranks) in rounds. Collective over ``comm``.

    Raises CollectiveError on every rank when any rank fails, and with status
    EXIT_INTERRUPTED (after a checkpoint) when any rank received a stop signal. Timed as
    a whole under the phase "k-pass" (its parts: solve, geometry, deposit, checkpoint).
    """
    with timers.phase("k-pass"):
        if isinstance(job.solver, SymmetryImages) and todo:  # theory §5.11: stars first
            prepare_images(comm, job, todo, timers, log, percent, stop,
                           None if checkpointer is None else checkpointer.symmetry_store,
                           None if checkpointer is None else checkpointer.fp)
        _rounds(comm, job, todo, timers, log, percent, checkpointer, stop)


def _rounds(comm: MPI.Comm, job: KPass, todo: list[int], timers: Timers,
            log: logging.Logger, percent: float, checkpointer, stop: StopFlag | None) -> None:
    """The rounds of :func:`run_blocks`. Collective over ``comm``."""
    pool = job.solver.comm  # ranks that solve one k-point together (SLEPc), or COMM_SELF
    n_pools, root = comm.size // pool.size, pool.rank == 0
    mine = todo[comm.rank // pool.size :: n_pools]  # pools are contiguous blocks of ranks
    rounds = math.ceil(len(todo) / n_pools)
    total = sum(job.bounds(b)[1] - job.bounds(b)[0] for b in todo)
    progress = Progress(log, "k-pass", total, percent)
    fresh: list[int] = []
    for t in range(rounds):
        error, done_k, solved = None, 0, None
        block = mine[t] if t < len(mine) else None
        if block is not None:
            try:
                fail_point(comm, "kpass")
                solved = _solve(job, block, timers)
            except Exception as exc:  # agreed on below, re-raised on every rank
                error = describe(exc)
        with timers.phase("geometry"):
            extra = _exchange_corners(comm, job, todo[t * n_pools : (t + 1) * n_pools], pool,
                                      solved, error is not None)
        if block is not None and solved is not None and extra is not False:
            try:
                done_k = _finish(job, block, solved, extra, timers, root)
                if root:
                    fresh.append(block)
                else:
                    done_k = 0
            except Exception as exc:
                error = describe(exc)
        due = checkpointer is not None and comm.rank == 0 and checkpointer.due()
        reports = allgather(comm, (error, bool(stop), due, done_k))
        _raise_first_error(reports)
        stopping = any(r[1] for r in reports)
        if checkpointer is not None and (reports[0][2] or stopping):
            with timers.phase("checkpoint"):
                checkpointer.save(comm, job, fresh)
            fresh = []
        if stopping:
            _interrupted(comm, stop, checkpointer)
        progress.advance(sum(r[3] for r in reports))
    if checkpointer is not None and todo:  # the reduced k-sums are safe before the evaluation
        with timers.phase("checkpoint"):
            checkpointer.save(comm, job, fresh)


def _raise_first_error(reports) -> None:
    """Raise the lowest failing rank's error on every rank."""
    for rank, (error, *_rest) in enumerate(reports):
        if error is not None:
            raise CollectiveError(error[0], status=error[1], origin=rank)


def _interrupted(comm: MPI.Comm, stop: StopFlag | None, checkpointer) -> None:
    """Raise the agreed stop on every rank."""
    names = [n for n in allgather(comm, stop.name if stop else None) if n]
    name = names[0] if names else None
    where = f"; checkpoint {checkpointer.path}" if checkpointer is not None else ""
    raise CollectiveError(f"interrupted by {name or 'a signal'}{where}; rerun the same "
                          "command to continue", status=EXIT_INTERRUPTED)


def _solve(job: KPass, block: int, timers: Timers):
    """Eigenpairs of one block's k-points (collective over the solver's pool)."""
    n1, n2 = job.grid
    with timers.phase("solve"):
        k = kgrid_points(job.model.reciprocal, n1, n2, *job.bounds(block))
        return k, job.solver.solve(job.model, k)


def _exchange_corners(comm: MPI.Comm, job: KPass, blocks: list[int], pool: MPI.Comm,
                      solved, failed: bool):
    """Vectors of this round's other blocks at this block's plaquette corners. Collective.

    Returns (flat indices, vectors) or None (nothing to receive), or False when a rank of
    the round failed (the round's error is raised at its status exchange; no flux work).
    Each pool rank sends to the same-numbered rank of the receiving pool (the window
    vectors are replicated within a pool). Corners owned by blocks of other rounds are
    solved where needed (geometry/chern.py).
    """
    if any(allgather(comm, failed)):
        return False
    n_pools = comm.size // pool.size
    ranges = [job.bounds(b) for b in blocks] + [None] * (n_pools - len(blocks))
    me = comm.rank // pool.size
    send, recv = corner_plan(*job.grid, ranges, me)
    own = ranges[me]
    start = own[0] if own is not None else 0
    outgoing = {p * pool.size + pool.rank: solved[1].vectors[flat - start]
                for p, flat in send.items()}
    received = exchange(comm, outgoing)
    if not recv:
        return None
    pools = sorted(recv)
    return (np.concatenate([recv[q] for q in pools]),
            np.concatenate([received[q * pool.size + pool.rank] for q in pools]))


def _block(job: KPass, block: int, timers: Timers, root: bool = True) -> int:
    """One block alone (no exchange): solve → geometry → deposit; its k-point count."""
    return _finish(job, block, _solve(job, block, timers), None, timers, root)


def _finish(job: KPass, block: int, solved, extra, timers: Timers, root: bool = True) -> int:
    """One solved block through geometry → transport deposit; returns its k-point count.

    Every rank of a solver pool works on the block; only the pool's root deposits (the
    others' accumulators stay zero, so the world reduction counts each k once).
    """
    n1, n2 = job.grid
    c0, c1 = job.bounds(block)
    k, eig = solved
    with timers.phase("geometry"):
        curvature, metric = band_geometry(eig)
        products = pair_products(eig.velocities)
        flux = plaquette_flux(job.model, job.solver, n1, n2, c0, c1, job.groups, eig.vectors,
                              extra=extra, candidates=job.geometry.candidates)  # theory §5.7
        skipped = degenerate_pairs(eig.energies)
    _check_finite(eig.energies, curvature, metric, products["N_xy"])
    if not root:
        return c1 - c0
    outside = (eig.metric_out, eig.curvature_out) if eig.windowed else None
    with timers.phase("deposit"):
        job.sums.add(eig.energies, products, outside)
    job.geometry.add(eig.energies, curvature, metric, flux, skipped, eig)
    if job.kresolved:
        i, j = reduced_indices(n1, n2, c0, c1)
        frac = np.column_stack([i / n1, j / n2])
        job.kfields[block] = dict(zip(KEYS, (frac, k, eig.energies, curvature, metric),
                                      strict=True))
    return c1 - c0


def _check_finite(*arrays: np.ndarray) -> None:
    """Raise FloatingPointError if any array holds NaN or inf."""
    for arr in arrays:
        if not np.all(np.isfinite(arr)):
            raise FloatingPointError("non-finite value in the k-pass (eigenpairs or geometry)")


def kfield_slabs(job: KPass) -> list[tuple[int, int, dict[str, np.ndarray]]]:
    """This rank's k-resolved fields as (start, stop, arrays) slabs, one per block."""
    return [(*job.bounds(b), fields) for b, fields in sorted(job.kfields.items())]


def kfield_meta(nb: int) -> dict:
    """Per-k entry shape, dtype and axes of the k-resolved fields (io/kslabs.py defines
    them; units are io/conventions.py's)."""
    f8 = np.dtype(float)
    return {key: (shape, f8, {"axes": ENTRY_AXES[key]})
            for key, shape in entry_shapes(nb).items()}
