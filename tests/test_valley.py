"""Valley-resolved Chern numbers and metric of a window (theory §5.8, geometry/valley.py).

Two model families: (i) the Haldane model ⊕ its time-reversed copy, a 4-band model whose
"valley" operator diag(+1, +1, −1, −1) is an exact symmetry, where each valley's lower band
is a Haldane band with C = ∓1 and a smooth, exactly known metric; (ii) small atomistic TBG
cells (m = 2, 3, theory §2.6) with the real valley operator and the four bands nearest charge
neutrality as the window.
"""

from __future__ import annotations

import numpy as np
import pytest
from decks import deck_text, kgrid_table, sweep_table, table
from mpi4py import MPI
from mpi_util import assert_all

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.geometry.valley import ValleyBasis, valley_geometry
from qgt_mpi.models import build_model, haldane
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.models.sparse import BondModel
from qgt_mpi.models.tbg_atomistic import neutrality_energy, shift_energy, tbg_atomistic
from qgt_mpi.parallel import CollectiveError
from qgt_mpi.solvers import DenseSolver, Eigenpairs
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions


def two_valley_haldane() -> BondModel:
    """Haldane(φ = π/2) on orbitals 0, 1 (valley +1) ⊕ Haldane(−π/2) on 2, 3 (valley −1)."""
    plus, minus = haldane(100.0, 30.0, 10.0, np.pi / 2), haldane(100.0, 30.0, 10.0, -np.pi / 2)
    return BondModel(plus.lattice, np.concatenate([plus.positions, minus.positions]),
                     np.concatenate([plus.a, minus.a + 2]), np.concatenate([plus.b, minus.b + 2]),
                     np.concatenate([plus.displacements, minus.displacements]),
                     np.concatenate([plus.t, minus.t]))


VALLEY_OP = np.diag([1.0, 1.0, -1.0, -1.0])


def haldane_geometry(n: int, comm=MPI.COMM_SELF) -> dict:
    model = two_valley_haldane()
    return valley_geometry(comm, model, ValleyBasis(DenseSolver(), lambda k: VALLEY_OP, (0, 2)),
                           n, n)


def lower_band_trace(n: int) -> float:
    """(1/2π)∫Tr g d²k of the Haldane lower band, Kubo formula at the n×n grid points."""
    model = haldane(100.0, 30.0, 10.0, np.pi / 2)
    metric = band_geometry(DenseSolver().solve(model, kgrid_points(model.reciprocal, n, n, 0,
                                                                   n * n)))[1]
    area = abs(np.linalg.det(model.reciprocal))
    return float((metric[:, 0, 0] + metric[:, 0, 1]).sum() * area / (n * n) / (2 * np.pi))


def test_link_metric_converges_as_delta_squared_to_the_kubo_metric():
    """Σ_links D²/|Δ|² → (1/2π)∫Tr g d²k with error O(Δ²): halving Δ cuts it by ≈ 4."""
    exact = lower_band_trace(48)  # point sums of a smooth periodic integrand: spectral
    assert exact == pytest.approx(lower_band_trace(36), rel=1e-10)
    errors = []
    for n in (24, 48):
        geo = haldane_geometry(n)
        assert geo["trace"][0] == pytest.approx(geo["trace"][1], rel=1e-10)  # time reversal
        errors.append(abs(geo["trace"][0] - exact) / exact)
    assert 1e-4 < errors[1] < 3e-3  # 0.2 % at 48×48 (the sum approaches from below)
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.05)
    assert np.allclose(geo["metric"][:2, 2], 0.0, atol=1e-12)  # C3: g_xy = 0 integrated


def test_exact_valleys_give_the_haldane_chern_numbers():
    """Valley −1 = Haldane(−π/2): C = +1; valley +1: C = −1 (theory §1.4); window total 0."""
    geo = haldane_geometry(12)
    # groups: valley −1, valley +1, band 0, band 1, window
    assert geo["chern"] == pytest.approx([1, -1, 1, -1, 0], abs=1e-9)
    assert geo["min_abs_valley"] == pytest.approx(1.0) and geo["mixing"] < 1e-12


@pytest.fixture(scope="module")
def tbg3():
    model = tbg_atomistic(3)
    return shift_energy(model, neutrality_energy(model))


