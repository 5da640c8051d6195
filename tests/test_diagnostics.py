"""Undefined values, ungapped Chern numbers and coarse grids are flagged."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from decks import HALDANE, deck_text, haldane_table, kgrid_table, sweep_table, table
from mpi4py import MPI
from runner import qgt

from qgt_mpi.models import haldane
from qgt_mpi.run import diagnostics
from qgt_mpi.run.driver import compute


def _geometry(model, n):
    _, _, geo = compute(MPI.COMM_SELF, model, (n, n), np.array([1.0]), np.array([0.0]),
                        np.array([[0.01, 0.01]]))
    return geo


@pytest.mark.parametrize("n", [24, 25])
def test_gapless_haldane_is_flagged_gapped_one_is_not(n):
    """φ = 0, M = 0: Dirac points at K, K' (on the grid for n = 24, between points for 25);
    the link Chern numbers are integers either way but must be flagged, never trusted."""
    gapless = _geometry(haldane(1.0, 0.3, 0.0, 0.0), n)
    flags = diagnostics.gapped_bands(gapless["min_gap"], gapless["bandwidth"], (n, n), 3.0)
    assert not flags.any()
    # Haldane at φ = π/2: direct gap 6√3 t2 − ... stays ≳ 3 meV everywhere (theory §2.2).
    gapped = _geometry(haldane(1.0, 0.3, 0.0, math.pi / 2), n)
    assert gapped["min_gap"][0] > 1.0
    flags = diagnostics.gapped_bands(gapped["min_gap"], gapped["bandwidth"], (n, n), 3.0)
    assert flags.all()


def test_flag_undefined_only_where_sigma_vanishes():
    tr = {"sigma_xx": np.array([0.0, 2.0]), "seebeck": np.array([np.nan, 1.0]),
          "kappa_xx": np.array([-np.inf, 3.0]), "lorenz_ratio": np.array([np.nan, 1.5])}
    masks = diagnostics.flag_undefined(tr)
    for key in diagnostics.UNDEFINED_IF_NO_SIGMA:
        assert masks[key].tolist() == [True, False]
        assert math.isnan(tr[key][0]) and math.isfinite(tr[key][1])


def test_full_tensor_outputs_are_flagged_where_not_finite():
    """seebeck_xx/xy, kappa_xx_full, kappa_xy, lorenz_ratio_* were NaN with no mask."""
    tr = {"sigma_xx": np.array([1.0, 2.0]),
          **{k: np.array([1.0, 2.0]) for k in diagnostics.UNDEFINED_IF_NO_SIGMA},
          **{k: np.array([np.nan, 1.0]) for k in diagnostics.UNDEFINED_IF_SINGULAR}}
    tr["kappa_xy"] = np.array([np.inf, 1.0])
    masks = diagnostics.flag_undefined(tr)
    for key in diagnostics.UNDEFINED_IF_SINGULAR:
        assert masks[key].tolist() == [True, False], key
        assert math.isnan(tr[key][0]) and tr[key][1] == 1.0
    for key in diagnostics.UNDEFINED_IF_NO_SIGMA:  # sigma_xx != 0: defined
        assert not masks[key].any()


def test_coarse_grid_reasons():
    w = np.array([3.0, 3.0])
    assert diagnostics.coarse_grid_reasons((96, 96), w, np.array([[0.5, 0.5]]),
                                           np.array([1.0])) == []
    assert diagnostics.coarse_grid_reasons((4, 96), w, np.array([[0.5, 0.5]]),
                                           np.array([1.0]))[0].startswith("fewer than 6")
    # band step π·3/24 ≈ 0.39 meV > δ + π k_B T ≈ 0.01 + 0.027 meV
    assert "change by up to" in diagnostics.coarse_grid_reasons(
        (24, 24), w, np.array([[0.01, 0.01]]), np.array([0.1]))[0]


@pytest.mark.subprocess
def test_single_k_point_run_flags_nan_in_the_file(tmp_path):
    """A 1×1 grid: σ_xx = 0 mid-gap, so S, κ, L are NaN, masked, counted and warned about."""
    deck = tmp_path / "one.toml"
    deck.write_text(deck_text(HALDANE, kgrid_table(1), sweep_table([0.1], delta=[0.001]),
                              table("output", kresolved=False)))
    out = tmp_path / "one.h5"
    proc = qgt(["run", str(deck), "-o", str(out)], np=2, timeout=120)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stdout.splitlines() if "warning: transport" in ln]
    assert len(warnings) == 1 and "sigma_xx = 0" in warnings[0]
    assert "warning: k-grid 1x1" in proc.stdout
    with h5py.File(out, "r") as f:
        tr = f["transport"]
        assert tr["sigma_xx"][0, 0, 0] == 0.0
        for key in diagnostics.UNDEFINED_IF_NO_SIGMA:
            assert np.isnan(tr[key][0, 0, 0]) and tr[f"{key}_undefined"][0, 0, 0] == 1
            assert tr.attrs[f"n_undefined_{key}"] == 1
        for key in diagnostics.UNDEFINED:  # every NaN of these outputs is flagged and counted
            nan = np.isnan(tr[key][()])
            assert np.array_equal(nan, tr[f"{key}_undefined"][()] == 1), key
            assert tr.attrs[f"n_undefined_{key}"] == int(nan.sum()), key
        assert np.all(np.isnan(f["geometry/trace_violation"][()]))
        assert "chern_gapped" in f["geometry"]


def test_largest_plaquette_flux_resolves_the_curvature():
    """/geometry/chern_max_flux: for a well-gapped band the largest flux through one
    plaquette falls like the plaquette area (1/N², ×4 per doubling); a curvature peak that a
    coarse grid cannot resolve (M = 1.2 on 7×7: K between grid points) exceeds π/2."""
    smooth = [_geometry(haldane(1.0, 0.3, 0.2, math.pi / 2), n)["chern_max_flux"][0]
              for n in (12, 24, 48)]
    assert 3.3 < smooth[0] / smooth[1] < 4.5 and 3.6 < smooth[1] / smooth[2] < 4.4
    peaked = _geometry(haldane(1.0, 0.3, 1.2, math.pi / 2), 7)
    assert peaked["chern_max_flux"][0] > diagnostics.MAX_PLAQUETTE_FLUX
    assert np.abs(peaked["chern_flux"][:2]).max() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.subprocess
def test_unresolved_curvature_is_warned_and_written(tmp_path):
    """The same 7×7 deck through the CLI on 2 ranks: one warning line naming the bands, and
    the per-band flux in the file."""
    deck = tmp_path / "coarse.toml"
    deck.write_text(deck_text(haldane_table(mass=1.2), kgrid_table(7), sweep_table(delta=[0.05])))
    out = tmp_path / "coarse.h5"
    proc = qgt(["run", str(deck), "-o", str(out)], np=2, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "flux through one plaquette" in ln]
    assert len(lines) == 1 and "bands 0-1 (2 of 2)" in lines[0], proc.stdout
    with h5py.File(out, "r") as f:
        flux = f["geometry/chern_max_flux"][()]
        assert flux.shape == (2,) and flux.min() > diagnostics.MAX_PLAQUETTE_FLUX
        assert f["geometry/chern_max_flux"].attrs["units"] == "1"
