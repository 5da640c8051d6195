"""Per-phase wall-clock timers and peak memory, reduced over ranks for the end-of-run table.

Each phase records its accumulated wall time and this process's peak resident memory
(VmHWM) when it last ended. :meth:`Timers.reduce` gives (min, mean, max) seconds over
ranks; :meth:`Timers.rank0_vs_others` sets rank 0 against the other ranks (time and
memory), the check that rank 0 does not grow with the number of ranks. Both are fixed-size
reductions: their cost and size do not depend on the number of ranks' data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from mpi4py import MPI

from qgt_mpi._startup import peak_rss_mib

__all__ = ["Timers", "format_rank0_table", "format_table", "peak_rss_mib"]


class Timers:
    """Accumulate wall time per named phase on this rank, and the peak memory at its end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}
        self.start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name`` (accumulates over repeated entries) and
        record the peak memory (VmHWM) when it ends. Local."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float, peak_mib: float | None = None) -> None:
        """Add ``seconds`` measured elsewhere (start-up, before the timers existed) to
        ``name``, with the peak memory ``peak_mib`` at its end (default: now). Local."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.peak_mib[name] = peak_rss_mib() if peak_mib is None else peak_mib

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

    def rank0_vs_others(self, comm: MPI.Comm, names: list[str]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Rank 0 against the other ranks: (seconds, peak MiB), each ``(len(names), 3)``
        with columns (rank 0, max over the other ranks, mean over the other ranks).

        Collective over ``comm``; all ranks pass the same ``names``. Two Allreduce calls
        of 5 and 2 numbers per phase: nothing grows with the number of ranks. The mean
        time counts every other rank (a rank idle in a phase spent 0 s there); the mean
        peak memory counts the ranks that entered the phase. Phases rank 0 did not enter
        have NaN memory; with one rank the "others" columns are NaN.
        """
        n = len(names)
        sec = np.array([self.seconds.get(k, 0.0) for k in names], dtype=float)
        mem = np.array([self.peak_mib.get(k, np.nan) for k in names], dtype=float)
        entered = np.isfinite(mem)
        mine = np.concatenate([sec, np.where(entered, mem, 0.0), entered.astype(float)])
        nothing = np.zeros_like(mine)
        root = comm.rank == 0
        local_sum = np.concatenate([nothing, mine] if root else [mine, nothing])
        local_max = (np.full(2 * n, -np.inf) if root else
                     np.concatenate([sec, np.where(entered, mem, -np.inf)]))
        total = np.empty_like(local_sum)
        top = np.empty_like(local_max)
        comm.Allreduce(local_sum, total, op=MPI.SUM)
        comm.Allreduce(local_max, top, op=MPI.MAX)
        s_oth, m_oth, n_oth, s_0, m_0, in_0 = total.reshape(6, n)
        others = comm.size - 1
        mean_s = s_oth / others if others else np.full(n, np.nan)
        mean_m = np.where(n_oth > 0, m_oth / np.maximum(n_oth, 1), np.nan)
        max_s, max_m = np.where(np.isfinite(top), top, np.nan).reshape(2, n)
        m_0 = np.where(in_0 > 0, m_0, np.nan)
        return (np.column_stack([s_0, max_s, mean_s]), np.column_stack([m_0, max_m, mean_m]))


def format_table(names: list[str], table: np.ndarray) -> str:
    """Human-readable timing table with load imbalance max/mean per phase."""
    lines = [f"{'phase':<18}{'min [s]':>10}{'mean [s]':>10}{'max [s]':>10}{'imbal.':>8}"]
    for name, (lo, mean, hi) in zip(names, table, strict=True):
        imbalance = hi / mean if mean > 0 else 1.0
        lines.append(f"{name:<18}{lo:>10.3f}{mean:>10.3f}{hi:>10.3f}{imbalance:>8.2f}")
    return "\n".join(lines)


def format_rank0_table(names: list[str], seconds: np.ndarray, peak: np.ndarray) -> str:
    """Human-readable table of :meth:`Timers.rank0_vs_others`: per phase, the wall time and
    the peak memory at its end of rank 0, and their max and mean over the other ranks.
    Phases nobody entered are left out. Local."""
    head = (f"{'phase':<18}{'rank 0 [s]':>11}{'others max':>11}{'mean':>8}"
            f"{'rank 0 [MiB]':>13}{'others max':>11}{'mean':>8}")
    lines = [head]

    def cell(value: float, width: int, digits: int) -> str:
        return f"{'-':>{width}}" if not np.isfinite(value) else f"{value:>{width}.{digits}f}"

    for name, sec, mem in zip(names, seconds, peak, strict=True):
        if not np.any(np.isfinite(mem)):
            continue
        lines.append(f"{name:<18}{cell(sec[0], 11, 3)}{cell(sec[1], 11, 3)}"
                     f"{cell(sec[2], 8, 3)}{cell(mem[0], 13, 1)}{cell(mem[1], 11, 1)}"
                     f"{cell(mem[2], 8, 1)}")
    return "\n".join(lines)
