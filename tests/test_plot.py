"""Figures (``qgt-mpi plot``): helpers on synthetic data, every figure from a tiny real run."""

from __future__ import annotations

import numpy as np
import pytest
from runner import qgt

from qgt_mpi.plot import default_outdir, plot_file
from qgt_mpi.plot.bands import high_symmetry_path, path_points
from qgt_mpi.plot.geometry import brillouin_zone
from qgt_mpi.plot.style import find_peak, fit_line

TINY_DECK = """
title = "tiny figure test"
[model]
kind = "haldane"
t1 = 1.0
t2 = 0.3
mass = 0.0
phi = 1.5707963267948966
[model.flatten]
gap = 0.5
[kgrid]
size = [12, 12]
[sweep]
temperature = {start = 0.1, stop = 30.0, num = 61, spacing = "log"}
mu = {start = -0.5, stop = 0.5, num = 9}
delta = [0.001, 0.01, 0.1, [0.01, 0.05]]
[output]
kresolved = true
"""

EXPECTED = ["sigma_xx_vs_delta", "sigma_xx_vs_temperature", "inverse_sigma_xx_slopes",
            "sigma_xy_vs_mu", "seebeck_vs_delta", "seebeck_vs_temperature",
            "kappa_lorenz_vs_temperature", "geometry_maps", "bands_path", "bandwidth_vs_rcut"]


@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    """A small result file made by the real CLI on 2 ranks."""
    tmp = tmp_path_factory.mktemp("plot")
    deck, out = tmp / "tiny.toml", tmp / "tiny.h5"
    deck.write_text(TINY_DECK)
    proc = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stderr
    return out


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


def test_plot_file_writes_every_figure(result_file, tmp_path):
    written = plot_file(str(result_file), str(tmp_path / "figs"))
    for name in EXPECTED:
        for ext in ("png", "pdf"):
            path = tmp_path / "figs" / f"{name}.{ext}"
            assert str(path) in written, name
            assert path.stat().st_size > 1000, path
    assert default_outdir(str(result_file)).endswith("tiny_figures")


def test_cli_plot_default_directory(result_file):
    proc = qgt(["plot", str(result_file)])
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.split()
    assert paths and all(p.endswith((".png", ".pdf")) for p in paths)
    assert all("tiny_figures" in p for p in paths)


def test_cli_plot_missing_file_exits_2(tmp_path):
    proc = qgt(["plot", str(tmp_path / "nope.h5")])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qgt-mpi: error: cannot read")
