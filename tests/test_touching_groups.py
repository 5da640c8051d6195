"""Touching bands are a group (theory §5.7), warnings summarise index ranges, and a window is
isolated only when no band can enter it between neighbouring k-points (theory §5.5, Eq. 5.5a).

The Bistritzer–MacDonald model (1.05°, 3 shells, 148 bands, one valley, C2zT) on a 6×6 grid
holds the moiré K, K': its two flat bands touch there, and most remote bands touch each other
somewhere on the grid. Before touching groups existed their per-band numbers were 1e5–1e20.
"""

from __future__ import annotations

import itertools
import math
import re

import h5py
import numpy as np
import pytest
from decks import deck_text, kgrid_table, sweep_table, table
from hypothesis import given
from hypothesis import strategies as st
from mpi4py import MPI
from mpi_util import assert_all
from runner import REPO, qgt, run_deck

from qgt_mpi.geometry.bands import band_geometry, group_geometry
from qgt_mpi.geometry.chern import GROUP_MAX, touching_candidates
from qgt_mpi.geometry.summary import GeometrySummary, touching_gaps, touching_groups
from qgt_mpi.io.deck import load_deck
from qgt_mpi.models import build_flattened, build_model, haldane, kgrid_points, tight_binding
from qgt_mpi.run import diagnostics
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers import DenseSolver, Eigenpairs

BM = {"theta": 1.05, "shells": 3}
FLAT = (73, 74)  # the flat bands of BM with 3 shells (148 bands)
BM_DECK = deck_text(table("model", kind="bm_continuum", **BM), table("solver", kind="dense"),
                    kgrid_table(6), sweep_table(), title="BM touching")


def _compute(comm, model, n: int, chunk: int = 4096):
    nb = model.nbands
    return compute(comm, model, (n, n), np.array([1.0]), np.array([0.0]),
                   np.full((1, nb), 0.1), chunk=chunk)[2]


@pytest.fixture(scope="module")
def bm_file(tmp_path_factory) -> tuple[str, str]:
    """The BM deck run serially through the CLI: (output path, stdout)."""
    out, proc = run_deck(tmp_path_factory.mktemp("bm"), "bm", BM_DECK, np=0)
    return str(out), proc.stdout


# -- item 8: index ranges ----------------------------------------------------------------

@given(st.sets(st.integers(min_value=0, max_value=300)))
def test_index_ranges_expand_back_to_the_input(values):
    ranges = diagnostics.index_ranges(list(values))
    expanded = [n for a, b in ranges for n in range(a, b + 1)]
    assert expanded == sorted(values)
    assert all(a <= b for a, b in ranges)
    assert all(b1 + 1 < a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))


def test_describe_indices():
    bands = [*range(120), *range(124, 244)]
    assert diagnostics.describe_indices(bands, 244) == "bands 0-119, 124-243 (240 of 244)"
    assert diagnostics.describe_indices(np.array([5]), 244) == "band 5 (1 of 244)"
    many = diagnostics.describe_indices(range(0, 40, 2), 40)
    assert many.endswith("... and 12 more (20 of 40)") and many.count(",") == 8


# -- item 5: group geometry ----------------------------------------------------------------

def _kagome(soc: bool):
    """Kagome tight-binding model of inputs/kagome_flat.toml, with or without its SOC."""
    config = load_deck(str(REPO / "inputs/kagome_flat.toml"))
    p = dict(config.model.params)
    hops = dict(p["hoppings"])
    keep = np.ones(hops["t"].shape, bool) if soc else hops["t"].imag == 0
    return tight_binding(p["lattice"], p["positions"], {k: v[keep] for k, v in hops.items()},
                         partners="refuse")


