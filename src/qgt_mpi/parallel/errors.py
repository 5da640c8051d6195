"""Collective error agreement: all ranks stop together with one message.

Expected failures (bad input, NaN in a kernel, an unwritable directory) are caught per rank
and agreed on at safe points (PyFR's ``_check_abort`` pattern): every rank learns the first
failing rank's message and raises the same :class:`CollectiveError`, so the CLI can print one
line and exit with one status on every rank. Unexpected exceptions go to an excepthook that
aborts the whole job, so a bug on one rank never leaves the others hanging.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TypeVar

from mpi4py import MPI

from qgt_mpi.status import EXIT_FAILURE, EXIT_INPUT

T = TypeVar("T")


class CollectiveError(Exception):
    """An error agreed on by all ranks of a communicator.

    Attributes
    ----------
    status : int
        Exit status the CLI should use (2 for input errors, 1 for run-time failures).
    origin : int
        Lowest rank on which the error happened.
    """

    def __init__(self, message: str, status: int = EXIT_FAILURE, origin: int = 0):
        super().__init__(message)
        self.status = status
        self.origin = origin


def _status_of(exc: BaseException) -> int:
    """Exit status for an exception: 2 for input errors, else 1."""
    if isinstance(exc, CollectiveError):
        return exc.status
    if getattr(exc, "input_error", False):  # io.checks.InputError and its kin
        return EXIT_INPUT
    return EXIT_FAILURE


def describe(exc: BaseException) -> tuple[str, int]:
    """One-line message and exit status of an exception caught on one rank."""
    if _status_of(exc) == EXIT_INPUT:
        return str(exc), 2
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__), _status_of(exc)


def agree(comm: MPI.Comm, exc: BaseException | None) -> None:
    """Raise the same :class:`CollectiveError` on every rank if any rank passes an error.

    Collective over ``comm``; every rank must call it, with ``None`` when it is fine.
    """
    mine = None if exc is None else (str(exc) or type(exc).__name__, _status_of(exc))
    reports = comm.allgather(mine)
    for rank, report in enumerate(reports):
        if report is not None:
            raise CollectiveError(report[0], status=report[1], origin=rank) from exc


@contextmanager
def collective(comm: MPI.Comm, *catch: type[BaseException]) -> Iterator[None]:
    """Context manager: exceptions of the given types inside are agreed on by all ranks.

    Collective over ``comm``: every rank must enter and leave the block. The block must
    not itself communicate after the point where it may fail on some ranks only.
    """
    kinds = catch or (Exception,)
    error: BaseException | None = None
    try:
        yield
    except kinds as exc:
        error = exc
    agree(comm, error)


def call_collectively(comm: MPI.Comm, func: Callable[[], T]) -> T:
    """Run ``func`` on every rank and agree on failure (see :func:`collective`)."""
    with collective(comm):  # re-raises every rank's error as a CollectiveError
        result = func()
    return result


def agreed_local(comm: MPI.Comm, func: Callable[[], T]) -> T:
    """Compute ``func()`` locally, then agree on success BEFORE any data exchange.

    Collective over ``comm`` (one small allgather of the error status). The pattern for
    every phase that computes per rank and then exchanges results (the sweep evaluation,
    a per-rank file write): ``local = agreed_local(comm, work)`` followed by the exchange,
    so a rank that fails never leaves the others waiting inside the exchange. ``func``
    must not communicate.
    """
    return call_collectively(comm, func)


# --- test-only failure injection ---------------------------------------------------------------

FAIL_ENV = "QGT_TEST_FAIL"
PHASES = ("setup", "kpass", "checkpoint", "reduction", "evaluation", "superfluid", "write",
          "rename")


class InjectedFailureError(RuntimeError):
    """The failure raised by :func:`fail_point` (test hook, never raised in production)."""


def fail_point(comm: MPI.Comm, phase: str) -> None:
    """Raise :class:`InjectedFailureError` on one rank when ``QGT_TEST_FAIL=phase:rank`` says so.

    The single test hook for the injected-failure tests (tests/test_failures.py): it is
    called at one point inside every phase of a run, and is a no-op unless the environment
    variable names this phase and this rank. Local, no communication.
    """
    if phase == "kpass":
        _slow_block()
    spec = os.environ.get(FAIL_ENV)
    if not spec:
        return
    name, _, rank = spec.partition(":")
    if name == phase and rank.strip() in (str(comm.rank), "*"):
        raise InjectedFailureError(f"injected failure in phase {phase!r} on rank {comm.rank}")


SLOW_ENV = "QGT_TEST_BLOCK_SLEEP"


def _slow_block() -> None:
    """Sleep ``QGT_TEST_BLOCK_SLEEP`` seconds (test hook: a slow k-pass that uses no CPU).

    Called once per block of the k-pass through :func:`fail_point`; the SLURM time-out test
    (tests/slurm/) uses it to keep a job in its k-pass past the time limit's early signal
    without a large grid. Results do not depend on it.
    """
    seconds = os.environ.get(SLOW_ENV)
    if seconds:
        time.sleep(float(seconds))


def install_excepthook(comm: MPI.Comm) -> None:
    """Abort the whole job on an uncaught exception on any rank (PyFR's pattern).

    Without this, one rank dying leaves the others blocked in a collective forever.
    """
    if comm.size == 1:
        return

    def hook(kind: type[BaseException], value: BaseException,
             tb: TracebackType | None) -> None:
        sys.stderr.write(f"qgt-mpi: uncaught error on rank {comm.rank}; aborting all ranks\n")
        traceback.print_exception(kind, value, tb)
        sys.stderr.flush()
        comm.Abort(1)

    sys.excepthook = hook
