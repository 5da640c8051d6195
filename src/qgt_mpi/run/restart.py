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

from qgt_mpi.io import checkpoint, kslabs
from qgt_mpi.io.deck import InputError
from qgt_mpi.parallel import allgather, broadcast, collective
from qgt_mpi.parallel.errors import fail_point
from qgt_mpi.run.irreducible_store import remove_store, store_dir
from qgt_mpi.run.kpass import KPass
from qgt_mpi.transport.binning import moments_state, restore_state


class Checkpointer:
    """Periodic collective checkpoints of one run.

    Parameters
    ----------
    path : checkpoint file; fp : input fingerprint; interval : seconds between checkpoints
    (0: after every round); done : blocks already done (from a restart), same on all ranks;
    has_slabs : whether the k-resolved slab file of those blocks exists (from a restart).
    """

    def __init__(self, path: str, fp: dict[str, str], interval: float, done: np.ndarray,
                 has_slabs: bool) -> None:
        self.path, self.fp, self.interval = path, fp, interval
        self.slab_path = kslabs.slab_file(path)
        self.symmetry_store = store_dir(path)  # the symmetry pre-pass (theory §5.11)
        self.done = done.copy()
        self.has_slabs = bool(has_slabs)
        self.last = time.monotonic()

    def due(self) -> bool:
        """Whether the interval has passed (rank 0's clock decides for everyone)."""
        return time.monotonic() - self.last >= self.interval

    def save(self, comm: MPI.Comm, job: KPass, fresh: list[int]) -> None:
        """Write a checkpoint including ``fresh`` blocks of every rank. Collective.

        k-resolved fields of the fresh blocks go into the slab file from every rank (never
        gathered); only then does rank 0 write the reduced sums and the done mask.
        """
        state = moments_state(job.sums.stores, comm)
        state["block_chunk"] = np.array(job.chunk)  # a default chunk is adopted on resume
        if job.sums.sweep_done is not None:  # units of a stopped evaluation (run/sweep.py)
            state["sweep_done"] = job.sums.sweep_done.astype(np.uint8)
        state.update(job.geometry.reduced_state(comm))
        for blocks in allgather(comm, fresh):
            self.done[blocks] = True
        if job.kresolved:
            slabs = [(*job.bounds(b), job.kfields[b]) for b in fresh]
            kslabs.write(comm, self.slab_path, job.nk, job.geometry.nb, slabs,
                         create=not self.has_slabs)
            self.has_slabs = True
        with collective(comm):
            fail_point(comm, "checkpoint")
            if comm.rank == 0:
                checkpoint.save(self.path, self.fp, self.done, state)
        self.last = time.monotonic()

    def remove(self, comm: MPI.Comm) -> None:
        """Delete the checkpoint, its slab file and the symmetry store after the result is
        complete."""
        if comm.rank == 0:
            for path in (self.path, self.slab_path):
                if os.path.exists(path):
                    os.remove(path)
            remove_store(self.symmetry_store)


def resume(comm: MPI.Comm, job: KPass, path: str, fp: dict[str, str], mode: str, *,
           adopt_chunk: bool = False):
    """Restore a checkpoint if there is one and ``mode`` allows; collective.

    ``mode`` is "auto" (resume when a checkpoint exists), "force" (it must exist) or
    "never" (discard it). ``adopt_chunk`` (the deck leaves ``[run] chunk`` to the default,
    which depends on the rank count): the checkpoint's block size replaces ``job.chunk``, so
    a run resumes on any number of ranks. Returns (done mask, whether the slab file of the
    done blocks' k-resolved fields exists, n_done).
    """
    done = np.zeros(job.n_blocks, dtype=bool)
    with collective(comm):
        exists = os.path.exists(path)
        if mode == "force" and not exists:
            raise InputError("--restart", path, "no checkpoint to restart from")
    if mode == "never" and comm.rank == 0:  # start over: no stored representatives either
        remove_store(store_dir(path))
    if not exists or mode == "never":
        return done, False, 0
    loaded: Loaded | None = None  # rank 0's checkpoint
    with collective(comm):
        if comm.rank == 0:
            loaded = _load(path)
            changed = checkpoint.changed_fields(loaded[0], fp)
            if changed:
                raise InputError("INPUT", path.removesuffix(".checkpoint.h5"),
                                 f"cannot restart: the input changed since the checkpoint "
                                 f"({', '.join(changed)}); rerun with --no-restart to start "
                                 "over")
            saved = loaded[2].get("block_chunk")
            chunk = job.chunk if saved is None else int(saved)
            if adopt_chunk and chunk != job.chunk:
                job.chunk = chunk  # the layout of the checkpoint (set on every rank below)
            if loaded[1].size != job.n_blocks or chunk != job.chunk:
                raise InputError("run.chunk", job.chunk, "block layout differs from checkpoint")
            if job.kresolved and loaded[1].any() and not os.path.exists(kslabs.slab_file(path)):
                raise InputError("checkpoint", os.path.basename(path),
                                 f"its k-resolved slab file {kslabs.slab_file(path)} is "
                                 "missing; rerun with --no-restart to start over")
    sweep: np.ndarray | None = None
    if loaded is not None:  # rank 0
        done = loaded[1]
        restore_state(job.sums.stores, loaded[2])
        job.geometry.restore(loaded[2])
        sweep = loaded[2].get("sweep_done")
    job.chunk = broadcast(comm, job.chunk)
    done = broadcast(comm, done)
    sweep = broadcast(comm, sweep)
    job.sums.sweep_done = None if sweep is None else np.asarray(sweep, dtype=bool)
    return done, bool(job.kresolved and done.any()), int(done.sum())


# (fingerprint, done mask over blocks, state arrays) of a checkpoint (io/checkpoint.load)
Loaded = tuple[dict[str, str], np.ndarray, dict[str, np.ndarray]]


def _load(path: str) -> Loaded:
    """checkpoint.load with read errors as an InputError naming the file (rank 0)."""
    try:
        return checkpoint.load(path)
    except (OSError, KeyError, ValueError, TypeError, InputError) as exc:
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError("checkpoint", os.path.basename(path), f"cannot read {path} ({why}); "
                         "rerun with --no-restart to start over (it is then replaced)") from exc


def restored_slabs(comm: MPI.Comm, path: str, done: np.ndarray,
                   job: KPass) -> list[tuple[int, int, dict[str, np.ndarray]]]:
    """Slabs of the blocks done before a restart, read back from the checkpoint's slab file.

    The done blocks are dealt round-robin, so every rank reads (and later writes into the
    result) only its share. Local; ``done`` is the same on every rank.
    """
    if not job.kresolved:
        return []
    mine = [int(b) for b in np.nonzero(done)[0]][comm.rank :: comm.size]
    return kslabs.read(kslabs.slab_file(path), [job.bounds(b) for b in mine])