def test_group_tensor_is_the_complement_projector():
    """Eq. 5.7a: the group of bands 1, 2 of a 3-band model has the projector 1 − P_0, so its
    metric equals band 0's and its curvature is −Ω_0, at every k (gapped kagome + SOC)."""
    model = _kagome(soc=True)
    k = np.random.default_rng(3).uniform(-4, 4, (40, 2))
    eig = DenseSolver().solve(model, k)
    curvature, metric = band_geometry(eig)
    g_curv, g_metric = group_geometry(eig, [(1, 3), (0, 2)])
    scale = np.abs(metric).max()
    np.testing.assert_allclose(g_metric[:, 0], metric[:, 0], atol=1e-12 * scale)
    np.testing.assert_allclose(g_curv[:, 0], -curvature[:, 0], atol=1e-12 * scale)
    np.testing.assert_allclose(g_metric[:, 1], metric[:, 2], atol=1e-12 * scale)


def test_group_tensor_is_finite_where_its_bands_touch():
    """Plain kagome at Γ: the flat band touches band 1 (exactly); the group of both is band 0's
    complement, finite, while per-band the pair is degenerate."""
    model = _kagome(soc=False)
    eig = DenseSolver().solve(model, np.array([[0.0, 0.0], [0.3, 0.1]]))
    assert eig.energies[0, 2] - eig.energies[0, 1] < 1e-10
    curvature, metric = band_geometry(eig)
    g_curv, g_metric = group_geometry(eig, [(1, 3)])
    assert np.all(np.isfinite(g_metric)) and np.abs(g_metric).max() < 1e3
    np.testing.assert_allclose(g_metric[:, 0], metric[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_curv[:, 0], -curvature[:, 0], atol=1e-10)


def test_touching_criterion():
    """Eq. 5.7b: an exact degeneracy always closes a gap; a near one only if it is small
    against the energy range and a pair across it puts more than π through a plaquette."""
    gaps, bound = np.array([0.0, 1e-3, 1e-3, 5.0]), np.array([0.0, 1e6, 1.0, 1e6])
    closed = touching_gaps(gaps, bound, scale=10.0, area=0.01)
    assert closed.tolist() == [True, True, False, False]
    assert touching_groups(np.array([True, True, False, False])) == [(0, 3)]
    assert touching_groups(np.array([False, True, False, True])) == [(1, 3), (3, 5)]
    assert touching_groups(np.zeros(0, bool)) == []
    cands = touching_candidates(10)
    assert (0, 2) in cands and (2, 2 + GROUP_MAX) in cands and (0, GROUP_MAX + 1) not in cands


@pytest.mark.subprocess
def test_bm_flat_bands_are_a_group(bm_file):
    """The file: the flat bands are one group with a finite integer Chern number and group
    metric; their per-band numbers are NaN and flagged; nothing in /geometry exceeds 1e6."""
    path, stdout = bm_file
    with h5py.File(path, "r") as f:
        g = f["geometry"]
        undefined = g["band_undefined"][()].astype(bool)
        assert undefined[list(FLAT)].all() and not undefined[0] and not undefined[-1]
        for key in ("chern", "chern_curvature", "trace_integral", "omega_I", "trace_violation",
                    "chern_max_flux"):
            assert np.all(np.isnan(g[key][()][undefined])), key
            assert np.all(np.isfinite(g[key][()][~undefined]) | (key == "trace_violation"))
        assert np.all(np.isnan(g["metric_integral"][()][undefined]))
        bands = g["group_bands"][()].tolist()
        flat = bands.index(list(FLAT))
        assert g["group_computed"][flat] == 1
        chern = g["group_chern"][flat]
        assert chern == 0 and abs(g["group_chern_curvature"][flat]) < 1e-9  # C2zT: Ω ≡ 0
        metric = g["group_metric_integral"][flat]
        assert np.all(np.isfinite(metric)) and 0.1 < metric[0] < 10
        assert g["group_trace_integral"][flat] >= abs(chern)
        for name, dset in g.items():
            if dset.dtype.kind in "iuf":
                values = dset[()].astype(float)
                assert np.all(np.abs(values[np.isfinite(values)]) <= 1e6), name
    count = f"({int(undefined.sum())} of 148)"
    warnings = [ln for ln in stdout.splitlines() if ln.startswith("warning")]
    touch = [ln for ln in warnings if "touch on this 6x6 grid" in ln]
    assert len(touch) == 1 and count in touch[0] and len(touch[0]) < 1000
    assert all(not re.search(r"\[\d+, \d+, \d+", ln) for ln in warnings), warnings
    info = qgt(["info", path, "--group", "geometry"]).stdout
    assert "  touching: bands 1-" in info and count in info
    assert re.search(r"group bands 73-74: Chern 0; .*\(1/2pi\)int Tr g \d", info), info


@pytest.mark.subprocess
def test_bm_geometry_opens_as_netcdf(bm_file):
    """The group datasets carry their conventions (xarray, h5netcdf)."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    ds = xr.open_dataset(bm_file[0], engine="h5netcdf", group="geometry")
    assert ds["group_metric_integral"].dims == ("touching_group", "component")
    assert ds["group_bands"].dims == ("touching_group", "group_end")
    assert ds["band_undefined"].attrs["long_name"]
    ds.close()


def test_isolated_bands_are_unchanged():
    """Flattened Haldane (isolated C = ±1 bands): no group, no NaN, integer Chern numbers,
    and the integrated metric is exactly the grid sum of the per-band metric."""
    model = build_flattened(haldane(1.0, 0.3, 0.2, 1.1), 0.5)
    n = 12
    geo = _compute(MPI.COMM_SELF, model, n)
    assert not geo["band_undefined"].any() and geo["group_bands"].shape == (0, 2)
    assert geo["chern_groups"].dtype.kind == "i" and list(geo["chern_groups"][:2]) == [-1, 1]
    metric = band_geometry(DenseSolver().solve(model, kgrid_points(model.reciprocal, n, n, 0,
                                                                   n * n)))[1]
    direct = (metric.sum(axis=0).T * (1.0 / (n * n * model.cell_area))).T
    assert np.array_equal(geo["metric_integral"], direct)
    assert np.all(np.isfinite(geo["trace_violation"]))


def test_gapped_bands_on_a_coarse_grid_are_not_grouped():
    """Haldane at φ = π/2 on 3×3: coarse, but nothing diverges; two decoupled identical
    orbitals: degenerate everywhere, a group with zero group geometry."""
    geo = _compute(MPI.COMM_SELF, haldane(1.0, 0.3, 0.0, math.pi / 2), 3)
    assert not geo["band_undefined"].any()
    twins = tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]],
                          [((1, 0), 0, 0, 0.7), ((-1, 0), 0, 0, 0.7), ((1, 0), 1, 1, 0.7),
                           ((-1, 0), 1, 1, 0.7)], partners="refuse")
    geo = _compute(MPI.COMM_SELF, twins, 4)
    assert geo["band_undefined"].all() and geo["group_bands"].tolist() == [[0, 1]]
    assert geo["group_chern"][0] == 0 and np.allclose(geo["group_metric_integral"], 0.0)


# -- item 4a: window isolation -------------------------------------------------------------

def _window_batch(swap: bool) -> GeometrySummary:
    """A fabricated 4-band window on 9 k-points (flat bands F1..F4, remote R± outside).

    With ``swap``, at k* = 4 the lowest flat band dips to its minimum −3.7 and drops out while
    the remote band above dips to its minimum 4.6 and enters: the window then holds three flat
    bands and a remote one at k*, and nowhere else.
    """
    nk, nb = 9, 4
    phase = np.sin(np.arange(nk))[:, None]
    energies = np.array([-3.5, -1.5, 1.5, 3.5]) + 0.1 * phase  # F4(k) >= -3.6 everywhere
    below, above = np.full(nk, -20.0), 5.2 + 0.5 * (1 + phase[:, 0])
    if swap:
        energies[4] = np.sort([*energies[4, 1:], 4.6])
        below[4], above[4] = -3.7, 6.0
    slopes = np.zeros((2, nk, nb, nb), complex)
    idx = np.arange(nb)
    slopes[0][:, idx, idx] = 1.0  # |∇ε| = 1 meV·a: with ΔA = 1, a band moves ≤ 1 meV per step
    eig = Eigenpairs(energies, np.zeros((nk, 6, nb), complex), slopes,
                     np.zeros((nk, nb, 3)), np.zeros((nk, nb)), np.stack([below, above], 1))
    summary = GeometrySummary(nb, nb)
    summary.add(energies, np.zeros((nk, nb)), np.zeros((nk, nb, 3)), np.zeros((nk, nb)),
                eig=eig)
    return summary


def _range_test(geo: dict) -> bool:
    """The old criterion: global band range against the global outside edges."""
    below, above = geo["window_edges"]
    return bool(geo["band_min"].min() > below and geo["band_max"].max() < above)


@pytest.mark.parametrize("swap", [False, True])
def test_window_that_swaps_a_band_at_one_k_is_not_isolated(swap):
    """Neither the per-k test nor the range test sees the swap (nothing outside the window at
    k* lies inside the window's range elsewhere); Eq. 5.5a does: the band below the window at
    k* is within s = 1 meV of the window's lowest energy elsewhere (0.1 meV)."""
    nk = 9
    geo = _window_batch(swap).finish(MPI.COMM_SELF, nk, (2 * math.pi) ** 2 / nk)
    width = float(np.max(geo["band_max"] - geo["band_min"]))
    assert geo["window_band_step"] == pytest.approx(max(1.0, math.pi * width / 3.0))
    assert _range_test(geo)  # the old test cannot tell
    assert diagnostics.window_isolated(geo) is (not swap)
    assert geo["window_edge_gap"].min() > 1.0  # per k the window is always well inside


def test_real_window_records_direct_gaps_and_band_step():
    """BM with a sublattice mass: the two flat bands are an isolated window with a direct gap
    of ~19 meV to the remote bands and a band step of ~1.5 meV on a 6×6 grid."""
    from qgt_mpi.models.bm_continuum import bm_continuum
    from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

    model = bm_continuum(theta=1.05, w0=88.0, w1=110.0, shells=3, valley=1, mass=10.0)
    solver = SlepcSolver(WindowOptions(nev=2, target=0.0), MPI.COMM_SELF)
    geo = compute(MPI.COMM_SELF, model, (6, 6), np.array([1.0]), np.array([0.0]),
                  np.full((1, 2), 0.01), solver=solver,
                  window={"delta_out": np.array([0.01]), "chern_below": None})[2]
    step, direct = geo["window_band_step"], geo["window_edge_gap"]
    assert 0.1 < step < 5.0 and direct.min() > 10.0
    assert diagnostics.window_isolated(geo) and not geo["band_undefined"].any()


# -- rank invariance -----------------------------------------------------------------------

@pytest.mark.mpi
def test_touching_groups_are_rank_invariant(comm):
    """BM on 6×6 in blocks of 5 k-points over the ranks: the same groups, masks and group
    numbers as one serial block (≤ 1e-12)."""
    model = build_model("bm_continuum", BM)
    par, ser = _compute(comm, model, 6, chunk=5), _compute(MPI.COMM_SELF, model, 6)
    same = (np.array_equal(par["band_undefined"], ser["band_undefined"])
            and np.array_equal(par["group_bands"], ser["group_bands"])
            and np.array_equal(par["group_computed"], ser["group_computed"]))
    assert_all(comm, same, f"groups differ on rank {comm.rank}")
    for key in ("group_chern", "group_chern_curvature", "group_metric_integral",
                "group_trace_integral", "group_trace_violation", "group_chern_max_flux",
                "metric_integral", "chern_curvature"):
        a, b = np.asarray(par[key], float), np.asarray(ser[key], float)
        scale = np.nanmax(np.abs(b)) if np.isfinite(b).any() else 1.0
        ok = np.allclose(a, b, rtol=1e-12, atol=1e-12 * scale, equal_nan=True)
        assert_all(comm, ok, f"{key} differs on rank {comm.rank}")
