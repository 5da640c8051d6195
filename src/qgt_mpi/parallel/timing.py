"""Per-phase wall-clock timers, reduced over ranks for the end-of-run table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from mpi4py import MPI


class Timers:
    """Accumulate wall time per named phase on this rank."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name`` (accumulates over repeated entries)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def elapsed(self) -> float:
        """Seconds since the timers were created."""
        return time.perf_counter() - self.start

    def reduce(self, comm: MPI.Comm, names: list[str]) -> np.ndarray:
        """Table of (min, mean, max) seconds over ranks for each phase in ``names``.

        Collective over ``comm``; all ranks must pass the same ``names``.
        """
        local = np.array([self.seconds.get(n, 0.0) for n in names], dtype=float)
        lo = np.empty_like(local)
        hi = np.empty_like(local)
        total = np.empty_like(local)
        comm.Allreduce(local, lo, op=MPI.MIN)
        comm.Allreduce(local, hi, op=MPI.MAX)
        comm.Allreduce(local, total, op=MPI.SUM)
        return np.column_stack([lo, total / comm.size, hi])


def format_table(names: list[str], table: np.ndarray) -> str:
    """Human-readable timing table with load imbalance max/mean per phase."""
    lines = [f"{'phase':<18}{'min [s]':>10}{'mean [s]':>10}{'max [s]':>10}{'imbal.':>8}"]
    for name, (lo, mean, hi) in zip(names, table, strict=True):
        imbalance = hi / mean if mean > 0 else 1.0
        lines.append(f"{name:<18}{lo:>10.3f}{mean:>10.3f}{hi:>10.3f}{imbalance:>8.2f}")
    return "\n".join(lines)
