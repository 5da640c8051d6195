"""Windowed SLEPc solver against the dense solver (theory §5): eigenpairs, out-of-window
geometry, transport through the far-off-resonance limit, pool layouts, collective failure.

The model is a 3×3 supercell of the Haldane model with seeded on-site disorder (no exact
degeneracies, so per-band quantities are basis independent); the window is the lower band
group (9 of 18 bands) around its centre, separated from the upper group by a ~290 meV gap.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from mpi_util import assert_all

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.models import haldane
from qgt_mpi.models.supercell import supercell
from qgt_mpi.parallel import CollectiveError
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers import DenseSolver
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

NEV, TARGET = 9, -200.0
TEMPS, MUS = np.array([1.0, 10.0]), np.array([-250.0, -200.0, -150.0])
KEYS = ("sigma_xx", "sigma_xx_geometric", "seebeck", "kappa_xx")


@pytest.fixture(scope="module")
def model():
    return supercell(haldane(100.0, 30.0, 10.0, np.pi / 2), (3, 3), 20.0, 5)


def _window(model, k, **opts):
    """Dense eigenpairs restricted to the NEV bands nearest TARGET, and the windowed solve."""
    dense = DenseSolver().solve(model, k)
    sel = np.sort(np.argsort(np.abs(dense.energies - TARGET), axis=1)[:, :NEV], axis=1)
    win = SlepcSolver(WindowOptions(nev=NEV, target=TARGET, **opts), MPI.COMM_SELF)
    return dense, sel, win.solve(model, k)


def test_window_eigenpairs_and_full_geometry_match_dense(model):
    """Energies, velocities and the full metric/curvature (in + out of window) match dense."""
    k = np.array([[0.05, 0.11], [1.3, -0.7], [0.0, 0.0]])
    dense, sel, win = _window(model, k)
    rows = np.arange(k.shape[0])[:, None]
    assert np.max(np.abs(win.energies - dense.energies[rows, sel])) < 1e-9
    speeds = np.abs(np.einsum("ikn n->ikn", win.velocities))
    ref = np.abs(np.einsum("ikn n->ikn", dense.velocities))[:, rows, sel]
    assert np.max(np.abs(speeds - ref)) < 1e-8 * np.max(ref)
    curv_d, metric_d = band_geometry(dense)
    curv_w, metric_w = band_geometry(win)
    scale = np.max(np.abs(metric_d[rows, sel]))
    error = np.max(np.abs(metric_w - metric_d[rows, sel]))
    assert error < 1e-8 * scale
    assert np.max(np.abs(curv_w - curv_d[rows, sel])) < 1e-8 * scale
    # Dropping the out-of-window part (only the padding pairs left) is a visible error.
    _, _, bare = _window(model, k, out_of_window=False, pad=2)
    assert np.max(np.abs(band_geometry(bare)[1] - metric_d[rows, sel])) > max(1e-2, 1e4 * error)


def test_window_edge_inside_a_degenerate_cluster_is_refused():
    """At K = 0 the 2×2 supercell has the three M points folded together (C3): a window of
    one band at the lower M energy cuts that threefold cluster and must be refused."""
    clean = supercell(haldane(100.0, 30.0, 10.0, np.pi / 2), (2, 2))
    energies = np.linalg.eigvalsh(clean.hamiltonian(np.zeros(2))[0][0])
    _, counts = np.unique(np.round(energies, 8), return_counts=True)
    triple = np.round(energies, 8)[np.isin(np.round(energies, 8),
                                           np.unique(np.round(energies, 8))[counts == 3])][0]
    solver = SlepcSolver(WindowOptions(nev=1, target=float(triple), pad=3), MPI.COMM_SELF)
    with pytest.raises(ArithmeticError, match="degenerate cluster"):
        solver.solve(clean, np.zeros((1, 2)))


def _transport(comm, model, delta, solver=None):
    nb = NEV if solver is not None else model.nbands
    window = None if solver is None else {"delta_out": np.array([delta]), "chern_below": None}
    return compute(comm, model, (6, 6), TEMPS, MUS, np.full((1, nb), delta), solver=solver,
                   window=window)[1:]


def test_windowed_transport_and_chern_numbers_match_dense(model):
    """σ_xx (both parts), S, κ to 1e-8; σ_xy error O(δ/Δε) falls with δ; Chern numbers equal."""
    errors = []
    for delta in (0.1, 0.01):
        tr_d, geo_d = _transport(MPI.COMM_SELF, model, delta)
        solver = SlepcSolver(WindowOptions(nev=NEV, target=TARGET), MPI.COMM_SELF)
        tr_w, geo_w = _transport(MPI.COMM_SELF, model, delta, solver)
        for key in KEYS:  # the geometric part alone carries the O((δ/Δε)²) far-pair error
            rel = np.max(np.abs(tr_w[key] - tr_d[key])) / np.max(np.abs(tr_d[key]))
            assert rel < (1e-5 if key == "sigma_xx_geometric" else 1e-8), (key, delta, rel)
        errors.append(np.max(np.abs(tr_w["sigma_xy"] - tr_d["sigma_xy"])))
        assert np.array_equal(geo_w["chern_groups"][:NEV], geo_d["chern_groups"][:NEV])
        # whole window = lower band group of the dense run (groups (0, n) follow the bands)
        assert geo_w["chern_groups"][-1] == geo_d["chern_groups"][model.nbands + NEV - 2] == -1
        assert np.max(np.abs(geo_w["metric_integral"] - geo_d["metric_integral"][:NEV])) < 1e-9
    assert errors[1] < errors[0] / 5 and errors[1] < 2e-4


@pytest.mark.mpi
def test_pool_layouts_agree(comm, model):
    """One pool of all ranks and one pool per rank give the same sums (≤ 1e-10)."""
    results = []
    for per_pool in sorted({1, comm.size}):
        pool = comm.Split(color=comm.rank // per_pool, key=comm.rank)
        solver = SlepcSolver(WindowOptions(nev=NEV, target=TARGET), pool)
        results.append(_transport(comm, model, 0.05, solver))
        pool.Free()
    ref_tr, ref_geo = _transport(MPI.COMM_SELF, model, 0.05,
                                 SlepcSolver(WindowOptions(nev=NEV, target=TARGET), MPI.COMM_SELF))
    for tr, geo in results:
        worst = max(float(np.max(np.abs(tr[k] - ref_tr[k])) / np.max(np.abs(ref_tr[k])))
                    for k in (*KEYS, "sigma_xy"))
        assert_all(comm, worst < 1e-10, f"pool layout differs by {worst:.3g}")
        assert_all(comm, np.array_equal(geo["chern_groups"], ref_geo["chern_groups"]), "Chern")


@pytest.mark.mpi
def test_slepc_failure_stops_every_rank_with_the_k_point(comm, model):
    """Non-convergence (one restart allowed) on the ranks' own k-points: one agreed error."""
    solver = SlepcSolver(WindowOptions(nev=NEV, target=TARGET, ncv=NEV + 6, max_it=1),
                         MPI.COMM_SELF)
    with pytest.raises(CollectiveError, match=r"SLEPc converged .* at k = \("):
        _transport(comm, model, 0.05, solver)
