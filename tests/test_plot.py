"""Figures (``qgt-mpi plot``): helpers on synthetic data, every figure from a tiny real run."""

from __future__ import annotations

import itertools
import os

import h5py
import numpy as np
import pytest
from decks import PAPER, deck_text, kgrid_table, span, sweep_table, table
from runner import qgt, run_deck

from qgt_mpi.io.selection import Selection
from qgt_mpi.plot import PlotOptions, default_outdir, plot_file, sweep
from qgt_mpi.plot.bands import high_symmetry_path, parse_path, path_points
from qgt_mpi.plot.geometry import brillouin_zone
from qgt_mpi.plot.style import COLOURS, N_DISTINCT, RC, Transport, find_peak, fit_line

TINY_DECK = deck_text(PAPER, kgrid_table(12),
                      sweep_table(span(0.1, 30.0, 61, "log"), span(-0.5, 0.5, 9),
                                  [0.001, 0.01, 0.1, [0.01, 0.05]]),
                      table("output", kresolved=True), title="tiny figure test")

EXPECTED = ["sigma_xx_vs_delta", "sigma_xx_vs_temperature", "inverse_sigma_xx_slopes",
            "sigma_xy_vs_mu", "seebeck_vs_delta", "seebeck_vs_temperature",
            "kappa_lorenz_vs_temperature", "geometry_maps", "bands_path",
            "transport_vs_temperature", "transport_vs_mu", "transport_vs_delta"]


@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    """A small result file made by the real CLI on 2 ranks."""
    return run_deck(tmp_path_factory.mktemp("plot"), "tiny", TINY_DECK)[0]


def test_fit_line_recovers_exact_slope():
    x = np.linspace(0.3, 1.2, 17)
    slope, intercept = fit_line(x, 29.5 * x + 2.25)
    assert slope == pytest.approx(29.5, rel=1e-12)
    assert intercept == pytest.approx(2.25, rel=1e-12)
    with pytest.raises(ValueError):
        fit_line(x[:1], x[:1])


def test_find_peak_on_log_grid():
    t = np.geomspace(0.1, 30.0, 121)
    u0, height = np.log(2.9), 52.3
    s = height - 7.0 * (np.log(t) - u0) ** 2  # parabola in log T: refinement is exact
    t_star, s_star = find_peak(t, s)
    assert t_star == pytest.approx(2.9, rel=1e-9)
    assert s_star == pytest.approx(height, rel=1e-12)
    assert find_peak(t, t) == (30.0, 30.0)  # maximum at the edge is returned as it is


def test_find_peak_on_smooth_curve_linear_grid():
    x = np.linspace(0.0, 3.0, 301)
    x_star, y_star = find_peak(x, np.exp(-((x - 1.234) ** 2)), log_x=False)
    assert x_star == pytest.approx(1.234, abs=1e-4)
    assert y_star == pytest.approx(1.0, abs=1e-6)


def test_hexagonal_path_and_zone():
    b = 2 * np.pi * np.linalg.inv(np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])).T
    labels, corners = high_symmetry_path(b)
    assert labels == ["Γ", "K", "M", "Γ"]
    assert np.linalg.norm(corners[1]) == pytest.approx(4 * np.pi / 3)  # |ΓK| = 4π/3a
    assert np.linalg.norm(corners[2]) == pytest.approx(2 * np.pi / np.sqrt(3))
    k, s, ticks = path_points(corners, 61)
    assert k.shape == (61, 2) and s[-1] == pytest.approx(ticks[-1])
    bz = brillouin_zone(b)
    assert len(bz) == 6
    assert np.allclose(np.linalg.norm(bz, axis=1), 4 * np.pi / 3)


@pytest.mark.subprocess
def test_plot_file_writes_every_figure(result_file, tmp_path):
    written = plot_file(str(result_file), str(tmp_path / "figs"))
    for name in EXPECTED:
        for ext in ("png", "pdf"):
            path = tmp_path / "figs" / f"{name}.{ext}"
            assert str(path) in written, name
            assert path.stat().st_size > 1000, path
    assert not any("bandwidth_vs_rcut" in p for p in written)  # exact flattening: not drawn
    assert default_outdir(str(result_file)).endswith("tiny_figures")


