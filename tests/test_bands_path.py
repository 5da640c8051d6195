"""Band structure along a path: ``[bands]``, ``qgt-mpi bands`` and its figure (docs/input.md,
"Band structure along a path").

The path energies must equal a direct dense diagonalisation of ``model.hamiltonian`` at the
same k-points (Haldane: all bands; Bistritzer–MacDonald with the SLEPc window at a target
between eigenvalues: the window and its neighbour edges), to 1e-9 meV; they must not depend
on the number of ranks or pools; a bad ``[bands]`` section stops with one line and status 2;
a failure in the phase stops every rank; the figure is drawn from the file, and a figure
that cannot be drawn says why in one line.
"""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
from decks import HALDANE, HALDANE_PARAMS, deck_text, kgrid_table, sweep_table, table
from mpi4py import MPI
from mpi_util import assert_all
from runner import qgt, run_deck

from qgt_mpi.io.checks import InputError
from qgt_mpi.io.deck import parse_deck
from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.models.haldane import haldane
from qgt_mpi.models.kpath import intervals, named_points, sample_path
from qgt_mpi.plot import PlotOptions, plot_file
from qgt_mpi.plot.bandpath import choose_bands, nearest_block
from qgt_mpi.plot.bands import plot_band_path
from qgt_mpi.run.bandpath import resolve_path, solve_path
from qgt_mpi.solvers import DenseSolver
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions


def _bands(path: str = "G K M G", points: int | None = 61) -> str:
    """A [bands] table (``points=None``: left to its default)."""
    return table("bands", path=path, points=points)


SWEEP = kgrid_table(6) + sweep_table(delta=[0.01]) + table("output", kresolved=False)
HALDANE_RUN = deck_text(HALDANE, SWEEP, title="path")  # no [bands]
HALDANE_DECK = HALDANE_RUN + _bands()


def _bm_deck(kind: str = "slepc", kresolved: bool = False, shells: int = 2) -> str:
    """BM at 1.05° with a 4-band window at 3 meV (``kind = "dense"``: all bands)."""
    return deck_text(table("model", kind="bm_continuum", theta=1.05, shells=shells),
                     table("solver", kind=kind, nev=4, target=3.0), kgrid_table(6),
                     sweep_table(delta=[0.01]), table("output", kresolved=kresolved),
                     _bands("K G M K'", 40), title="bm path")


BM_DECK = _bm_deck()
TOL = 1e-9  # meV, against the direct dense diagonalisation


def _dense(model, k: np.ndarray) -> np.ndarray:
    """All eigenvalues of model.hamiltonian at k, ascending (nk, norb)."""
    return np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])


def _read(path) -> dict:
    with h5py.File(path, "r") as f:
        g = f["bands_path"]
        out = {k: g[k][()] for k in g if isinstance(g[k], h5py.Dataset)}
        out["attrs"] = dict(g.attrs)
        out["phases"] = [p.decode() for p in f["timing/phases"][()]] if "timing" in f else []
    out["labels"] = [s.decode() for s in out["labels"]]
    return out


def _one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


# --- the path itself ---------------------------------------------------------------------------

def test_points_split_by_length_and_hit_every_corner():
    corners = [np.zeros(2), np.array([3.0, 0.0]), np.array([3.0, 1.0])]
    k, s, ticks = sample_path(corners, 41)
    assert k.shape == (41, 2) and s.shape == (41,)
    assert intervals(np.array([3.0, 1.0]), 41).tolist() == [30, 10]  # by segment length
    np.testing.assert_allclose(ticks, [0.0, 3.0, 4.0])
    for corner, tick in zip(corners, ticks, strict=True):  # every corner is a point
        i = int(np.argmin(np.abs(s - tick)))
        assert s[i] == tick and np.array_equal(k[i], corner)
    np.testing.assert_allclose(np.diff(s), np.linalg.norm(np.diff(k, axis=0), axis=1))
    assert intervals(np.array([100.0, 1e-3, 1e-3]), 4).tolist() == [1, 1, 1]  # >= 1 each
    with pytest.raises(ValueError, match="zero length"):
        sample_path([np.zeros(2), np.zeros(2)], 5)


