"""Streaming evaluation of the sweep in rounds of work units (theory §4.3).

The sweep (μ or filling, δ, T) is cut into work units (δ index, run of temperatures, run of
the first axis) whose layout depends on the sweep only (never on the rank count), so a
checkpointed "units done" mask is valid for a rerun on any number of ranks. Temperatures
are grouped when the sweep would have more than MAX_UNITS units, so a huge T sweep is
written in slabs of many temperatures rather than one small write (and one round) per T.
Units are dealt round-robin; in each round every rank evaluates at most one unit *locally*,
hands it to the sink (memory, or its slab of the result file written by this rank alone),
and then all ranks exchange one small status (error, stop request, unit done, checkpoint
due) with a single allgather. One rank's failure is therefore raised on every rank at the
same point, a stop signal stops every rank within one unit's time, and nobody waits inside
a collective. A progress line (rate,
ETA) is logged like the k-pass's.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
from mpi4py import MPI

from qgt_mpi.logs import Progress
from qgt_mpi.parallel import allgather
from qgt_mpi.parallel.errors import CollectiveError, describe, fail_point
from qgt_mpi.status import EXIT_INTERRUPTED

MIN_UNITS = 16  # split the first axis until the sweep has this many units (load balance)
MAX_UNIT_POINTS = 65_536  # sweep points per unit at most (memory per unit, progress, resume)
MAX_UNITS = 1024  # beyond this many units temperatures are grouped (writes, rounds)

Unit = tuple[int, slice, slice]  # (δ index, temperatures, first axis)


class Sink(Protocol):
    """Receiver of evaluated units (memory or file)."""

    def put(self, unit: Unit, values: dict[str, np.ndarray]) -> None:
        """Store one unit's values, each of shape (first axis, temperatures, ...). Local."""


def sweep_units(n_first: int, n_delta: int, n_t: int) -> list[Unit]:
    """(δ, T run, first-axis run) units, δ-major, then T, then the first axis.

    Depends on the sweep only. At least MIN_UNITS when there are enough points, at most
    MAX_UNIT_POINTS points each; temperatures are grouped (within that bound) until there
    are at most about MAX_UNITS units.
    """
    n_split = max(math.ceil(MIN_UNITS / (n_delta * n_t)), math.ceil(n_first / MAX_UNIT_POINTS))
    n_split = max(1, min(n_first, n_split))
    size = math.ceil(n_first / n_split)  # the largest part; the first n_first % n_split
    cuts = np.cumsum([0] + [n_first // n_split + (i < n_first % n_split)  # are one longer
                            for i in range(n_split)])
    parts = [slice(int(a), int(b)) for a, b in itertools.pairwise(cuts)]
    block = max(1, min(MAX_UNIT_POINTS // size,
                       math.ceil(n_delta * len(parts) * n_t / MAX_UNITS)))
    temps = [slice(t, min(t + block, n_t)) for t in range(0, n_t, block)]
    return [(d, t, m) for d in range(n_delta) for t in temps for m in parts]


def run_units(comm: MPI.Comm, evaluate: Callable[[Unit], dict], units: list[Unit],
              todo: list[int], sink: Sink, log: logging.Logger, percent: float = 10.0,
              stop=None, on_stop: Callable[[list[int]], None] | None = None,
              due: Callable[[], bool] | None = None) -> list[int]:
    """Evaluate units ``todo`` (same list on every rank) into ``sink``. Collective.

    Every rank ends in the same state: returns the units done, or raises CollectiveError
    (the failing rank's message and status; after ``on_stop(done)`` with status
    EXIT_INTERRUPTED when any rank got a stop signal). ``due()`` (rank 0's clock decides)
    asks for a periodic ``on_stop(done)`` without stopping (a checkpoint).
    """
    mine = todo[comm.rank :: comm.size]
    progress = Progress(log, "evaluation", sum(_n(units[u]) for u in todo), percent,
                        unit="sweep points")
    done: list[int] = []
    for r in range(math.ceil(len(todo) / comm.size)):
        error, unit = None, mine[r] if r < len(mine) else None
        if unit is not None:
            try:
                fail_point(comm, "evaluation")
                sink.put(units[unit], evaluate(units[unit]))
            except Exception as exc:  # agreed on below, re-raised on every rank
                error = describe(exc)
        periodic = due is not None and comm.rank == 0 and due()
        reports = allgather(comm, (error, bool(stop), unit, periodic))
        for rank, (err, *_rest) in enumerate(reports):
            if err is not None:
                raise CollectiveError(err[0], status=err[1], origin=rank)
        done += [rep[2] for rep in reports if rep[2] is not None]
        stopping = any(rep[1] for rep in reports)
        if on_stop is not None and (stopping or reports[0][3]):
            on_stop(done)
        if stopping:
            name = getattr(stop, "name", None) or "a signal"
            raise CollectiveError(
                f"interrupted by {name} during the sweep evaluation ({len(done)} of "
                f"{len(todo)} units of this run kept in the checkpoint); rerun the same "
                "command to continue", status=EXIT_INTERRUPTED)
        progress.advance(sum(_n(units[rep[2]]) for rep in reports if rep[2] is not None))
    return done


def _n(unit: Unit) -> int:
    """Sweep points of a unit."""
    return (unit[1].stop - unit[1].start) * (unit[2].stop - unit[2].start)


class MemorySink:
    """Full arrays (n_first, n_delta, n_T, ...), assembled on every rank by one allgather."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self.local: list[tuple[Unit, dict[str, np.ndarray]]] = []

    def put(self, unit: Unit, values: dict[str, np.ndarray]) -> None:
        """Keep one unit (local)."""
        self.local.append((unit, values))

    def result(self, comm: MPI.Comm) -> dict[str, np.ndarray]:
        """Every unit of every rank in full arrays (same on every rank). Collective."""
        out: dict[str, np.ndarray] = {}
        for part in allgather(comm, self.local):
            for (i_d, temps, sl), values in part:
                for key, v in values.items():
                    if key not in out:
                        out[key] = np.zeros(self.shape + np.shape(v)[2:], dtype=v.dtype)
                    out[key][sl, i_d, temps] = v
        return out
