"""Property tests (hypothesis) of the pure helpers that cut the work into pieces.

- ``io.writer.grid_pieces``: a flat k-range → at most three rectangles of the (N1, N2) grid
  (how every rank writes its k-resolved slab);
- ``transport.stream.sweep_units``: the (μ, δ, T) sweep → work units (theory §4.3), a
  function of the sweep only, so a checkpointed "units done" mask is valid on any rank count;
- ``geometry.corners.corner_plan``: which plaquette corners each pool of a k-pass round
  sends to which (theory §1).

All three are local and deterministic; the cases are small and few, so the module runs in
seconds (``make check``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qgt_mpi.geometry.corners import corner_plan
from qgt_mpi.io.writer import grid_pieces
from qgt_mpi.parallel import block_range
from qgt_mpi.transport.stream import MAX_UNIT_POINTS, MAX_UNITS, MIN_UNITS, sweep_units

FEW = settings(max_examples=60, deadline=None)

# --- grid_pieces -------------------------------------------------------------------------------


@st.composite
def flat_ranges(draw) -> tuple[int, int, int, int]:
    """(N1, N2, start, stop) with 0 ≤ start ≤ stop ≤ N1·N2."""
    n1, n2 = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    start = draw(st.integers(0, n1 * n2))
    return n1, n2, start, draw(st.integers(start, n1 * n2))


@FEW
@given(flat_ranges(), st.sampled_from([(), (3,), (2, 2)]))
@example((4, 5, 3, 17), ())  # tail of row 0, rows 1-2, head of row 3
@example((4, 5, 5, 15), ())  # whole rows only
@example((4, 5, 7, 7), ())  # empty
def test_grid_pieces_are_the_flat_range_as_rectangles(case, entry):
    """At most three non-empty pieces, in order, whose flat ranges tile [start, stop) and
    whose rectangles hold exactly those flat indices; writing a slab piece by piece, as the
    writer does, puts every value at its (i, j) and touches nothing else."""
    n1, n2, start, stop = case
    grid = np.arange(n1 * n2).reshape(n1, n2)
    pieces = grid_pieces(n2, start, stop)
    assert len(pieces) <= 3
    edges = [start] + [hi for _, _, hi in pieces]
    assert [lo for _, lo, _ in pieces] == edges[:-1] and edges[-1] == stop
    slab = np.arange(start, stop)[:, None] * np.ones((1, math.prod(entry)))
    slab = slab.reshape(stop - start, *entry)
    out = np.full((n1, n2, *entry), -1.0)
    for (rows, cols), lo, hi in pieces:
        assert hi > lo
        assert 0 <= rows.start < rows.stop <= n1 and 0 <= cols.start < cols.stop <= n2
        np.testing.assert_array_equal(grid[rows, cols].ravel(), np.arange(lo, hi))
        out[rows, cols] = slab[lo - start:hi - start].reshape(
            rows.stop - rows.start, cols.stop - cols.start, *entry)
    flat = out.reshape(n1 * n2, *entry)
    np.testing.assert_array_equal(flat[start:stop], slab)
    assert np.all(flat[:start] == -1) and np.all(flat[stop:] == -1)


@FEW
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 9))
def test_the_ranks_pieces_cover_the_grid_once(n1, n2, size):
    """The balanced blocks of the ranks (sizes differ by at most one, also with more ranks
    than points), cut into pieces, cover every grid point exactly once."""
    counts = np.zeros((n1, n2), dtype=int)
    sizes = []
    for rank in range(size):
        start, stop = block_range(n1 * n2, size, rank)
        sizes.append(stop - start)
        for (rows, cols), _, _ in grid_pieces(n2, start, stop):
            counts[rows, cols] += 1
    assert np.all(counts == 1)
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == n1 * n2


# --- sweep_units -------------------------------------------------------------------------------

SWEEPS = st.tuples(st.one_of(st.integers(1, 300), st.integers(1, 200_000)),  # μ (or filling)
                   st.integers(1, 3),  # δ entries
                   st.one_of(st.integers(1, 40), st.integers(1, 2000)))  # temperatures


def _runs(slices: list[slice], n: int, balanced: bool = False) -> None:
    """The slices tile [0, n) in order, non-empty, all of one length but the last — or, when
    ``balanced`` (the first-axis parts), non-increasing lengths that differ by at most one."""
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in itertools.pairwise(slices))
    lengths = [s.stop - s.start for s in slices]
    assert min(lengths) > 0
    if balanced:
        assert lengths == sorted(lengths, reverse=True) and lengths[0] - lengths[-1] <= 1
    else:
        assert all(x == lengths[0] for x in lengths[:-1]) and lengths[-1] <= lengths[0]


@FEW
@given(SWEEPS)
@example((1000, 1, 10_000))  # temperatures grouped in tens
@example((300_000 // 3, 2, 1))  # the first axis split by the point bound
@example((1, 1, 1))
def test_sweep_units_partition_the_sweep_within_the_bounds(sweep):
    """δ-major, then T, then the first axis; the runs tile each axis, so every (μ, δ, T) is
    in exactly one unit; at most MAX_UNIT_POINTS points per unit; temperatures grouped only
    beyond MAX_UNITS units, and then up to about MAX_UNITS units (more only when the point
    bound stops the grouping)."""
    n_first, n_delta, n_t = sweep
    units = sweep_units(n_first, n_delta, n_t)
    temps = list(dict.fromkeys((u[1].start, u[1].stop) for u in units))
    parts = list(dict.fromkeys((u[2].start, u[2].stop) for u in units))
    temps, parts = [slice(*t) for t in temps], [slice(*p) for p in parts]
    assert units == [(d, t, m) for d in range(n_delta) for t in temps for m in parts]
    _runs(temps, n_t)
    _runs(parts, n_first, balanced=True)
    block, size = temps[0].stop, parts[0].stop
    assert block * size <= MAX_UNIT_POINTS
    if n_delta * len(parts) * n_t <= MAX_UNITS:
        assert block == 1
    if len(units) > MAX_UNITS + n_delta * len(parts):
        assert block == MAX_UNIT_POINTS // size


@FEW
@given(SWEEPS)
def test_sweep_units_give_every_rank_work(sweep):
    """Small sweeps: one point per unit; larger ones: at least MIN_UNITS units."""
    n_first, n_delta, n_t = sweep
    points = n_first * n_delta * n_t
    n_units = len(sweep_units(n_first, n_delta, n_t))
    if points <= MIN_UNITS:
        assert n_units == points
    else:
        assert n_units >= MIN_UNITS


def test_sweep_units_at_least_min_units_as_documented():
    """17 μ × 1 δ × 1 T: 16 units (the parts used to be ceil(17/ceil(17/16)) = 9)."""
    assert len(sweep_units(17, 1, 1)) == MIN_UNITS


# --- corner_plan -------------------------------------------------------------------------------


@st.composite
def rounds(draw) -> tuple[int, int, list[tuple[int, int] | None]]:
    """A grid, a block size and one round: distinct blocks on some pools, others idle."""
    n1, n2 = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    chunk = draw(st.integers(1, n1 * n2))
    n_blocks = math.ceil(n1 * n2 / chunk)
    n_pools = draw(st.integers(1, 5))
    blocks = draw(st.lists(st.integers(0, n_blocks - 1), max_size=n_pools, unique=True))
    ranges = [(b * chunk, min((b + 1) * chunk, n1 * n2)) for b in blocks]
    ranges += [None] * (n_pools - len(ranges))
    return n1, n2, draw(st.permutations(ranges))


def _corners(n1: int, n2: int, start: int, stop: int) -> set[int]:
    """Flat indices of the four corners of every plaquette based in [start, stop), wrapped."""
    out = set()
    for flat in range(start, stop):
        i, j = divmod(flat, n2)
        for di, dj in ((0, 0), (1, 0), (1, 1), (0, 1)):
            out.add((i + di) % n1 * n2 + (j + dj) % n2)
    return out


@FEW
@given(rounds())
@example((5, 4, [(0, 6), (6, 12), (12, 18), None]))  # tests/test_corners.py's round
def test_corner_plan_assigns_every_corner_once(case):
    """Every pool's plan (computed by each rank alone) agrees with every other's: what q
    sends to p is what p receives from q. Each corner a pool needs is its own, or comes
    from exactly the pool whose block holds it, or is held by no block of the round (it is
    solved where needed); idle pools send and receive nothing; nobody sends to itself."""
    n1, n2, ranges = case
    plans = [corner_plan(n1, n2, ranges, me) for me in range(len(ranges))]
    for p, (send, recv) in enumerate(plans):
        assert p not in send and p not in recv
        for q, flat in send.items():
            np.testing.assert_array_equal(plans[q][1][p], flat)
        for q, flat in recv.items():
            np.testing.assert_array_equal(plans[q][0][p], flat)
        if ranges[p] is None:
            assert send == {} and recv == {}
            continue
        start, stop = ranges[p]
        need = _corners(n1, n2, start, stop) - set(range(start, stop))
        got = np.concatenate([*recv.values(), np.zeros(0, dtype=int)])
        assert got.size == len(set(got.tolist()))  # from one pool each
        for q, flat in recv.items():
            assert np.all(np.diff(flat) > 0) and flat.size > 0
            assert np.all((flat >= ranges[q][0]) & (flat < ranges[q][1]))
        held = {f for r in ranges if r is not None for f in range(*r)}
        assert set(got.tolist()) == need & held
