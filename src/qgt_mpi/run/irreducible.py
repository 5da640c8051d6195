"""The symmetry pre-pass: solve the representatives of the stars once (theory §5.11).

With ``[solver] accelerate = "symmetry"`` the solver is a SymmetryImages (solvers/images.py)
over the verified operations of the model (models/symmetry.py). Before the k-pass, the
representatives of every star the remaining blocks touch (their k-points and plaquette
corners, models/kstars.py) are solved in rounds — chunks dealt round-robin to the pools, one
status exchange per round, so an error or a stop signal on any rank stops all ranks at the
round boundary, as in the k-pass — and each rank then receives the representatives its own
blocks need (one all-to-all, pickled arrays, from the root of the pool that solved them).
The k-pass itself is unchanged: its solves become (5.11b) transforms.

Kept on disk in runs with a checkpoint (run/irreducible_store.py): a job stopped during the
pre-pass or the k-pass reads the representatives solved so far on restart, on any rank
count; the k-pass blocks done before are kept, and their stars are not needed again.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from mpi4py import MPI

from qgt_mpi.logs import Progress
from qgt_mpi.models.kstars import IrreducibleGrid
from qgt_mpi.parallel import CollectiveError, Timers, allgather, broadcast, collective
from qgt_mpi.parallel.errors import describe, fail_point
from qgt_mpi.parallel.exchange import exchange
from qgt_mpi.parallel.signals import StopFlag
from qgt_mpi.run.irreducible_store import load, open_store, save_chunk
from qgt_mpi.solvers.images import SymmetryImages
from qgt_mpi.status import EXIT_INTERRUPTED

PREPASS_CHUNK = 8  # representatives per pool and round (a status exchange each)


def prepare_images(comm: MPI.Comm, job, todo: list[int], timers: Timers,
                   log: logging.Logger, percent: float, stop: StopFlag | None = None,
                   store: str | None = None, fp: dict[str, str] | None = None) -> None:
    """Fill ``job.solver``'s cache for blocks ``todo`` (same list on all ranks). Collective.

    ``store``: directory of solved representatives (run/irreducible_store.py; runs with a
    checkpoint), read first and written after every round; ``fp`` the input fingerprint.
    Raises CollectiveError on every rank when any rank fails, and with EXIT_INTERRUPTED when
    any rank received a stop signal (the chunks written so far are kept in ``store``).
    """
    solver: SymmetryImages = job.solver
    n1, n2 = job.grid
    grid = IrreducibleGrid(job.model.reciprocal, n1, n2, solver.operations)
    solver.grid, solver.operations = grid, grid.operations
    pool = solver.comm
    n_pools, me = comm.size // pool.size, comm.rank // pool.size
    mine = todo[me::n_pools]
    flat = [np.arange(*job.bounds(b)) for b in mine]
    need = grid.needed(np.concatenate(flat)) if flat else np.zeros(0, dtype=np.int64)
    wanted = allgather(comm, need)  # per rank: the representatives its blocks use
    reps = np.unique(np.concatenate(wanted)) if wanted else need
    stored: dict[int, str] = {}
    with collective(comm):
        if store is not None and comm.rank == 0:
            stored = open_store(store, fp or {})
    stored = broadcast(comm, stored)
    solve = np.array([p for p in reps if int(p) not in stored], dtype=np.int64)
    chunks = [solve[i:i + PREPASS_CHUNK] for i in range(0, solve.size, PREPASS_CHUNK)]
    log.info("symmetry: %d operations (%s) verified on H; %d of %d grid points are "
             "representatives (%.2f points each); %d needed by %d blocks, %d of them stored "
             "by an earlier run", len(grid.operations),
             ",".join(o.label for o in grid.operations), grid.representatives.size, grid.nk,
             grid.reduction(), reps.size, len(todo), reps.size - solve.size)
    if len(grid.operations) == 1 and comm.rank == 0:
        log.warning("symmetry: no operation of the model besides the identity maps this grid "
                    "onto itself (theory 5.11): every k-point is solved")
    progress = Progress(log, "symmetry pre-pass", int(solve.size), percent,
                        unit="representatives")
    own: dict[int, tuple] = {}
    with timers.phase("solve"):  # inside the k-pass phase (kpass.run_blocks)
        for t in range(math.ceil(len(chunks) / n_pools)):
            index = t * n_pools + me
            error, count = None, 0
            if index < len(chunks):
                try:
                    fail_point(comm, "kpass")
                    part = chunks[index]
                    eig = solver.inner.solve(job.model, grid.points(part))
                    solver.store(job.model, part, eig)
                    own.update({int(p): solver.cache[int(p)] for p in part})
                    count = part.size if pool.rank == 0 else 0
                    if store is not None and pool.rank == 0:
                        save_chunk(store, part, eig,
                                   np.stack([solver.cache[int(p)][1] for p in part]))
                except Exception as exc:  # agreed on below, re-raised on every rank
                    error = describe(exc)
            reports = allgather(comm, (error, bool(stop), count))
            for rank, (err, _s, _c) in enumerate(reports):
                if err is not None:
                    raise CollectiveError(err[0], status=err[1], origin=rank)
            if any(r[1] for r in reports):
                kept = f"; solved representatives kept in {store}" if store else ""
                raise CollectiveError(f"interrupted during the symmetry pre-pass{kept}; rerun "
                                      "the same command to continue", status=EXIT_INTERRUPTED)
            progress.advance(sum(r[2] for r in reports))
        solver.report.representatives = len(own) if pool.rank == 0 else 0
        _share(comm, solver, own, wanted, pool)
        with collective(comm):  # this rank's stored representatives, read by itself
            if stored and store is not None:
                mine_stored = {int(p) for p in wanted[comm.rank] if int(p) in stored}
                solver.cache.update(load(store, stored, mine_stored))


def _share(comm: MPI.Comm, solver: SymmetryImages, own: dict[int, tuple],
           wanted: list[np.ndarray], pool: MPI.Comm) -> None:
    """Send each rank the representatives it wants from the pool roots that solved them."""
    outgoing: dict[int, list] = {}
    if pool.rank == 0:
        for dest, want in enumerate(wanted):
            items = [(p, own[p]) for p in map(int, want) if p in own]
            if items and dest != comm.rank:
                outgoing[dest] = items
    received: dict[int, Any] = exchange(comm, outgoing)  # type: ignore[arg-type]
    for items in received.values():
        for p, entry in items:
            solver.cache[int(p)] = entry
    keep = set(map(int, wanted[comm.rank]))
    for p in list(solver.cache):
        if p not in keep:
            del solver.cache[p]


__all__ = ["PREPASS_CHUNK", "prepare_images"]
