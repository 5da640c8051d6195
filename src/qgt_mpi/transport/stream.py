"""Streaming evaluation of the sweep in rounds of work units (issue 9; SPEC §4).

The sweep (μ, δ, T) is cut into work units (δ index, T index, μ slice) whose layout
depends on the sweep only (never on the rank count), so a checkpointed "units done" mask
is valid for a rerun on any number of ranks. Units are dealt round-robin; in each round
every rank evaluates at most one unit *locally inside try/except*, then all ranks exchange
one small status (error, stop request, units done) with a single allgather **before** any
data leaves a rank. So one rank's failure is raised on every rank at the same point and
nobody waits in a collective write (collective-failure rule of the common brief). Then the
unit's observables go to a sink (memory, or the result file's hyperslab written by the
rank that computed it), and a progress line (rate, ETA) is logged.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import numpy as np
from mpi4py import MPI

from qgt_mpi.logs import Progress
from qgt_mpi.parallel import CollectiveError, allgather

UNITS_TARGET = 16  # split μ until a sweep has this many units (load balance vs per-unit cost)
EXIT_INTERRUPTED = 3


class Sink(Protocol):
    """Receiver of evaluated units (memory or file)."""

    def put(self, i_d: int, i_t: int, mus: slice, values: dict[str, np.ndarray]) -> None:
        """Store one unit's observables, each of shape (len(mus),). Local."""


def sweep_units(n_mu: int, n_delta: int, n_t: int) -> list[tuple[int, int, slice]]:
    """(δ, T, μ slice) units, δ-major then T then μ; depends on the sweep only."""
    n_points = n_delta * n_t
    n_split = min(n_mu, max(1, math.ceil(UNITS_TARGET / n_points)))
    size = math.ceil(n_mu / n_split)
    mus = [slice(i, min(i + size, n_mu)) for i in range(0, n_mu, size)]
    return [(d, t, m) for d in range(n_delta) for t in range(n_t) for m in mus]


def run_units(comm: MPI.Comm, evaluate, units, todo: list[int], sink: Sink,
              log: logging.Logger, percent: float = 10.0, stop=None, on_stop=None,
              due=None) -> None:
    """Evaluate units ``todo`` (same list on every rank) into ``sink``. Collective.

    ``evaluate(unit) -> dict`` computes one unit locally. Every rank ends in the same
    state: returns normally, or raises CollectiveError (status 1 for a failure; after
    ``on_stop(done_units)`` with status EXIT_INTERRUPTED when any rank got a stop signal).
    ``due()`` (rank 0's clock decides) asks for a periodic ``on_stop(done_units)`` without
    stopping.
    """
    mine = todo[comm.rank :: comm.size]
    rounds = math.ceil(len(todo) / comm.size)
    progress = Progress(log, "evaluation", sum(_n(units[u]) for u in todo), percent,
                        unit="sweep points")
    done: list[int] = []
    for t in range(rounds):
        error, unit = None, mine[t] if t < len(mine) else None
        if unit is not None:
            try:  # the sink's write is independent I/O: failures are agreed on below
                sink.put(*units[unit], evaluate(units[unit]))
            except Exception as exc:  # agreed on below, re-raised on every rank
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        periodic = due is not None and comm.rank == 0 and due()
        reports = allgather(comm, (error, bool(stop), unit, periodic))
        for rank, (err, *_rest) in enumerate(reports):
            if err is not None:
                raise CollectiveError(err, status=1, origin=rank)
        done += [r[2] for r in reports if r[2] is not None]
        stopping = any(r[1] for r in reports)
        if on_stop is not None and (stopping or reports[0][3]):
            on_stop(done)
        if stopping:
            raise CollectiveError("interrupted by a signal during the evaluation; rerun the "
                                  "same command to continue", status=EXIT_INTERRUPTED)
        progress.advance(sum(_n(units[r[2]]) for r in reports if r[2] is not None))


def _n(unit: tuple[int, int, slice]) -> int:
    """Sweep points of a unit."""
    return unit[2].stop - unit[2].start


class MemorySink:
    """Full (n_mu, n_delta, n_T) arrays, assembled on every rank by one allgather."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self.local: list[tuple[int, int, slice, dict[str, np.ndarray]]] = []

    def put(self, i_d: int, i_t: int, mus: slice, values: dict[str, np.ndarray]) -> None:
        """Keep one unit (local)."""
        self.local.append((i_d, i_t, mus, values))

    def result(self, comm: MPI.Comm) -> dict[str, np.ndarray]:
        """Every unit of every rank in full arrays (same on every rank). Collective."""
        out: dict[str, np.ndarray] = {}
        for part in allgather(comm, self.local):
            for i_d, i_t, mus, values in part:
                for key, v in values.items():
                    if key not in out:
                        out[key] = np.zeros(self.shape)
                    out[key][mus, i_d, i_t] = v
        return out
