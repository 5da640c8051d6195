"""Corners across the zone boundary from solved vectors (geometry/corners.py, theory §1).

Model: a 3×3 supercell of the Haldane model with disorder (18 orbitals, all off the origin),
so that dropping D_G would change boundary fluxes by O(1). The window solver is SLEPc's
(nev = 9, the lower band group); the dense solver checks the dense path.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from mpi_util import assert_all

from qgt_mpi.geometry.chern import plaquette_flux
from qgt_mpi.geometry.corners import bloch_periodic, corner_plan, foreign_points
from qgt_mpi.models import haldane
from qgt_mpi.models.supercell import supercell
from qgt_mpi.run.driver import compute
from qgt_mpi.run.kpass import link_groups
from qgt_mpi.solvers import DenseSolver
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

NEV, TARGET, GRID = 9, -200.0, (5, 4)


class Counting:
    """A solver that counts the k-points it is asked to solve (eigenvectors only)."""

    def __init__(self, inner):
        self.inner, self.solved = inner, 0

    def solve(self, model, k, velocities=True):
        self.solved += len(k)
        return self.inner.solve(model, k, velocities)


@pytest.fixture(scope="module")
def model():
    return supercell(haldane(100.0, 30.0, 10.0, np.pi / 2), (3, 3), 20.0, 5)


def _fluxes(model, solver, start, stop, wrap):
    n1, n2 = GRID
    idx = np.arange(start, stop)
    k = np.column_stack([idx // n2 / n1, idx % n2 / n2]) @ model.reciprocal
    known = solver.solve(model, k, velocities=False).vectors
    counting = Counting(solver)
    flux = plaquette_flux(model, counting, n1, n2, start, stop, link_groups(NEV, True),
                          known, wrap)
    return flux, counting.solved


@pytest.mark.parametrize("solver", [DenseSolver(), SlepcSolver(WindowOptions(nev=NEV,
                         target=TARGET), MPI.COMM_SELF)], ids=["dense", "slepc"])
def test_wrapped_corners_equal_resolved_ones(model, solver):
    """Whole rows (0..2 of a 5×4 grid, and the last rows 3..4): same fluxes, fewer solves."""
    assert bloch_periodic(model)
    for start, stop in ((0, 12), (12, 20)):
        ref, n_ref = _fluxes(model, solver, start, stop, wrap=False)
        got, n_got = _fluxes(model, solver, start, stop, wrap=True)
        assert np.max(np.abs(got - ref)) < 1e-9
        # the block's own rows give their k + b2 column; only the next row is solved
        assert n_got == GRID[1] + 1 and n_got < n_ref
    # the whole grid in one block: every boundary corner is a wrapped own point
    ref, _ = _fluxes(model, solver, 0, 20, wrap=False)
    got, n_got = _fluxes(model, solver, 0, 20, wrap=True)
    assert n_got == 0 and np.max(np.abs(got - ref)) < 1e-9


def test_a_model_breaking_the_relation_is_detected(model):
    """Positions moved away from the ones in the phases: the check fails, corners re-solved."""
    broken = supercell(haldane(100.0, 30.0, 10.0, np.pi / 2), (3, 3), 20.0, 5)
    broken.positions = broken.positions + np.array([0.3, 0.0])[None, :] * (
        np.arange(broken.norb)[:, None] % 2)
    assert not bloch_periodic(broken)


def test_corner_plan_sends_what_each_block_needs():
    """5×4 grid, blocks of 6 points in one round of 3 pools + an idle one."""
    ranges = [(0, 6), (6, 12), (12, 18), None]
    assert foreign_points(5, 4, 0, 6).tolist() == [6, 7, 8, 9, 10]  # row 1 rest, row 2 head
    for me in range(4):
        send = corner_plan(5, 4, ranges, me)[0]
        for p, flat in send.items():  # what I send is what p receives from me
            assert corner_plan(5, 4, ranges, p)[1][me].tolist() == flat.tolist()
    assert corner_plan(5, 4, ranges, 0)[1] == {1: pytest.approx(np.arange(6, 11))}
    # block 2 (rows 3 and the head of 4) needs the rest of row 4 (18, 19: no block of this
    # round owns it) and, wrapped, row 0 columns 0..2 (from pool 0)
    assert foreign_points(5, 4, 12, 18).tolist() == [0, 1, 2, 18, 19]
    assert corner_plan(5, 4, ranges, 2)[1] == {0: pytest.approx([0, 1, 2])}
    assert corner_plan(5, 4, ranges, 3) == ({}, {})


@pytest.mark.mpi
@pytest.mark.parametrize("chunk", [GRID[1], 7, 10])
def test_chern_numbers_in_blocks_over_ranks(comm, model, chunk):
    """Blocks over the ranks (exchanged and wrapped corners) give the serial one-block result,
    with fewer corner solves than blocks that solve all their foreign corners."""
    def solver():
        return SlepcSolver(WindowOptions(nev=NEV, target=TARGET), MPI.COMM_SELF)

    window = {"delta_out": np.array([0.1]), "chern_below": None}
    args = (model, GRID, np.array([1.0]), np.array([-200.0]), np.full((1, NEV), 0.1))
    ref = compute(MPI.COMM_SELF, *args, solver=solver(), window=window, chunk=20)[2]
    counted = solver()
    got = compute(comm, *args, solver=counted, window=window, chunk=chunk)[2]
    same = np.array_equal(got["chern_groups"], ref["chern_groups"])
    worst = float(np.max(np.abs(got["chern_flux"] - ref["chern_flux"])))
    assert_all(comm, same and worst < 1e-9, f"Chern flux differs by {worst:.3g}")
    serial = solver()  # the same blocks one after the other: every foreign corner solved
    compute(MPI.COMM_SELF, *args, solver=serial, window=window, chunk=chunk)
    alone = serial.iterations["vectors_only"]
    solved = comm.allreduce(counted.iterations["vectors_only"])
    assert_all(comm, solved <= alone and (comm.size == 1 or solved < alone),
               f"{solved} corner solves, {alone} without exchange")
