"""Block Lanczos window and the derived Sternheimer tolerance (solvers/block_lanczos.py,
solvers/sternheimer.py) against SLEPc's Krylov–Schur and the dense solver (theory §5).

The model is a 12×12 supercell of the Haldane model (288 orbitals) with seeded on-site
disorder (no exact degeneracies), window of 8 bands around the centre of the lower band
group; every k-point is generic.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from mpi_util import assert_all

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.models import haldane
from qgt_mpi.models.supercell import supercell
from qgt_mpi.solvers import DenseSolver
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions
from qgt_mpi.solvers.sternheimer import cg_tolerance

NEV, TARGET = 8, -150.0
K = np.array([[0.013, 0.021], [0.11, -0.05], [0.0, 0.0]])


@pytest.fixture(scope="module")
def model():
    return supercell(haldane(100.0, 30.0, 10.0, np.pi / 2), (12, 12), 20.0, 3)


def _solve(model, comm=MPI.COMM_SELF, **opts):
    return SlepcSolver(WindowOptions(nev=NEV, target=TARGET, **opts), comm).solve(model, K)


def test_block_lanczos_matches_dense_and_krylov_schur(model):
    """Energies to 1e-9 meV; full metric/curvature (in + out of window) to 1e-8 of dense."""
    dense = DenseSolver().solve(model, K)
    sel = np.sort(np.argsort(np.abs(dense.energies - TARGET), axis=1)[:, :NEV], axis=1)
    rows = np.arange(len(K))[:, None]
    block = _solve(model, method="block")
    ks = _solve(model, method="krylovschur")
    assert np.max(np.abs(block.energies - dense.energies[rows, sel])) < 1e-9
    assert np.max(np.abs(block.energies - ks.energies)) < 1e-9
    curv_d, metric_d = band_geometry(dense)
    curv_b, metric_b = band_geometry(block)
    scale = np.max(np.abs(metric_d[rows, sel]))
    assert np.max(np.abs(metric_b - metric_d[rows, sel])) < 1e-8 * scale
    assert np.max(np.abs(curv_b - curv_d[rows, sel])) < 1e-8 * scale
    assert np.max(np.abs(block.metric_out - ks.metric_out)) < 1e-8 * scale


def test_block_lanczos_refuses_an_impossible_budget(model):
    """One block of 4 cannot hold 12 converged pairs: a clear ArithmeticError."""
    with pytest.raises(ArithmeticError, match="block Lanczos did not converge"):
        _solve(model, method="block", max_it=1)


def test_metric_tol_bounds_the_out_of_window_error(model):
    """The Sternheimer part meets its stated relative accuracy with fewer CG iterations.

    metric_tol = 1e-5 against 1e-13: the difference of metric_out, relative to its largest
    entry, stays below 1e-5, and the loose run takes fewer iterations.
    """
    runs = []
    for tol in (1e-5, 1e-13):
        solver = SlepcSolver(WindowOptions(nev=NEV, target=TARGET, metric_tol=tol,
                                           method="block"), MPI.COMM_SELF)
        runs.append((solver.solve(model, K), solver.iterations["sternheimer"]))
    (loose, its_loose), (tight, its_tight) = runs
    rel = np.max(np.abs(loose.metric_out - tight.metric_out)) / np.max(tight.metric_out)
    assert rel < 1e-5
    assert its_loose < its_tight


def test_cg_tolerance_follows_the_condition_bound():
    """κ = (1 + r)/(1 − r): r = 1/2 gives κ = 3 and ε = (√(1 + a) − 1)/3."""
    eps = cg_tolerance(np.array([-1.0, 2.0]), 4.0, 1e-6)
    assert eps == pytest.approx((np.sqrt(1 + 1e-6) - 1) / 3, rel=1e-12)
    assert cg_tolerance(np.array([1.0]), 1.0, 1e-6) < 1e-12  # r → 1: no usable bound


@pytest.mark.mpi
def test_block_lanczos_pool_of_all_ranks_matches_one_rank(comm, model):
    """A pool of every rank (distributed rows, pool reductions) gives the one-rank result."""
    one = _solve(model, method="block")
    pool = comm.Split(color=0, key=comm.rank)
    many = _solve(model, pool, method="block")
    pool.Free()
    scale = np.max(np.abs(one.metric_out))
    worst = max(float(np.max(np.abs(many.energies - one.energies))),
                float(np.max(np.abs(many.metric_out - one.metric_out)) / scale))
    assert_all(comm, worst < 1e-9, f"pool of {comm.size} differs from one rank by {worst:.3g}")