def test_named_points_follow_the_lattice_and_the_model():
    model = bm_continuum(theta=1.05, shells=2)
    points = named_points(model.reciprocal, model)
    for name, k in model.high_symmetry_points().items():  # the model's own points win
        np.testing.assert_allclose(points[name], k)
    assert np.array_equal(points["Γ"], points["G"]) and "X" not in points
    square = named_points(2 * np.pi * np.eye(2))
    np.testing.assert_allclose(square["S"], [np.pi, np.pi])
    assert "K" not in square


def test_deck_section_defaults_and_refusals():
    config = parse_deck(HALDANE_RUN + _bands(points=None))
    assert config.bands.path == "G K M G" and config.bands.points == 120
    assert config.defaults["bands.points"] == 120
    assert parse_deck(HALDANE_RUN).bands is None
    bad = {'path = "G Q"': "bands.path = 'G Q': point 'Q' is neither",
           'path = "G"': "at least two points",
           'path = "G G K"': "zero length",
           'path = "G K"\npoints = 1': "bands.points = 1: must be an integer in [2, 10000]",
           'path = "G K M G"\npoints = 3': "must be >= 4",
           'path = "G K"\ncolour = 1': "bands.colour = 1: unknown key (allowed: path, points)",
           "points = 5": "bands.path = <missing>: required key"}
    for body, message in bad.items():
        with pytest.raises(InputError) as err:
            parse_deck(HALDANE_RUN + "[bands]\n" + body + "\n")
        assert message in str(err.value) and "\n" not in str(err.value), body
    model = haldane(**HALDANE_PARAMS)
    spec = parse_deck(HALDANE_RUN + _bands("G X")).bands
    with pytest.raises(InputError, match="'X' is not defined for this lattice"):
        resolve_path(spec, model)


