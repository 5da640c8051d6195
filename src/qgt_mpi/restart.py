"""Checkpoint/restart of the k-pass (collective side; the file format is io/checkpoint.py).

``Checkpointer.save`` is called by all ranks at a round boundary: the accumulators are
reduced, the done mask is merged from every rank's freshly finished blocks, k-resolved
fields of those blocks are gathered to rank 0, and rank 0 writes the file atomically.
``resume`` reads a checkpoint on rank 0, refuses it when the inputs changed, adds its sums
to rank 0's accumulators and returns the blocks still to do (the same list on every rank).
"""

from __future__ import annotations

import os
import time

import numpy as np
from mpi4py import MPI

from qgt_mpi.io import checkpoint
from qgt_mpi.io.deck import InputError
from qgt_mpi.kpass import KFIELD_KEYS, KPass
from qgt_mpi.parallel import allgather, broadcast, collective, gather
from qgt_mpi.transport.binning import moments_state


class Checkpointer:
    """Periodic collective checkpoints of one run.

    Parameters
    ----------
    path : checkpoint file; fp : input fingerprint; interval : seconds between checkpoints
    (0: after every round); done : blocks already done (from a restart), same on all ranks;
    restored : k-resolved fields restored from a checkpoint (rank 0), or None.
    """

    def __init__(self, path: str, fp: dict[str, str], interval: float, done: np.ndarray,
                 restored: dict[str, np.ndarray] | None) -> None:
        self.path, self.fp, self.interval = path, fp, interval
        self.done = done.copy()
        self.kfields = restored
        self.last = time.monotonic()

    def due(self) -> bool:
        """Whether the interval has passed (rank 0's clock decides for everyone)."""
        return time.monotonic() - self.last >= self.interval

    def save(self, comm: MPI.Comm, job: KPass, fresh: list[int]) -> None:
        """Write a checkpoint including ``fresh`` blocks of every rank. Collective."""
        state = moments_state(job.sums.moments.reduce(comm))
        if job.sums.sweep_done is not None:  # stopped during the evaluation
            state["sweep_done"] = job.sums.sweep_done.astype(np.uint8)
        state.update(job.geometry.reduced_state(comm))
        for blocks in allgather(comm, fresh):
            self.done[blocks] = True
        gathered = gather(comm, {b: job.kfields[b] for b in fresh} if job.kresolved else {})
        with collective(comm, OSError):
            if comm.rank == 0:
                fields = self._merge_kfields(job, gathered) if job.kresolved else None
                checkpoint.save(self.path, self.fp, self.done, state, fields)
        self.last = time.monotonic()

    def _merge_kfields(self, job: KPass, gathered) -> dict[str, np.ndarray]:
        """Rank 0: full-grid arrays with every done block's fields filled in."""
        if self.kfields is None:
            self.kfields = {}
        for part in gathered:
            for block, fields in part.items():
                start, stop = job.bounds(block)
                for key, value in fields.items():
                    if key not in self.kfields:
                        self.kfields[key] = np.zeros((job.nk, *value.shape[1:]), value.dtype)
                    self.kfields[key][start:stop] = value
        return self.kfields

    def remove(self, comm: MPI.Comm) -> None:
        """Delete the checkpoint after the result file is complete (rank 0)."""
        if comm.rank == 0 and os.path.exists(self.path):
            os.remove(self.path)


def resume(comm: MPI.Comm, job: KPass, path: str, fp: dict[str, str], mode: str):
    """Restore a checkpoint if there is one and ``mode`` allows; collective.

    ``mode`` is "auto" (resume when a checkpoint exists), "force" (it must exist) or
    "never" (discard it). Returns (done mask, restored k-fields on rank 0 or None, n_done).
    """
    done = np.zeros(job.n_blocks, dtype=bool)
    with collective(comm):
        exists = os.path.exists(path)
        if mode == "force" and not exists:
            raise InputError("--restart", path, "no checkpoint to restart from")
    if not exists or mode == "never":
        return done, None, 0
    loaded = None
    with collective(comm):
        if comm.rank == 0:
            loaded = checkpoint.load(path)
            changed = checkpoint.changed_fields(loaded[0], fp)
            if changed:
                raise InputError("INPUT", path.removesuffix(".checkpoint.h5"),
                                 f"cannot restart: the input changed since the checkpoint "
                                 f"({', '.join(changed)}); rerun with --no-restart to start "
                                 "over")
            if loaded[1].size != job.n_blocks:
                raise InputError("run.chunk", job.chunk, "block layout differs from checkpoint")
    done = broadcast(comm, loaded[1] if comm.rank == 0 else None)
    sweep = broadcast(comm, loaded[2].get("sweep_done") if comm.rank == 0 else None)
    if sweep is not None:
        job.sums.sweep_done = sweep.astype(bool)
    restored = None
    if comm.rank == 0:
        job.sums.moments.restore({k: v for k, v in loaded[2].items() if k != "sweep_done"})
        job.geometry.restore(loaded[2])
        restored = loaded[3] or None
    return done, restored, int(done.sum())


def restored_slabs(kfields: dict[str, np.ndarray] | None, done: np.ndarray,
                   job: KPass) -> list[tuple[int, int, dict[str, np.ndarray]]]:
    """Slabs of k-resolved fields restored from a checkpoint (rank 0 writes them)."""
    if not kfields:
        return []
    slabs = []
    for block in np.nonzero(done)[0]:
        start, stop = job.bounds(int(block))
        slabs.append((start, stop, {k: kfields[k][start:stop] for k in KFIELD_KEYS}))
    return slabs
