"""The block size of the k-pass when ``[run] chunk`` is not given, and the balance it gives.

Blocks of ``chunk`` consecutive k-points are dealt round-robin to the pools (run/kpass.py:
with the dense solver every rank is its own pool; a windowed solver's pool solves one k-point
together), one block per pool per round. The default block size follows from the number of
k-points N, of pools P and the cost per k-point:

- rounds R = ⌈N / (P · cap)⌉, chunk = ⌈N / (P · R)⌉: the fewest rounds, and the busiest
  pool does R blocks of ⌈N / (P · R)⌉, the least any layout of R rounds of equal blocks
  allows (imbalance ≤ 1 + P·R/N, 1.00 when P·R divides N); every pool has a block in
  every round but the last, in which at most ⌈N / chunk⌉ − P·(R − 1) pools work;
- cap = :data:`DENSE_BLOCK_K` (4096) for the dense solver: a block is one batched
  eigensolve of microseconds per k-point, and blocks much smaller than a few hundred
  k-points spend their time in per-block overhead;
- cap = :data:`WINDOWED_BLOCK_K` (64) for a windowed (SLEPc / block-Lanczos) solver:
  seconds per k-point, so a round of one block per pool must stay short enough for a stop
  signal to be honoured (the checkpoint is taken at the end of a round) and the per-block
  overhead is negligible.

A user's ``chunk`` is kept as given; :func:`idle_warning` says when it leaves pools idle.
"""

from __future__ import annotations

import math

DENSE_BLOCK_K = 4096  # largest default block of the dense solver (the former fixed default)
WINDOWED_BLOCK_K = 64  # largest default block of a windowed solver (one round ~ 64 solves)


def default_chunk(nk: int, n_pools: int, windowed: bool) -> int:
    """Default k-points per block for ``nk`` k-points dealt to ``n_pools`` pools.

    Parameters
    ----------
    nk : number of k-points of the grid (>= 1).
    n_pools : pools the blocks are dealt to (ranks for the dense solver, >= 1).
    windowed : whether the solver is windowed (seconds per k-point) rather than dense.

    Returns
    -------
    int
        The block size: the fewest rounds with blocks of at most the solver's cap, and
        within them blocks as equal as possible (every pool busy in every round but maybe
        the last).
    """
    cap = WINDOWED_BLOCK_K if windowed else DENSE_BLOCK_K
    nk, n_pools = max(int(nk), 1), max(int(n_pools), 1)
    rounds = math.ceil(nk / (n_pools * cap))
    return max(1, math.ceil(nk / (n_pools * rounds)))


def pool_loads(nk: int, chunk: int, n_pools: int) -> list[int]:
    """k-points each pool solves when blocks of ``chunk`` are dealt round-robin."""
    loads = [0] * max(n_pools, 1)
    for block in range(math.ceil(nk / chunk)):
        loads[block % len(loads)] += min(chunk, nk - block * chunk)
    return loads


def imbalance(nk: int, chunk: int, n_pools: int) -> float:
    """Expected k-pass imbalance: the busiest pool's k-points over the mean (1.00 = even).

    With equal cost per k-point this is the k-pass time over the ideal ``nk / n_pools``
    k-points' time.
    """
    return max(pool_loads(nk, chunk, n_pools)) * n_pools / nk


def idle_warning(nk: int, chunk: int, n_pools: int, given: bool) -> str | None:
    """One line when blocks of ``chunk`` leave pools idle that a smaller block would keep
    busy (None otherwise).

    Pools idle when there are fewer blocks than pools; that is only a loss when the block
    is larger than an even share ⌈nk / n_pools⌉ (with 100 k-points on 16 pools, blocks of 7
    leave one pool idle and are still the fastest layout: no warning). The default
    (:func:`default_chunk`) is never warned about. ``given``: the chunk is the user's
    ``[run] chunk``.
    """
    n_blocks = math.ceil(nk / chunk)
    if n_blocks >= n_pools or chunk <= math.ceil(nk / n_pools):
        return None
    what = "[run] chunk" if given else "the block size"
    return (f"{what} = {chunk} gives {n_blocks} block(s) of {nk} k-points for {n_pools} "
            f"pool(s): {n_pools - n_blocks} pool(s) idle in the k-pass (imbalance "
            f"{imbalance(nk, chunk, n_pools):.2f}); use chunk <= {math.ceil(nk / n_pools)} "
            "or leave [run] chunk out for the default")