@pytest.mark.subprocess
def test_bad_bands_input_exits_2_with_one_line(tmp_path):
    deck = tmp_path / "d.toml"
    deck.write_text(HALDANE_RUN + _bands("G X M"))  # X: not on this lattice
    proc = qgt(["validate", str(deck)])
    assert proc.returncode == 2 and "bands.path = 'G X M'" in _one_line(proc)
    out = tmp_path / "o.h5"
    proc = qgt(["bands", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 2 and "is not defined for this lattice" in _one_line(proc)
    deck.write_text(HALDANE_RUN)
    proc = qgt(["bands", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 2 and _one_line(proc).startswith("qgt-mpi: input error: bands")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.toml"]  # no file, no lock


# --- a run with [bands] and the bands command --------------------------------------------------

@pytest.fixture(scope="module")
def haldane_run(tmp_path_factory):
    out, proc = run_deck(tmp_path_factory.mktemp("hpath"), "h", HALDANE_DECK)
    assert "band path Γ K M Γ: 61 points" in proc.stdout and "bands path 100.0%" in proc.stdout
    return out


@pytest.mark.subprocess
def test_run_path_equals_dense_diagonalisation(haldane_run):
    data = _read(haldane_run)
    model = haldane(**HALDANE_PARAMS)
    assert data["energies"].shape == (61, 2) and data["k"].shape == (61, 2)
    assert np.max(np.abs(data["energies"] - _dense(model, data["k"]))) < TOL
    assert data["labels"] == ["Γ", "K", "M", "Γ"] and "window_edges" not in data
    kk, mm = named_points(model.reciprocal)["K"], model.reciprocal[0] / 2
    lengths = [np.linalg.norm(kk), np.linalg.norm(mm - kk), np.linalg.norm(mm)]
    np.testing.assert_allclose(data["label_positions"], np.cumsum([0.0, *lengths]), rtol=1e-14)
    assert data["distance"][-1] == data["label_positions"][-1]
    assert data["attrs"]["points"] == 61 and data["attrs"]["solver"] == "dense"
    assert "bands" in data["phases"]
    info = qgt(["info", str(haldane_run), "--group", "bands"])
    assert info.returncode == 0 and "bands_path: Γ K M Γ, 61 points x 2 bands" in info.stdout


@pytest.mark.subprocess
def test_group_reads_as_netcdf_with_units(haldane_run):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    ds = xr.open_dataset(haldane_run, engine="h5netcdf", group="bands_path")
    assert ds.energies.dims == ("path_point", "band") and ds.energies.units == "meV"
    assert ds.label_positions.dims == ("corner",) and "1/a" in ds.distance.long_name
    for name, var in ds.variables.items():
        assert var.attrs.get("long_name"), name
        assert all(d in ds.coords for d in var.dims), name


@pytest.fixture(scope="module")
def bm_files(tmp_path_factory):
    """The BM window path on 1 rank, 2 ranks in one pool, 3 ranks in three pools."""
    tmp = tmp_path_factory.mktemp("bmpath")
    deck = tmp / "bm.toml"
    deck.write_text(BM_DECK)
    files = {}
    for np_, pools in ((0, 1), (2, 1), (3, 3)):
        out = tmp / f"bm_{np_}_{pools}.h5"
        proc = qgt(["bands", str(deck), "-o", str(out), "--pools", str(pools)], np=np_)
        assert proc.returncode == 0, proc.stderr
        files[(np_, pools)] = out
    return files


@pytest.mark.subprocess
def test_window_path_equals_dense_and_does_not_depend_on_ranks(bm_files):
    model = bm_continuum(theta=1.05, shells=2)
    ref = _read(bm_files[(0, 1)])
    every = _dense(model, ref["k"])
    nearest = np.sort(np.take_along_axis(every, np.argsort(np.abs(every - 3.0), axis=1)[:, :4],
                                         axis=1), axis=1)
    assert np.max(np.abs(ref["energies"] - nearest)) < TOL
    below = [e[e < w.min() - 1e-6].max() for e, w in zip(every, nearest, strict=True)]
    above = [e[e > w.max() + 1e-6].min() for e, w in zip(every, nearest, strict=True)]
    assert np.max(np.abs(ref["window_edges"] - np.column_stack([below, above]))) < TOL
    assert ref["labels"] == ["K", "Γ", "M", "K'"] and ref["attrs"]["nev"] == 4
    scale = np.max(np.abs(ref["energies"]))
    for key in ((2, 1), (3, 3)):
        other = _read(bm_files[key])
        for name in ("energies", "window_edges"):
            worst = np.max(np.abs(other[name] - ref[name]))
            assert worst <= 1e-12 * scale, (key, name, worst)  # pools of 1: bit for bit
        assert np.array_equal(other["k"], ref["k"])


@pytest.mark.mpi
def test_solve_path_is_rank_invariant(comm):
    """solve_path over the world (dense; windowed with one pool per rank and one pool of
    all ranks) equals the same path solved on one rank alone, on every rank."""
    log = logging.getLogger("test_bands_path")  # progress lines stay quiet
    cases = [(haldane(**HALDANE_PARAMS), "G K M G", 31)]
    cases.append((bm_continuum(theta=1.05, shells=2), "K G M K'", 17))
    for model, text, n in cases:
        path = resolve_path(parse_deck(HALDANE_RUN + _bands(text, n)).bands, model)
        windowed = model.norb > 2
        for per_pool in sorted({1, comm.size}) if windowed else [1]:
            pool = comm.Split(color=comm.rank // per_pool, key=comm.rank)
            make = (lambda c: SlepcSolver(WindowOptions(nev=4, target=3.0), c)) if windowed \
                else (lambda c: DenseSolver())
            got = solve_path(comm, make(pool), model, path, log)
            alone = solve_path(MPI.COMM_SELF, make(MPI.COMM_SELF), model, path, log)
            pool.Free()
            worst = np.max(np.abs(got["energies"] - alone["energies"]))
            # pools of one rank solve each k alone, as one rank does: equal to the last ulps
            # (bitwise on most hosts; one host rounded the batched LAPACK call by 2.2e-16
            # depending on the batch's layout); pools of several ranks: reduction order
            scale = np.max(np.abs(alone["energies"]))
            limit = (1e-14 if per_pool == 1 else 1e-12) * scale
            assert_all(comm, worst <= limit, f"{text}, pools of {per_pool}: {worst:.3g}")


@pytest.mark.subprocess
def test_failure_in_the_bands_phase_stops_every_rank(tmp_path):
    deck, out = tmp_path / "d.toml", tmp_path / "o.h5"
    deck.write_text(HALDANE_DECK)
    proc = qgt(["run", str(deck), "-o", str(out)], np=3, timeout=120,
               env={"QGT_TEST_FAIL": "bands:1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert _one_line(proc).endswith("injected failure in phase 'bands' on rank 1")
    left = {p.name for p in tmp_path.iterdir()}  # the checkpoint is a valid restart point
    assert not left & {"o.h5", "o.h5.partial", "o.h5.lock"}, left


# --- figures ---------------------------------------------------------------------------------

@pytest.mark.subprocess
def test_window_figure_is_drawn_and_missing_ones_say_why(bm_files, tmp_path, capsys):
    written = plot_file(str(bm_files[(0, 1)]), str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in written] == ["bands_path.png", "bands_path.pdf"]
    assert (tmp_path / "bands_path.png").stat().st_size > 1000
    err = capsys.readouterr().err.splitlines()
    assert all(ln.startswith("qgt-mpi: plot: ") and " not drawn: " in ln for ln in err)
    assert any(ln.startswith("qgt-mpi: plot: geometry_maps not drawn: the file has no "
                             "k-resolved") for ln in err)
    assert any("transport figures not drawn" in ln for ln in err)
    plot_file(str(bm_files[(0, 1)]), str(tmp_path), PlotOptions(only=["bands"], bands=[7]))
    err = capsys.readouterr().err
    assert "bands_path not drawn: --bands 7 outside the file's bands 0..3" in err


@pytest.mark.subprocess
def test_dense_many_bands_default_and_map_grid(tmp_path, capsys, monkeypatch):
    """76 dense BM bands: the path shows 16 around the Fermi level, maps 4, and a map
    grid never has more than 4 columns."""
    out, _ = run_deck(tmp_path, "d", _bm_deck("dense", kresolved=True), np=0)
    energies = _read(out)["energies"]
    assert nearest_block(energies.mean(axis=0), 0.0, 16).tolist() == list(range(30, 46))
    assert choose_bands(energies.mean(axis=0), 0.0, 16, "all").size == 76
    from qgt_mpi.plot import geometry

    columns = []
    real = geometry.new_figure
    monkeypatch.setattr(geometry, "new_figure",
                        lambda **kw: columns.append(kw["ncols"]) or real(**kw))
    written = plot_file(str(out), str(tmp_path / "f"), PlotOptions(only=["maps", "bands"],
                                                                    maps=["energies"]))
    err = capsys.readouterr().err
    assert "bands_path: bands 30-45 of 76 around 0 meV" in err
    assert "geometry_maps: bands 36-39 of 76" in err
    assert {"geometry_maps.png", "kmap_energies.png", "bands_path.png"} <= {
        p.rsplit("/", 1)[1] for p in written}
    monkeypatch.setattr(geometry, "_map", lambda *a, **k: None)  # layout only: fast
    plot_file(str(out), str(tmp_path / "g"), PlotOptions(only=["maps"], bands=list(range(30, 39))))
    assert columns == [4, 4, 4], columns  # 9 bands: 3 rows of maps blocks, 4 columns


def test_rebuilt_path_of_a_large_model_says_why(tmp_path, capsys):
    """Without /bands_path the path is rebuilt densely: refused with one line above
    REBUILD_MAX_ORBITALS (BM at 10 shells: 1324 orbitals)."""
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["program"] = "qgt_mpi"
        f.attrs["input_text"] = _bm_deck(shells=10)
        assert plot_band_path(f, str(tmp_path)) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bands_path not drawn: the model has 1324 orbitals" in err[0]
    assert "qgt-mpi bands" in err[0]