@pytest.mark.subprocess
def test_cli_plot_default_directory(result_file):
    proc = qgt(["plot", str(result_file), "--only", "bands", "--path", "G M K 1/3,1/3"])
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.split()
    assert paths and all(p.endswith((".png", ".pdf")) for p in paths)
    assert all("tiny_figures" in p for p in paths)


@pytest.mark.subprocess
def test_cli_plot_missing_file_exits_2(tmp_path):
    proc = qgt(["plot", str(tmp_path / "nope.h5")])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qgt-mpi: error: cannot read")


@pytest.mark.subprocess
def test_journal_output_fonts_dpi_and_reproducible(result_file, tmp_path):
    """PDF fonts are TrueType (Type 42), PNGs are 300 dpi, a redraw is byte-identical."""
    from PIL import Image

    opts = PlotOptions(only=["sweep"], x=["mu"], quantities=["sigma_xy"])
    first = plot_file(str(result_file), str(tmp_path / "a"), opts)
    second = plot_file(str(result_file), str(tmp_path / "b"), opts)
    for a, b in zip(first, second, strict=True):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read(), a
    pdf = open(first[1], "rb").read()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf
    dpi = Image.open(first[0]).info["dpi"]
    assert abs(dpi[0] - 300) < 1
    width_in = Image.open(first[0]).size[0] / dpi[0]
    assert width_in <= 3.4 + 0.05  # single column (bbox tight trims, never widens)


@pytest.mark.subprocess
def test_selection_picks_nearest_points_and_states_them(result_file):
    with h5py.File(result_file, "r") as f:
        tr = Transport.read(f)
    picks = sweep.choose(tr, "temperature", Selection(mu=[-0.26, 0.01], delta=[0.012]))
    assert [tr.mu[i] for i in picks["mu"]] == [-0.25, 0.0]
    assert np.allclose(tr.delta[picks["delta"][0]], 0.01)
    labels = [c[0] for c in sweep.curves(tr, "temperature", "sigma_xx", picks)]
    assert labels == [r"$\mu$ = -0.25 meV", r"$\mu$ = 0 meV"]
    assert sweep.fixed_text(tr, "temperature", picks) == r"$\delta$ = 0.01 meV"
    # several δ values -> one curve per (μ, δ), δ stated in each label
    picks = sweep.choose(tr, "mu", Selection(delta=[0.001, 0.1], temperature=[5.8]))
    curves = sweep.curves(tr, "mu", "seebeck", picks)
    assert len(curves) == 2 and all("delta" in c[0] for c in curves)
    t_grid = tr.temperature[picks["temperature"][0]]  # nearest grid point, stated as it is
    assert abs(np.log(t_grid / 5.8)) <= np.log(tr.temperature[1] / tr.temperature[0])
    assert sweep.fixed_text(tr, "mu", picks) == rf"$T$ = {t_grid:.4g} K"


def test_many_curves_never_repeat_colour_and_style():
    cycle = list(RC["axes.prop_cycle"])
    pairs = {(c["color"], c["linestyle"]) for c in cycle}
    assert len(pairs) == len(cycle) == N_DISTINCT > 4 * len(COLOURS) - 1
    assert all(a["color"] != b["color"] and a["linestyle"] != b["linestyle"]
               for a, b in itertools.pairwise(cycle))  # neighbours differ (greyscale)


@pytest.mark.subprocess
def test_custom_band_path_and_kfield_maps(result_file, tmp_path):
    reciprocal = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]]) * 2 * np.pi
    labels, corners = parse_path("G K M G 1/3,1/3", reciprocal)
    assert labels == ["Γ", "K", "M", "Γ", "(1/3,1/3)"]
    np.testing.assert_allclose(corners[4], (reciprocal[0] + reciprocal[1]) / 3)
    np.testing.assert_allclose(corners[2], reciprocal[0] / 2)
    with pytest.raises(ValueError, match="path point"):
        parse_path("G Q", reciprocal)
    opts = PlotOptions(only=["maps"], maps=["energies", "metric"])  # bands: CLI test below
    written = plot_file(str(result_file), str(tmp_path), opts)
    names = {p.rsplit("/", 1)[1] for p in written}
    assert {"kmap_energies.png", "kmap_metric.png", "geometry_maps.png"} <= names
    with pytest.raises(KeyError, match="no k-resolved field"):
        plot_file(str(result_file), str(tmp_path), PlotOptions(only=["maps"], maps=["nope"]))