def tbg_basis(model, solver=None, **kw) -> ValleyBasis:
    n = model.norb
    window = (0, 4) if solver is not None else (n // 2 - 2, n // 2 + 2)
    return ValleyBasis(solver or DenseSolver(), model.valley, window, **kw)


def test_valley_eigenvalues_of_the_window_are_near_plus_minus_one(tbg3):
    basis = tbg_basis(tbg3)
    k = kgrid_points(tbg3.reciprocal, 4, 4, 0, 16)
    basis.solve(tbg3, k)
    assert 0.85 < basis.stats["min_abs_valley"] <= 1.0
    assert basis.stats["valley_gap"] > 1.7
    # the valley partners carry the same energies (time reversal maps k to −k)
    e = basis.solve(tbg3, np.concatenate([k, -k])).energies
    assert np.allclose(e[:16, :2], e[16:, 2:], atol=2e-2 * np.abs(e).max())


def test_valley_chern_numbers_with_a_mass(tbg3):
    """M ≠ 0 gaps the Dirac points: per-band valley C are integers, opposite in the two
    valleys, summing to the window's C = 0; −M flips them; M = 0 leaves bands touching."""
    flat = valley_geometry(MPI.COMM_SELF, tbg3, tbg_basis(tbg3), 6, 6)
    assert flat["chern"][[0, 1, 6]] == pytest.approx([0, 0, 0], abs=1e-9)  # C2zT: Ω ≡ 0
    assert flat["band_gap_minus"] < 1e-6 and flat["band_gap_plus"] < 1e-6  # Dirac points
    per_band = []
    for mass in (40.0, -40.0):
        model = tbg_atomistic(3, mass=mass)
        model = shift_energy(model, neutrality_energy(model))
        geo = valley_geometry(MPI.COMM_SELF, model, tbg_basis(model), 6, 6)
        chern = geo["chern"]
        assert np.allclose(chern, np.round(chern), atol=1e-6)
        assert min(geo["band_gap_minus"], geo["band_gap_plus"]) > 10.0
        assert abs(chern[2]) == pytest.approx(1) and chern[3] == pytest.approx(-chern[2])
        assert chern[2:4] == pytest.approx(-chern[4:6])  # valley −1 = −(valley +1)
        assert chern[0] + chern[1] == pytest.approx(chern[6], abs=1e-9)
        per_band.append(chern[2:6])
    assert per_band[0] == pytest.approx(-per_band[1])


def test_per_band_valley_chern_numbers_match_the_continuum_model():
    """Independent sign check: at θ = 9.43° (m = 3) with M = 40 meV the BM model (same
    w0 = w1 = 108 meV, ħv = 522 meV·nm as the atomistic hoppings) gives C = (+1, −1) for
    the two middle bands of its valley +1 (H = ħv σ·p). The atomistic K = (4π/3a, 0) (V = +1)
    has the σ*·q chirality in this sublattice placement, i.e. it is the continuum's valley −1,
    so the atomistic valley −1 must carry the continuum valley +1 numbers (theory §5.8)."""
    from qgt_mpi.geometry.chern import chern_numbers
    from qgt_mpi.models.bm_continuum import bm_continuum

    bm = bm_continuum(theta=9.43, w0=108.0, w1=108.0, hbar_v=522.0, shells=3, mass=40.0)
    lo = bm.norb // 2 - 1
    continuum = chern_numbers(bm, DenseSolver(), 6, 6, [(lo, lo + 1), (lo + 1, lo + 2)])
    model = tbg_atomistic(3, mass=40.0)
    model = shift_energy(model, neutrality_energy(model))
    atomistic = valley_geometry(MPI.COMM_SELF, model, tbg_basis(model), 6, 6)["chern"]
    assert continuum == pytest.approx([1, -1], abs=1e-3)
    assert atomistic[2:4] == pytest.approx(continuum, abs=1e-3)


class RotatedWindow:
    """The dense solver with a random unitary mixing of the window columns at every k."""

    comm = MPI.COMM_SELF

    def __init__(self, window: tuple[int, int], seed: int) -> None:
        self.window, self.rng = window, np.random.default_rng(seed)

    def solve(self, model, k, velocities=False) -> Eigenpairs:
        eig = DenseSolver().solve(model, k, velocities=False)
        lo, hi = self.window
        z = self.rng.normal(size=(len(eig.energies), 4, 4, 2)) @ [1, 1j]
        q = np.linalg.qr(z)[0]
        vectors = eig.vectors.copy()
        vectors[..., lo:hi] = eig.vectors[..., lo:hi] @ q
        return Eigenpairs(eig.energies, vectors, None)


def test_results_are_gauge_invariant(tbg3):
    """A random unitary rotation of the window vectors at every k changes nothing."""
    model = tbg_atomistic(3, mass=40.0)
    model = shift_energy(model, neutrality_energy(model))
    n = model.norb
    ref = valley_geometry(MPI.COMM_SELF, model, tbg_basis(model), 5, 5)
    solver = RotatedWindow((n // 2 - 2, n // 2 + 2), 3)
    rot = valley_geometry(MPI.COMM_SELF, model, ValleyBasis(solver, model.valley,
                                                            solver.window), 5, 5)
    for key in ("chern", "metric", "trace"):
        assert np.allclose(rot[key], ref[key], rtol=1e-9, atol=1e-10)
    for key in ("min_abs_valley", "valley_gap", "band_gap_minus", "band_gap_plus", "mixing"):
        assert rot[key] == pytest.approx(ref[key], rel=1e-8, abs=1e-10)


def test_window_link_metric_is_the_kubo_metric_of_the_window(tbg3):
    """Independent check on TBG: one short link D²/|Δ|² centred on k equals e·g_W·e from
    the dense sum over out-of-window states, to O(Δ²) (halving Δ cuts the error by 4)."""
    n = tbg3.norb
    lo, hi = n // 2 - 2, n // 2 + 2
    k0, e = np.array([0.37, -0.21]), np.array([0.6, 0.8])
    dense = DenseSolver().solve(tbg3, k0[None])
    vel, en = dense.velocities[:, 0], dense.energies[0]
    out = np.r_[0:lo, hi:n]
    v = np.einsum("i,inm->nm", e, vel)[lo:hi][:, out]
    kubo = float(np.sum(np.abs(v) ** 2 / (en[lo:hi, None] - en[None, out]) ** 2))
    basis = tbg_basis(tbg3)
    errors = []
    for step in (4e-3, 2e-3):
        a, b = (basis.solve(tbg3, (k0 + s * step * e)[None]).vectors[0] for s in (-0.5, 0.5))
        d2 = 4 - np.sum(np.abs(a.conj().T @ b) ** 2)
        errors.append(abs(d2 / step**2 - kubo) / kubo)
    assert errors[1] < 1e-3 and errors[0] / errors[1] == pytest.approx(4.0, rel=0.05)


def test_slepc_window_gives_the_dense_valley_basis():
    """Near the moiré K (where the 4 states nearest 0 are the middle 4 by counting) a SLEPc
    window gives the dense valley-resolved energies and the same valley subspaces."""
    model = tbg_atomistic(3, mass=20.0)
    model = shift_energy(model, neutrality_energy(model))
    k = model.dirac_point() + np.array([[0.0, 0.0], [0.05, 0.02], [-0.03, 0.06]])
    dense = tbg_basis(model).solve(model, k)
    solver = SlepcSolver(WindowOptions(nev=4, target=0.0), MPI.COMM_SELF)
    window = tbg_basis(model, solver).solve(model, k)
    assert np.allclose(window.energies, dense.energies, atol=1e-8)
    for lo, hi in ((0, 2), (2, 4)):
        overlap = window.vectors[..., lo:hi].conj().swapaxes(-1, -2) @ dense.vectors[..., lo:hi]
        assert np.allclose(np.sum(np.abs(overlap) ** 2, axis=(1, 2)), 2.0, atol=1e-9)


def test_mass_enters_as_sublattice_onsite_energy():
    model = build_model("tbg_atomistic", {"m": 2, "mass": 30.0, "energy_zero": "absolute"})
    diag = model.csr(np.zeros(2))[0].diagonal()
    assert np.allclose(diag, np.where(model.sublattice == 0, 15.0, -15.0))
    assert model.describe()["mass"] == 30.0
    bare = tbg_atomistic(2)
    assert bare.nnz == tbg_atomistic(2, mass=30.0).nnz - bare.norb  # M = 0: no on-site entries


@pytest.mark.mpi
def test_valley_geometry_is_rank_invariant(comm, tbg3):
    """Plaquettes split over the ranks give the serial result (≤ 1e-12 relative)."""
    par = valley_geometry(comm, tbg3, tbg_basis(tbg3), 4, 4)
    ser = valley_geometry(MPI.COMM_SELF, tbg3, tbg_basis(tbg3), 4, 4)
    ok = all(np.allclose(par[key], ser[key], rtol=1e-12, atol=1e-12)
             for key in ("chern", "metric", "trace", "valley_gap", "mixing"))
    assert_all(comm, ok, f"valley geometry differs on rank {comm.rank}")


@pytest.mark.mpi
def test_valleys_that_do_not_separate_are_refused_on_every_rank(comm):
    """At m = 2 (θ = 13.2°) the window holds three states of one valley somewhere on the
    grid: every rank stops with one CollectiveError naming the k-point."""
    model = tbg_atomistic(2)
    model = shift_energy(model, neutrality_energy(model))
    with pytest.raises(CollectiveError, match="valleys do not separate"):
        valley_geometry(comm, model, tbg_basis(model), 6, 6)


def _valley_deck(m: int = 3, model: str | None = None, kind: str = "slepc",
                 nev: int = 4) -> str:
    """Atomistic TBG (m, 1) with a 40 meV mass, its 4-band window valley-resolved; ``model``
    replaces the [model] table."""
    model = model or table("model", kind="tbg_atomistic", m=m, mass=40.0)
    return deck_text(model, table("solver", kind=kind, nev=nev, target=0.0, valley=True,
                                  chern_below=0),
                     kgrid_table(6), sweep_table([10.0], delta=[1.0]),
                     title="valley-resolved window")


@pytest.mark.subprocess
def test_deck_valley_group_matches_the_api(tmp_path):
    """``[solver] valley = true``: the run (2 ranks) writes /valley with the valley Chern
    numbers, fluxes and metric of the SLEPc window, equal to valley_geometry on the same
    window (≤ 1e-9), with C(valley −1) = −C(valley +1) and the window's C their sum."""
    import h5py
    from runner import qgt

    deck, out = tmp_path / "valley.toml", tmp_path / "valley.h5"
    deck.write_text(_valley_deck())
    proc = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        g = f["valley"]
        got = {k: g[k][()] for k in ("chern", "max_flux", "metric_integral", "trace_integral")}
        assert g["chern"].attrs["long_name"] and g.attrs["valley_gap"] > 1.0
        assert "valley" in [p.decode() for p in f["timing/phases"][()]]
    import re

    # the valley phase reports its progress like the k-pass (36 plaquettes, rank 0 counts its
    # pool's share times the pools): a line at 100 % with the plaquette count
    assert re.search(r"valley 100\.0% \(36/36 plaquettes\).*ETA", proc.stdout), proc.stdout

    plan = qgt(["dry-run", str(deck), "--np", "2"]).stdout  # the valley phase is estimated
    assert re.search(r"\+ valley [0-9.]+ s =", plan), plan
    info = qgt(["info", str(out), "--group", "geometry"]).stdout
    shown = re.search(r"valley: Chern \(valley -1, valley \+1, bands, window\)((?:\s+-?\d+)+)",
                      info)
    assert shown and [abs(int(x)) for x in shown.group(1).split()] == [1, 1, 0, 0, 0, 0, 0]
    model = tbg_atomistic(3, mass=40.0)
    model = shift_energy(model, neutrality_energy(model))
    solver = SlepcSolver(WindowOptions(nev=4, target=0.0), MPI.COMM_SELF)
    ref = valley_geometry(MPI.COMM_SELF, model, ValleyBasis(solver, model.valley, (0, 4)), 6, 6)
    assert np.allclose(got["chern"], ref["chern"], atol=1e-9)
    assert np.allclose(got["max_flux"], ref["max_flux"] / np.pi, atol=1e-9)
    assert np.allclose(got["metric_integral"], ref["metric"], rtol=1e-9, atol=1e-12)
    assert np.allclose(got["trace_integral"], ref["trace"], rtol=1e-9)
    chern = got["chern"]
    assert np.allclose(chern, np.round(chern), atol=1e-6)
    assert abs(chern[0]) == pytest.approx(1.0, abs=1e-6)
    assert chern[0] == pytest.approx(-chern[1]) and chern[6] == pytest.approx(
        chern[0] + chern[1], abs=1e-9)


@pytest.mark.subprocess
def test_deck_valley_refusals_and_unsplit_window(tmp_path):
    """A model without a valley operator, the dense solver or an odd nev: exit 2 naming
    solver.valley (no file); a window that does not split (m = 2) keeps the run and
    records why in /valley (one warning)."""
    import h5py
    from runner import qgt

    continuum = table("model", kind="bm_continuum", theta=1.05, w0=88.0, w1=110.0, shells=2,
                      valley=1)  # one valley, no valley operator
    for text in (_valley_deck(model=continuum), _valley_deck(kind="dense"), _valley_deck(nev=3)):
        deck, out = tmp_path / "bad.toml", tmp_path / "bad.h5"
        deck.write_text(text)
        proc = qgt(["run", str(deck), "-o", str(out)], np=1)
        line = proc.stderr.strip()
        assert proc.returncode == 2 and "solver.valley" in line and "\n" not in line, line
        assert not out.exists()
    deck, out = tmp_path / "m2.toml", tmp_path / "m2.h5"
    deck.write_text(_valley_deck(2))
    proc = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr  # rank 0 logs to stdout, the others to stderr
    assert sum("warning: valley: not computed" in ln for ln in text.splitlines()) == 1, text
    with h5py.File(out, "r") as f:
        assert "do not separate" in f["valley"].attrs["not_computed"]
        assert "chern" not in f["valley"] and "sigma_xx" in f["transport"]
