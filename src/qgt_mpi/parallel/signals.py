"""Stop requests from signals (SIGTERM from SLURM before the time limit, SIGINT, SIGUSR1).

The handler only sets a flag; the k-pass looks at it at the next round boundary, where all
ranks agree to checkpoint and stop together (see kpass.py), and the sweep evaluation after
every round of sweep units (transport/accumulate.py; the k-pass was checkpointed at its end).
Phases that cannot stop midway (superfluid weight, valley geometry) honour a signal when
they end (:func:`stop_after`), so the run still stops with one message and status 3.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from mpi4py import MPI

from qgt_mpi.parallel.comm import allgather
from qgt_mpi.parallel.errors import CollectiveError
from qgt_mpi.status import EXIT_INTERRUPTED

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class StopFlag:
    """Set by a signal handler; ``name`` is the signal's name (e.g. ``"SIGTERM"``)."""

    def __init__(self) -> None:
        self.name: str | None = None

    def __bool__(self) -> bool:
        return self.name is not None

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        """Record the first stop request."""
        self.name = self.name or signal.Signals(signum).name


@contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """Route STOP_SIGNALS to ``flag`` inside the block; restore the old handlers after."""
    old = {sig: signal.signal(sig, flag.handler) for sig in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def stop_after(comm: MPI.Comm, flag: StopFlag, phase: str) -> None:
    """Raise CollectiveError(EXIT_INTERRUPTED) on every rank if any rank's ``flag`` is set.

    Collective over ``comm`` (one allgather); called at the end of ``phase``.
    """
    name = next((n for n in allgather(comm, flag.name) if n), None)
    if name is not None:
        raise CollectiveError(f"interrupted by {name} during the {phase} (the k-pass and the "
                              "sweep are kept in the checkpoint); rerun the same command to "
                              "continue", status=EXIT_INTERRUPTED)