@pytest.mark.subprocess
def test_cli_plot_options_and_info_selection(result_file, tmp_path):
    proc = qgt(["plot", str(result_file), "-d", str(tmp_path), "--only", "sweep",
                "--x", "mu", "--quantity", "seebeck", "--temperature", "2", "--delta", "0.01"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "sweep_seebeck_vs_mu.png"),
                                   str(tmp_path / "sweep_seebeck_vs_mu.pdf")]
    info = qgt(["info", str(result_file), "--group", "transport", "--mu", "0",
                "--delta", "0.01", "--temperature", "5.8"])
    assert info.returncode == 0, info.stderr
    rows = info.stdout.strip().splitlines()
    assert len(rows) == 4 and rows[-1].split()[:2] == ["0", "0.01"]
    assert abs(float(rows[-1].split()[2]) / 5.8 - 1) < 0.05


@pytest.mark.subprocess
def test_fixed_filling_file_is_drawn_against_filling(tmp_path):
    """A fixed-filling result (first axis filling_target, theory §4.7) is drawn against ν, with
    the solved μ(ν, T) among the quantities; masks of undefined values are not drawn."""
    fillings = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    out, _ = run_deck(tmp_path, "fill", deck_text(
        PAPER, kgrid_table(12), sweep_table([0.3, 3.0, 10.0], None, [0.01], filling=fillings,
                                            filling_bands=[0, 1]), title="tiny figure test"), np=1)
    written = plot_file(str(out), str(tmp_path / "figs"))
    names = {os.path.splitext(os.path.basename(p))[0] for p in written}
    assert {"transport_vs_filling", "sigma_xy_vs_filling", "transport_vs_temperature"} <= names
    assert not any("_vs_mu" in n for n in names)
    with h5py.File(out, "r") as f:
        tr = Transport.read(f)
        assert tr.first == "filling" and np.allclose(tr.mu, f["transport/filling_target"][()])
    assert "mu_solved" in sweep.quantities(tr, None)
    assert not any(q.endswith("_undefined") for q in sweep.quantities(tr, None))
    assert tr.mu_text(0.5) == r"$\nu$ = +0.5" and "filling" in tr.mu_axis_label


@pytest.mark.subprocess
def test_figures_not_drawn_say_why(result_file, tmp_path, capsys):
    """No silent skips: each figure a sweep cannot support prints one line saying why."""
    import dataclasses

    from qgt_mpi.plot import thermal, transport

    with h5py.File(result_file, "r") as f:
        tr = Transport.read(f)
    short = dataclasses.replace(tr, temperature=tr.temperature[:3],
                                data={k: v[..., :3] for k, v in tr.data.items()}, gap=None)
    figures = (transport.plot_sigma_vs_delta, transport.plot_sigma_vs_temperature,
               transport.plot_inverse_sigma, thermal.plot_seebeck_vs_delta,
               thermal.plot_seebeck_vs_temperature, thermal.plot_kappa_lorenz)
    assert all(figure(short, str(tmp_path)) == [] for figure in figures)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(figures)
    assert all(ln.startswith("qgt-mpi: plot: ") and " not drawn: " in ln for ln in lines)
    assert "needs >= 6 temperatures (the sweep has 3)" in lines[1]
    assert "not flattened" in lines[0]
    written = plot_file(str(result_file), str(tmp_path), PlotOptions(only=["bands"]))
    assert [os.path.basename(p) for p in written] == ["bands_path.png", "bands_path.pdf"]
    assert capsys.readouterr().err.strip() == ('qgt-mpi: plot: bandwidth_vs_rcut not drawn: '
                                               'exact flattening (range = "inf"); --bandwidth '
                                               'draws W(R_c) of its truncations (seconds per '
                                               'R_c)')
