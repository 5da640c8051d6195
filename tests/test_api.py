"""Python API (docs/api.md): worked example, Result/axes/units, save = run file, rank
invariance, PythTB comparison, thread settings untouched by import, missing packages."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from mpi4py import MPI
from mpi_util import assert_all
from runner import REPO, qgt

import qgt_mpi as q
from qgt_mpi.geometry.chern import chern_numbers, plaquette_flux
from qgt_mpi.solvers.dense import DenseSolver

HALDANE = {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.1}


def test_docs_api_example_runs(tmp_path, monkeypatch):
    """Every ```python block of docs/api.md runs as written."""
    text = (REPO / "docs/api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), {})
    assert (tmp_path / "haldane_api.h5").exists() and (tmp_path / "square.h5").exists()


def test_save_writes_the_run_file(tmp_path):
    """Result.save and qgt-mpi run give the same datasets for the same model and sweep."""
    deck = tmp_path / "h.toml"
    deck.write_text('[model]\nkind = "haldane"\n' + "".join(f"{k} = {v}\n" for k, v in
                                                           HALDANE.items())
                    + "[kgrid]\nsize = [12, 12]\n[sweep]\ntemperature = [1.0, 4.0]\n"
                    "mu = [0.0, 0.3]\ndelta = [0.05]\n[output]\nkresolved = false\n")
    ran = tmp_path / "run.h5"
    assert qgt(["run", str(deck), "-o", str(ran)]).returncode == 0
    res = q.compute(q.models.haldane(**HALDANE), (12, 12), [1.0, 4.0], [0.0, 0.3], [0.05],
                    comm=MPI.COMM_SELF)
    res.save(str(tmp_path / "api.h5"))
    a, b = q.load(str(ran)), q.load(str(tmp_path / "api.h5"))
    for key in ("sigma_xx", "sigma_xy", "seebeck", "kappa_xx", "mu", "temperature", "delta"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-12, atol=1e-15)
    assert np.array_equal(a.chern, b.chern)
    assert set(a.transport) == set(b.transport) and set(a.geometry) == set(b.geometry)
    assert b.sigma_xy.dims == ("mu", "delta", "temperature")


def test_saved_file_holds_the_model_and_plots_its_bands(tmp_path):
    """Result.save stores the model (/model/definition): bit-identical H(k), band figure."""
    model = q.models.build_flattened(q.models.haldane(**HALDANE), 0.5)
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
    model = q.models.haldane(**HALDANE)
    for kwargs in ({"temperature": [0.0]}, {"delta": [[0.1, 0.1, 0.1]]}, {"mu": []}):
        args = {"kgrid": (4, 4), "temperature": [1.0], "mu": [0.0], "delta": [0.1], **kwargs}
        with pytest.raises(ValueError) as err:
            q.compute(model, comm=MPI.COMM_SELF, **args)
        assert "\n" not in str(err.value)


@pytest.mark.mpi
def test_compute_is_rank_invariant(comm):
    """The API under mpirun gives the serial result on every rank (≤ 1e-12 relative)."""
    model = q.models.haldane(**HALDANE)
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


def test_import_leaves_thread_settings_alone():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    code = ("import os, qgt_mpi, qgt_mpi.api; "
            "print([k for k in os.environ if k.endswith('_NUM_THREADS')])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout


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
