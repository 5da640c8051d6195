"""Windowed SLEPc solves of the Bistritzer–MacDonald model against dense ones (theory §2.5, §5).

BM at 1.05°, w0/w1 = 0.8, 3 shells (148 plane waves), sublattice mass 10 meV (C2zT broken, so
the two flat bands carry C = ±1 per valley). The window is the two flat bands around 0 meV.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.run.diagnostics import window_isolated
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers import DenseSolver
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions


@pytest.fixture(scope="module")
def model():
    return bm_continuum(theta=1.05, w0=88.0, w1=110.0, shells=3, valley=1, mass=10.0)


def _windowed(model, nev, grid=(6, 6), mu=(0.0,), temps=(1.0,), delta=0.01, chern_below=None):
    solver = SlepcSolver(WindowOptions(nev=nev, target=0.0), MPI.COMM_SELF)
    return compute(MPI.COMM_SELF, model, grid, np.array(temps), np.array(mu),
                   np.full((1, nev), delta), solver=solver,
                   window={"delta_out": np.array([delta]), "chern_below": chern_below})[1:]


def test_flat_band_geometry_matches_dense(model):
    """Window energies, metric and curvature of the flat bands = dense ones (≤1e-8)."""
    k = np.array([[0.0, 0.0], [0.05, 0.02], [0.21, -0.13]])
    dense = DenseSolver().solve(model, k)
    flat = slice(model.norb // 2 - 1, model.norb // 2 + 1)
    win = SlepcSolver(WindowOptions(nev=2, target=0.0), MPI.COMM_SELF).solve(model, k)
    assert np.max(np.abs(win.energies - dense.energies[:, flat])) < 1e-9
    curv_d, metric_d = band_geometry(dense)
    curv_w, metric_w = band_geometry(win)
    scale = np.max(np.abs(metric_d[:, flat]))
    assert np.max(np.abs(metric_w - metric_d[:, flat])) < 1e-8 * scale
    assert np.max(np.abs(curv_w - curv_d[:, flat])) < 1e-8 * scale
    # nearly all of the flat bands' geometry comes from outside the two-band window
    assert np.max(np.abs(win.metric_out)) > 0.5 * scale


def test_flat_band_chern_numbers_and_quantized_hall(model):
    """C = (+1, −1) for the flat bands; with μ in the gap between them, T, δ → 0:
    σ_xy → −(C_below + C_lower) e²/h = −1 (theory §3 clean limit), C_below = 0 given."""
    tr, geo = _windowed(model, 2, mu=(0.0,), temps=(0.2,), delta=0.001, chern_below=0)
    assert geo["chern_groups"][:2].tolist() == [1, -1]
    assert window_isolated(geo)
    # 2e-3: the Kubo sum integrates the curvature on the 6×6 grid (link Chern numbers are exact)
    assert abs(tr["sigma_xy"].item() + 1.0) < 5e-3
    assert tr["sigma_xx"].item() < 1e-3  # insulating between the flat bands


def test_non_isolated_window_is_detected(model):
    """Six bands around 0 meV are not a band group at 1.05° (the remote bands disperse past
    the next ones): the run must say so instead of mixing bands between k-points."""
    geo = _windowed(model, 6)[1]
    assert not window_isolated(geo)


def test_superfluid_metric_of_a_window_band_equals_the_dense_scan(model):
    """theory §6 on a window: the k-pass's metric integral (in + out of window) and Chern number
    of the lower flat band equal the dense solver's own scan of band 73 of 148."""
    from qgt_mpi.io.deck import InputError, SuperfluidSpec
    from qgt_mpi.superfluid import compute_superfluid, scan_band, scan_from_geometry

    geo = _windowed(model, 2, grid=(6, 6))[1]
    window = scan_from_geometry(geo, 0)
    dense = scan_band(MPI.COMM_SELF, model, model.norb // 2 - 1, (6, 6))
    assert window.chern == dense.chern == 1
    assert np.max(np.abs(window.metric - dense.metric)) < 1e-9 * np.max(np.abs(dense.metric))
    assert abs(window.e_min - dense.e_min) < 1e-9 and abs(window.e_max - dense.e_max) < 1e-9
    spec = SuperfluidSpec(U=1.0, filling=0.5, n_orb=148, band=0,
                          temperature=np.array([0.01]), minimal_metric=True)
    with pytest.raises(InputError, match="minimal_metric"):
        compute_superfluid(MPI.COMM_SELF, model, spec, (6, 6), geometry=geo)


def test_filled_bands_below_enter_every_hall_moment(model):
    """C_below shifts σ_xy(ε) by −C_below e²/h at every ε (theory §5): σ_xy moves by exactly
    −C_below, α_xy (first moment, ∫(ε − μ)(−f')dε = 0) does not move, S_xx changes."""
    tr0 = _windowed(model, 2, mu=(-3.0, 0.0), temps=(2.0, 8.0), delta=0.05, chern_below=0)[0]
    tr1 = _windowed(model, 2, mu=(-3.0, 0.0), temps=(2.0, 8.0), delta=0.05, chern_below=2)[0]
    assert np.max(np.abs(tr1["sigma_xy"] - tr0["sigma_xy"] + 2.0)) < 1e-12
    assert np.max(np.abs(tr1["alpha_xy"] - tr0["alpha_xy"])) < 1e-12 * np.max(
        np.abs(tr0["alpha_xy"]))
    assert np.max(np.abs(tr1["sigma_xx"] - tr0["sigma_xx"])) == 0.0
