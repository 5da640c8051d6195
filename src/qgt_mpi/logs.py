"""Logging: rank 0 at INFO, other ranks at WARNING; plain progress lines for batch logs."""

from __future__ import annotations

import logging
import sys
import time

from mpi4py import MPI

LOGGER_NAME = "qgt_mpi"


def setup_logging(comm: MPI.Comm, verbose: bool = False) -> logging.Logger:
    """Configure the package logger for this rank (idempotent). Local."""
    log = logging.getLogger(LOGGER_NAME)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stdout if comm.rank == 0 else sys.stderr)
    prefix = "" if comm.size == 1 else f"[{comm.rank}] "
    handler.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
    log.addHandler(handler)
    log.propagate = False
    if comm.rank == 0:
        log.setLevel(logging.DEBUG if verbose else logging.INFO)
    else:
        log.setLevel(logging.WARNING)
    return log


class Progress:
    """One plain line per ``percent`` of the work with elapsed time, rate and ETA.

    Rank 0 reports; ``n`` in :meth:`advance` counts the items of all ranks (the rounds are
    agreed), so the rate is that of the whole run, not of one rank.
    """

    def __init__(self, log: logging.Logger, label: str, total: int, percent: float,
                 unit: str = "k-points") -> None:
        self.log, self.label, self.total, self.unit = log, label, max(total, 1), unit
        self.step = max(1, int(self.total * percent / 100.0))
        self.done = 0
        self.next_report = self.step
        self.t0 = time.perf_counter()

    def advance(self, n: int) -> None:
        """Record ``n`` more items; log a line when a reporting threshold is crossed."""
        self.done += n
        if self.done < self.next_report and self.done < self.total:
            return
        while self.next_report <= self.done:
            self.next_report += self.step
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else float("inf")
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        self.log.info(
            "%s %5.1f%% (%d/%d %s)  elapsed %.1f s  rate %.3g %s/s (all ranks)  ETA %.1f s",
            self.label, 100.0 * self.done / self.total, self.done, self.total, self.unit,
            elapsed, rate, self.unit, eta,
        )
