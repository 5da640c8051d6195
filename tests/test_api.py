"""Python API (docs/api.md): worked example, Result/axes/units, save = run file, rank
invariance, PythTB comparison, thread settings untouched by import, missing packages; the
deck's sections from Python (Solver, Superfluid, deck_model, fixed filling), pools, repr."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from decks import (
    BM_MASSIVE,
    BM_PARAMS,
    HALDANE,
    HALDANE_PARAMS,
    HALDANE_T,
    deck_text,
    kgrid_table,
    sweep_table,
    table,
)
from mpi4py import MPI
from mpi_util import assert_all
from runner import REPO, qgt, run_deck

import qgt_mpi as q
from qgt_mpi.geometry.chern import chern_numbers, plaquette_flux
from qgt_mpi.io.deck import parse_deck
from qgt_mpi.parallel import CollectiveError
from qgt_mpi.solvers.dense import DenseSolver


def test_docs_api_example_runs(tmp_path, monkeypatch):
    """Every ```python block of docs/api.md runs as written."""
    text = (REPO / "docs/api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), {})
    assert (tmp_path / "haldane_api.h5").exists() and (tmp_path / "square.h5").exists()


@pytest.mark.subprocess
def test_save_writes_the_run_file(tmp_path):
    """Result.save and qgt-mpi run give the same datasets for the same model and sweep."""
    ran, _ = run_deck(tmp_path, "h", deck_text(
        HALDANE, kgrid_table(12), sweep_table([1.0, 4.0], [0.0, 0.3], [0.05]),
        table("output", kresolved=False)), np=0)
    res = q.compute(q.models.haldane(**HALDANE_PARAMS), (12, 12), [1.0, 4.0], [0.0, 0.3], [0.05],
                    comm=MPI.COMM_SELF)
    res.save(str(tmp_path / "api.h5"))
    a, b = q.load(str(ran)), q.load(str(tmp_path / "api.h5"))
    for key in ("sigma_xx", "sigma_xy", "seebeck", "kappa_xx", "mu", "temperature", "delta"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-12, atol=1e-15)
    assert np.array_equal(a.chern, b.chern)
    assert set(a.transport) == set(b.transport) and set(a.geometry) == set(b.geometry)
    assert b.sigma_xy.dims == ("mu", "delta", "temperature")


@pytest.mark.subprocess
def test_saved_file_holds_the_model_and_plots_its_bands(tmp_path):
    """Result.save stores the model (/model/definition): bit-identical H(k), band figure."""
    model = q.models.build_flattened(q.models.haldane(**HALDANE_PARAMS), 0.5)
    res = q.compute(model, (8, 8), [1.0, 2.0], [0.0], [0.02, 0.05], comm=MPI.COMM_SELF)
    path = tmp_path / "api.h5"
    res.save(str(path))
    back = q.load_model(str(path), group="/model/definition")
    k = np.random.default_rng(2).normal(size=(10, 2))
    assert np.array_equal(back.hamiltonian(k)[0], model.hamiltonian(k)[0])
    assert q.load(str(path)).chern.tolist() == res.chern.tolist()
    proc = qgt(["plot", str(path), "-d", str(tmp_path / "fig")])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig" / "bands_path.png").exists(), proc.stdout


def test_bad_arguments_are_one_line_errors():
    """The deck's checks and messages: InputError before anything is set up, CollectiveError
    (status 2, same one-line text on every rank) once the model is known."""
    model = q.models.haldane(**HALDANE_PARAMS)
    for kwargs, key in (({"temperature": [0.0]}, "sweep.temperature[0] = 0.0"),
                        ({"delta": [[0.1, 0.1, 0.1]]}, "sweep.delta = [[0.1, 0.1, 0.1]]"),
                        ({"mu": []}, "sweep.mu = []"), ({"kgrid": (0, 4)}, "kgrid.size[0] = 0"),
                        ({"degeneracy": -1}, "degeneracy = -1"), ({"pools": 2}, "pools = 2"),
                        ({"mu": None}, "sweep.mu = <missing>"),
                        ({"filling": [0.5]}, "sweep.mu = [0.0]: give either")):
        args = {"kgrid": (4, 4), "temperature": [1.0], "mu": [0.0], "delta": [0.1], **kwargs}
        with pytest.raises((q.InputError, CollectiveError)) as err:
            q.compute(model, comm=MPI.COMM_SELF, **args)
        assert "\n" not in str(err.value) and str(err.value).startswith(key), str(err.value)
        assert getattr(err.value, "status", 2) == 2


# --- the [solver] and the other deck sections from Python ---------------------------

# The BM model of decks.BM_MASSIVE (76 plane waves, two gapped flat bands) and the same
# run as a deck and as API arguments.
BM_KEYS = {**BM_PARAMS, "mass": 10.0}
BM_SOLVER = {"kind": "slepc", "nev": 2, "target": 0.1, "chern_below": 0}
BM_SWEEP = {"kgrid": (6, 6), "temperature": [1.0, 4.0], "mu": [-3.0, 0.0, 2.5],
            "delta": [0.3]}
BM_SUPERFLUID = {"U": 0.5, "filling": 0.3, "temperature": [0.01, 0.1]}
BM_DECK = deck_text(BM_MASSIVE, table("solver", **BM_SOLVER), kgrid_table(*BM_SWEEP["kgrid"]),
                    sweep_table(BM_SWEEP["temperature"], BM_SWEEP["mu"], BM_SWEEP["delta"]),
                    table("superfluid", **BM_SUPERFLUID), table("output", kresolved=False))


def _assert_same(a: q.Result, b: q.Result, rtol: float) -> None:
    """Every sweep quantity, the geometry and the superfluid group agree (relative to each
    array's largest value: S and κ vanish at particle-hole symmetric μ)."""
    assert a.quantities() == b.quantities()
    for key in (*a.quantities(), "mu", "temperature", "delta"):
        x, y = np.asarray(getattr(a, key), float), np.asarray(getattr(b, key), float)
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * np.nanmax(np.abs(x)) + 1e-300,
                                   err_msg=key)
    assert np.array_equal(a.chern, b.chern)
    for key in ("metric_integral", "chern_curvature", "trace_integral"):
        x, y = np.asarray(a.geometry[key]), np.asarray(b.geometry[key])
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * np.abs(x).max(), err_msg=key)
    for key in ("D_s", "metric_integral_minimal", "metric_integral_ordinary", "gap"):
        x, y = a.superfluid[key], b.superfluid[key]
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * np.abs(x).max(), err_msg=key)


@pytest.mark.subprocess
def test_api_slepc_window_equals_the_deck_run(tmp_path):
    """compute(..., solver=Solver("slepc", ...), superfluid=...) on a deck_model gives the
    file `qgt-mpi run` writes for the same deck (≤ 1e-12), window minimal metric included."""
    ran, _ = run_deck(tmp_path, "bm", BM_DECK, np=0)
    model = q.deck_model("bm_continuum", **BM_KEYS)
    res = q.compute(model, **BM_SWEEP, solver=q.Solver(**BM_SOLVER),
                    superfluid=q.Superfluid(**BM_SUPERFLUID), comm=MPI.COMM_SELF)
    res.save(str(tmp_path / "api.h5"))
    a, b = q.load(str(ran)), q.load(str(tmp_path / "api.h5"))
    _assert_same(a, b, 1e-12)
    _assert_same(a, res, 1e-12)
    assert set(a.transport) == set(b.transport) and set(a.geometry) == set(b.geometry)
    assert set(a.groups) == set(b.groups) == {"superfluid"}
    assert b.info["solver"]["solver"] == "slepc" and b.info["solver"]["nev"] == 2
    # a dict is the same section; the deck's defaults fill in the rest
    again = q.compute(model, **BM_SWEEP, solver=dict(BM_SOLVER), comm=MPI.COMM_SELF)
    assert np.array_equal(np.asarray(again.sigma_xy), np.asarray(res.sigma_xy))
    assert q.Solver(**BM_SOLVER).spec.tol == 1e-10 and q.Solver().spec.kind == "dense"


@pytest.mark.parametrize("options", [
    {"kind": "slepc", "nev": 2},
    {"kind": "slepc", "nev": 0, "target": 0.1},
    {"kind": "lapack"},
    {"kind": "slepc", "nev": 2, "target": 0.1, "tol": 0.5},
    {"kind": "slepc", "nev": 2, "target": 0.1, "ncv": 3},
    {"kind": "slepc", "nev": 2, "target": "zero"},
    {"kind": "dense", "valley": True},
    {"kind": "slepc", "nev": 2, "target": 0.1, "flatten": []},
    {"kind": "slepc", "nev": 2, "target": 0.1, "chern_below": 1.5},
    {"nevv": 2},
])
def test_bad_solver_option_is_the_deck_error(options):
    """Solver(...), a solver dict and the deck's [solver] section fail with the same text."""
    deck = deck_text(HALDANE_T, kgrid_table(4), sweep_table(), table("solver", **options))
    with pytest.raises(q.InputError) as from_deck:
        parse_deck(deck)
    with pytest.raises(q.InputError) as from_object:
        q.Solver(**options)
    with pytest.raises(q.InputError) as from_dict:
        q.compute(q.models.haldane(**HALDANE_PARAMS), (4, 4), [1.0], [0.0], [0.1], solver=options,
                  comm=MPI.COMM_SELF)
    assert str(from_object.value) == str(from_dict.value) == str(from_deck.value)
    assert str(from_deck.value).startswith("solver.")


def test_superfluid_and_model_sections_are_the_deck_checks():
    """Superfluid(...) and deck_model(...) raise the deck's errors and use its defaults."""
    with pytest.raises(q.InputError, match=r"^superfluid\.filling = 1\.0: must be in \(0, 1\)"):
        q.Superfluid(U=0.1, filling=1.0, temperature=[1.0])
    assert q.Superfluid(U=0.1, filling=0.5, temperature=[1.0]).spec.minimal_metric is True
    with pytest.raises(q.InputError, match=r"^model\.shells = 'two'"):
        q.deck_model("bm_continuum", theta=1.05, shells="two")
    with pytest.raises(q.InputError, match=r"^model\.kind = 'kagome': unknown model"):
        q.deck_model("kagome")
    flat = q.deck_model("haldane", t1=1.0, t2=0.3, flatten={"gap": 0.5})
    k = np.random.default_rng(3).normal(size=(4, 2))
    e = np.linalg.eigvalsh(flat.hamiltonian(k, False)[0])
    np.testing.assert_allclose(e, np.tile([-0.25, 0.25], (4, 1)), atol=1e-12)


@pytest.mark.subprocess
def test_fixed_filling_sweep_equals_the_deck_run(tmp_path):
    """sweep.filling from Python (filling=, filling_bands=) = the deck's fixed-filling run."""
    ran, _ = run_deck(tmp_path, "fill", deck_text(
        HALDANE, kgrid_table(8), sweep_table([1.0, 3.0], None, [0.05], filling=[0.3, 0.6],
                                             filling_bands=[0]),
        table("output", kresolved=False)), np=0)
    res = q.compute(q.models.haldane(**HALDANE_PARAMS), (8, 8), [1.0, 3.0], delta=[0.05],
                    filling=[0.3, 0.6], filling_bands=[0], comm=MPI.COMM_SELF)
    assert res.dims == ("filling", "delta", "temperature") and res.mu_solved.units == "meV"
    res.save(str(tmp_path / "api.h5"))
    a, b = q.load(str(ran)), q.load(str(tmp_path / "api.h5"))
    assert b.filling_target.tolist() == [0.3, 0.6] and b.filling.dims[-1] == "band"
    for key in ("mu_solved", "sigma_xx", "sigma_xy", "filling", "filling_target"):
        np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(getattr(res, key), getattr(a, key), rtol=1e-12, atol=1e-15)
    assert "filling 2 values 0.3..0.6" in repr(b)


def test_dir_lists_the_api():
    """dir(qgt_mpi) and __all__ name the API; every name resolves."""
    names = {"compute", "Result", "load", "save", "models", "Solver", "Superfluid", "Quantity",
             "InputError", "deck_model", "read_wannier90", "from_pythtb", "from_tbmodels",
             "tight_binding", "load_model", "save_model", "scan", "Scan", "__version__"}
    assert names <= set(dir(q)) and names == set(q.__all__)
    for name in q.__all__:
        assert getattr(q, name) is not None


def test_result_repr_states_the_key_facts():
    model = q.deck_model("bm_continuum", **BM_KEYS)
    res = q.compute(model, (6, 6), [1.0, 4.0], [-3.0, 0.0], [0.3, 0.5],
                    solver=q.Solver("slepc", nev=2, target=0.1), comm=MPI.COMM_SELF)
    text = repr(res)
    assert text == str(res) and len(text.splitlines()) <= 8
    for fact in ("model bm_continuum (76 orbitals)", "k-grid 6 x 6", "solver slepc",
                 "window of 2 bands nearest 0.1 meV", "mu 2 values -3..0 meV",
                 "delta 2 values 0.3..0.5 meV", "temperature 2 values 1..4 K",
                 "chern      [1, -1]", "sigma_xx", "sigma_xy", "seebeck", "kappa_xx"):
        assert fact in text, (fact, text)
    dense = q.compute(q.models.haldane(**HALDANE_PARAMS), (4, 4), [1.0], [0.0], [0.1],
                      comm=MPI.COMM_SELF)
    assert "solver dense" in repr(dense) and "model haldane (2 orbitals)" in repr(dense)


@pytest.mark.mpi
def test_api_pools_equal_one_rank(comm):
    """Under mpirun -n 2: pools=2 (one k-point per pool rank) and pools=1 (each k-point solved
    by both ranks, MUMPS in parallel) equal the serial result (≤ 1e-10), window minimal metric
    of the superfluid phase included."""
    if comm.size != 2:
        pytest.skip("needs exactly 2 ranks")
    model = q.deck_model("bm_continuum", **BM_KEYS)
    args = {**BM_SWEEP, "solver": BM_SOLVER, "superfluid": BM_SUPERFLUID,
            "chunk": 18}  # whole rows: one block per pool
    serial = q.compute(model, **args, comm=MPI.COMM_SELF)
    for pools in (2, 1):
        par = q.compute(model, **args, pools=pools, comm=comm)
        try:
            _assert_same(serial, par, 1e-10)
            ok, msg = True, ""
        except AssertionError as exc:
            ok, msg = False, f"pools={pools}: {exc}"
        assert_all(comm, ok, msg)
        assert_all(comm, par.info["solver"]["pool_size"] == 2 // pools, "pool size")


@pytest.mark.mpi
def test_compute_is_rank_invariant(comm):
    """The API under mpirun gives the serial result on every rank (≤ 1e-12 relative)."""
    model = q.models.haldane(**HALDANE_PARAMS)
    args = ((10, 10), [1.0, 3.0], [-0.5, 0.0, 0.5], [0.05])
    par = q.compute(model, *args, comm=comm)
    ser = q.compute(model, *args, comm=MPI.COMM_SELF)
    for key in ("sigma_xx", "sigma_xy", "kappa_xx"):
        a, b = np.asarray(getattr(par, key)), np.asarray(getattr(ser, key))
        ok = np.allclose(a, b, rtol=1e-12, atol=1e-14 * np.abs(b).max())
        assert_all(comm, ok, f"{key} differs on rank {comm.rank}")


def _pythtb_haldane():
    pythtb = pytest.importorskip("pythtb")
    lat = [[1.0, 0.0], [0.5, math.sqrt(3) / 2]]
    m = pythtb.tb_model(2, 2, lat, [[1 / 3, 1 / 3], [2 / 3, 2 / 3]])
    m.set_onsite([-0.2, 0.2])
    for lv in ([0, 0], [-1, 0], [0, -1]):
        m.set_hop(-1.0, 0, 1, lv)
    for lv in ([1, 0], [-1, 1], [0, -1]):
        m.set_hop(0.15j, 0, 0, lv)
    for lv in ([-1, 0], [1, -1], [0, 1]):
        m.set_hop(0.15j, 1, 1, lv)
    return pythtb, m


def test_from_pythtb_matches_pythtb():
    """Bands, Chern numbers and Berry curvature (plaquette fluxes) equal PythTB's own."""
    pythtb, m = _pythtb_haldane()
    model = q.from_pythtb(m)
    kred = np.random.default_rng(0).random((25, 2))
    e_ours = np.linalg.eigvalsh(model.hamiltonian(kred @ model.reciprocal, False)[0])
    np.testing.assert_allclose(e_ours, m.solve_all(kred).T, atol=1e-12)
    n = 24
    grid = pythtb.wf_array(m, [n + 1, n + 1])
    grid.solve_on_grid([0.0, 0.0])
    theirs = np.array([grid.berry_flux([b]) / (2 * np.pi) for b in range(2)])
    ours = chern_numbers(model, DenseSolver(), n, n, [(0, 1), (1, 2)])
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    assert np.array_equal(np.rint(ours), [-1, 1])
    # Berry curvature: flux through every plaquette, PythTB's vs ours (same sign convention
    # once oriented by the Chern number; both are gauge-invariant link products).
    their_flux = grid.berry_flux([0], individual_phases=True)
    our_flux = plaquette_flux(model, DenseSolver(), n, n, 0, n * n, [(0, 1)])[:, 0]
    sign = np.sign(ours[0] * theirs[0])
    np.testing.assert_allclose(our_flux.reshape(n, n), sign * their_flux, atol=1e-9)


def test_from_tbmodels_matches_tbmodels():
    """Bands of a TBmodels model (on-site + one bond list with its h.c.) equal TBmodels' own."""
    tbmodels = pytest.importorskip("tbmodels")
    model = tbmodels.Model(on_site=[0.2, -0.2], pos=[[0, 0], [0.5, 0.5]], occ=1,
                           uc=[[1, 0], [0, 1]])
    for R in ((0, 0), (-1, 0), (0, -1), (-1, -1)):
        model.add_hop(1.0, 0, 1, R)
    ours = q.from_tbmodels(model)
    kred = np.random.default_rng(1).random((10, 2))
    theirs = np.array([model.eigenval(k) for k in kred])
    e = np.linalg.eigvalsh(ours.hamiltonian(kred @ ours.reciprocal, False)[0])
    np.testing.assert_allclose(e, theirs, atol=1e-12)


@pytest.mark.subprocess
def test_import_leaves_thread_settings_alone():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    code = ("import os, qgt_mpi, qgt_mpi.api; "
            "print([k for k in os.environ if k.endswith('_NUM_THREADS')])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.subprocess
def test_missing_optional_package_is_one_line(tmp_path):
    """qgt-mpi plot without matplotlib: one line saying what to install, no traceback."""
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "qgt_mpi", "plot", "x.h5"], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "matplotlib" in lines[0] and "qgt_mpi[plot]" in lines[0]
