"""Geometric superfluid weight of a flat band (theory §6): src/qgt_mpi/superfluid, deck, figure.

The independent reference is a full mean-field Bogoliubov–de Gennes (BdG) calculation on the
flattened Haldane model (both bands kept, no projection). Conditions, stated once:

- grand potential Ω(q) at FIXED μ and FIXED real pairing Δ_a = Δ on every orbital, with the
  pair-momentum twist Δ_a e^{2iq·r_a}, r_a = R + τ_a (q = eA/ħ), spin ↓ the time-reversed
  partner of spin ↑; D_s = (e²/ħ²) ∂²(Ω/V)/∂q∂q by central differences in q;
- Δ and μ are the projected mean-field values of theory §6 at (U, ν, T) (checked against the
  BdG self-consistency below, to O(U/gap));
- the fixed-Δ second derivative equals the formula with the metric *of the positions used for
  the pairing phases*; the physical (self-consistent) D_s also relaxes the pairing phases,
  i.e. minimises over orbital shifts, which gives the MINIMAL metric. At the symmetric
  Haldane positions ordinary = minimal; for shifted positions the BdG minimum over shifts is
  compared with the minimal-metric formula. Pairing is uniform (|Δ_a| equal) by the A↔B
  symmetry of the M = 0 Haldane model, which the self-consistency test confirms.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import h5py
import numpy as np
import pytest
from decks import BM_MASSIVE, HALDANE_T, deck_text, kgrid_table, sweep_table, table
from mpi4py import MPI
from mpi_util import assert_all
from runner import REPO, run_deck

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.io.deck import InputError, SuperfluidSpec, parse_deck
from qgt_mpi.models import TightBinding, build_model, haldane, kgrid_points
from qgt_mpi.superfluid import compute_superfluid
from qgt_mpi.superfluid import mean_field as mf
from qgt_mpi.superfluid.metric import metric_integral, minimal_metric, scan_band, shifted_model

GAP = 0.5  # meV, flat bands at ±GAP/2
GRID = (24, 24)
SELF = MPI.COMM_SELF


def flat_haldane():
    return build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": math.pi / 2},
                       {"gap": GAP, "range": math.inf, "nfine": 48})


# --- independent BdG reference -------------------------------------------------------------

def bdg_eigen(model, q, delta, mu):
    """Eigenpairs of H_BdG(k) = [[H(k+q) − μ, Δ], [Δ, −H(k−q) + μ]] on GRID, and H(k−q)."""
    k = kgrid_points(model.reciprocal, *GRID, 0, GRID[0] * GRID[1])
    n, eye = model.norb, np.eye(model.norb)
    plus, _ = model.hamiltonian(k + q, derivatives=False)
    minus, _ = model.hamiltonian(k - q, derivatives=False)
    ham = np.zeros((len(k), 2 * n, 2 * n), complex)
    ham[:, :n, :n], ham[:, n:, n:] = plus - mu * eye, mu * eye - minus
    ham[:, :n, n:] = ham[:, n:, :n] = delta * eye
    energies, vectors = np.linalg.eigh(ham)
    return energies, vectors, minus


def omega(model, q, delta, mu, temp):
    """Ω/V = (1/(N_k A_c)) Σ_k [−k_BT Σ_i ln(1 + e^{−E_i/k_BT}) + Tr(H(k−q) − μ)] (+ const)."""
    energies, _, minus = bdg_eigen(model, np.asarray(q, float), delta, mu)
    if temp == 0:
        free = np.where(energies < 0, energies, 0.0).sum(axis=1)
    else:
        kt = K_B_MEV_PER_K * temp
        free = -kt * np.logaddexp(0.0, -energies / kt).sum(axis=1)
    const = np.trace(minus, axis1=1, axis2=2).real - mu * model.norb
    return float((free + const).mean() / model.cell_area)


def bdg_superfluid_weight(model, delta, mu, temp, h=1e-3):
    """D_s,ij = ∂²(Ω/V)/∂q_i∂q_j [e²/ħ² × meV] by central differences (step h, 1/a)."""
    def f(qx, qy):
        return omega(model, (qx * h, qy * h), delta, mu, temp)
    f0 = f(0, 0)
    xx = (f(1, 0) - 2 * f0 + f(-1, 0)) / h**2
    yy = (f(0, 1) - 2 * f0 + f(0, -1)) / h**2
    xy = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * h**2)
    return np.array([[xx, xy], [xy, yy]])


def projected_state(u, nu, temp, n_orb=2, band_energy=-GAP / 2):
    """(Δ(T), μ) of theory §6 for the lower flat band."""
    return mf.gap([temp], u, nu, n_orb)[0], band_energy - mf.chemical_offset(u, nu, n_orb)


# --- (1) BdG against the theory §6 formula ------------------------------------------------------

@pytest.mark.parametrize("nu", [0.5, 0.3])
@pytest.mark.parametrize("t_frac", [0.0, 0.5])
def test_bdg_agrees_as_u_over_gap_shrinks(nu, t_frac):
    """Relative error of the theory §6 D_s against BdG shrinks ∝ U/gap (symmetric positions)."""
    model = flat_haldane()
    metric = metric_integral(SELF, model, 0, GRID)
    errors = []
    for u in (0.2 * GAP, 0.1 * GAP, 0.05 * GAP):
        temp = t_frac * mf.critical_temperature(u, nu, 2)
        bdg = bdg_superfluid_weight(model, *projected_state(u, nu, temp), temp)
        formula = mf.superfluid_weight([temp], metric, u, nu, 2)[0]
        errors.append(abs(np.trace(bdg) / np.trace(formula) - 1))
        assert abs(bdg[0, 1]) < 1e-6 * bdg[0, 0]
    # measured (ν = 1/2): 0.0499, 0.0250, 0.0125; (ν = 0.3): 0.0855, 0.0439, 0.0222
    assert errors[2] < 0.03
    assert errors[1] < 0.55 * errors[0] and errors[2] < 0.55 * errors[1]


def _bdg_trace_min_over_shift(model, delta, mu):
    """Minimum over the shift s of orbital 1 of Tr D_s^BdG (pairing phases at τ + s).

    Two Newton steps on a finite-difference quadratic model (Tr D_s is quadratic in s up to
    O(U/gap)); independent of the metric code.
    """
    def trace(s):
        moved = shifted_model(model, [[0.0, 0.0], s])
        return float(np.trace(bdg_superfluid_weight(moved, delta, mu, 0.0)))
    s, step = np.zeros(2), 0.02
    for _ in range(2):
        e = np.eye(2) * step
        f0, fp, fm = trace(s), [trace(s + d) for d in e], [trace(s - d) for d in e]
        grad = np.array([(fp[i] - fm[i]) / (2 * step) for i in range(2)])
        hess = np.diag([(fp[i] - 2 * f0 + fm[i]) / step**2 for i in range(2)])
        hess[0, 1] = hess[1, 0] = (trace(s + e[0] + e[1]) - fp[0] - fp[1] + f0) / step**2
        s = s - np.linalg.solve(hess, grad)
    return trace(s), s


def test_bdg_needs_minimal_metric_for_shifted_positions():
    """Orbital B moved off its symmetric site: BdG minimised over the pairing phases matches the
    minimal-metric formula; fixed-Δ BdG at the moved positions follows their ordinary metric."""
    offset = np.array([0.1, 0.05])
    model = shifted_model(flat_haldane(), [[0.0, 0.0], offset])
    ordinary = metric_integral(SELF, model, 0, GRID)
    shift, minimal = minimal_metric(SELF, model, 0, GRID)
    np.testing.assert_allclose(shift[1], -offset, atol=1e-6)
    assert np.trace(minimal) < np.trace(ordinary) * (1 - 1e-2)
    u, nu = 0.05 * GAP, 0.5
    delta, mu = projected_state(u, nu, 0.0)
    formula_min = np.trace(mf.superfluid_weight([0.0], minimal, u, nu, 2)[0])
    formula_ord = np.trace(mf.superfluid_weight([0.0], ordinary, u, nu, 2)[0])
    fixed = np.trace(bdg_superfluid_weight(model, delta, mu, 0.0))
    relaxed, s_bdg = _bdg_trace_min_over_shift(model, delta, mu)
    # measured: fixed/formula_ord − 1 = −0.0125; relaxed/formula_min − 1 = −0.0125;
    # fixed/formula_min − 1 = +0.0029 (the plain formula with the ordinary metric is off)
    assert abs(fixed / formula_ord - 1) < 0.02
    assert abs(relaxed / formula_min - 1) < 0.02
    np.testing.assert_allclose(s_bdg, -offset, atol=2e-3)
    assert relaxed < fixed


@pytest.mark.parametrize("nu", [0.5, 0.3])
def test_bdg_self_consistency_of_gap_and_filling(nu):
    """At the theory §6 (Δ(T), μ), BdG returns Δ_a = U<c_a↑ c_a↓> ≈ Δ on both orbitals and ν."""
    model = flat_haldane()
    for u, tol in ((0.1 * GAP, 0.03), (0.025 * GAP, 0.008)):
        temp = 0.5 * mf.critical_temperature(u, nu, 2)
        delta, mu = projected_state(u, nu, temp)
        energies, vectors, _ = bdg_eigen(model, np.zeros(2), delta, mu)
        empty = 0.5 * (1 + np.tanh(energies / (2 * K_B_MEV_PER_K * temp)))  # 1 − f(E)
        n = model.norb
        anomalous = np.einsum("kai,ki,kai->a", vectors[:, :n], empty, vectors[:, n:].conj())
        density = np.einsum("kai,ki->", np.abs(vectors[:, :n]) ** 2, 1 - empty)
        npts = energies.shape[0]
        np.testing.assert_allclose(u * anomalous.real / npts, delta, rtol=tol)
        assert abs(density.real / npts - nu) < tol * nu


# --- (2) gap equation and (3) BKT --------------------------------------------------------------

@pytest.mark.parametrize("nu", [0.5, 0.2, 0.9])
def test_gap_equation_limits(nu):
    u, n_orb = 0.1, 2
    t_c = mf.critical_temperature(u, nu, n_orb)
    np.testing.assert_allclose(mf.gap([1e-4 * t_c, 0.0], u, nu, n_orb), mf.gap_zero(u, nu, n_orb),
                               rtol=1e-12)
    x = abs(1 - 2 * nu)
    kt_c = K_B_MEV_PER_K * t_c  # at T_c: E = |ξ| solves tanh(E/2k_BT) = 2 N_orb E/U
    if x > 0:
        assert math.tanh(x * u / (2 * n_orb) / (2 * kt_c)) == pytest.approx(x, rel=1e-12)
    else:
        assert kt_c == pytest.approx(u / (4 * n_orb), rel=1e-14)
    assert mf.gap([t_c * (1 + 1e-9), 2 * t_c], u, nu, n_orb).max() == 0.0
    assert 0 < mf.gap([t_c * (1 - 1e-6)], u, nu, n_orb)[0] < 1e-2 * mf.gap_zero(u, nu, n_orb)
    temps = np.linspace(0.05, 0.95, 7) * t_c
    delta = mf.gap(temps, u, nu, n_orb)
    energy = np.hypot(mf.chemical_offset(u, nu, n_orb), delta)
    lhs = np.tanh(energy / (2 * K_B_MEV_PER_K * temps))
    np.testing.assert_allclose(lhs, 2 * n_orb * energy / u, rtol=1e-12)
    assert np.all(np.diff(delta) < 0)


def test_bkt_temperature_solves_its_equation():
    metric = np.array([[0.09, 0.01], [0.01, 0.06]])  # anisotropic
    u, nu = 0.1, 0.4
    t_bkt = mf.bkt_temperature(metric, u, nu, 2)
    d_s = mf.superfluid_weight([t_bkt], metric, u, nu, 2)[0]
    lhs = K_B_MEV_PER_K * t_bkt
    assert lhs == pytest.approx(math.pi / 8 * math.sqrt(np.linalg.det(d_s)), rel=1e-10)
    assert 0 < t_bkt < mf.critical_temperature(u, nu, 2)
    assert math.isnan(mf.bkt_temperature(np.zeros((2, 2)), u, nu, 2))


def test_no_bkt_crossing_is_nan_with_warning(caplog):
    """A trivial flat band (two decoupled orbitals, zero metric): D_s = 0, T_BKT = NaN."""
    model = TightBinding(np.eye(2), [[0, 0], [0.5, 0.5]], [[0, 0], [0, 0]], [0, 1], [0, 1],
                         [-0.25, 0.25])
    spec = SuperfluidSpec(U=0.05, filling=0.5, n_orb=2, band=0,
                          temperature=np.array([0.01, 0.1]), minimal_metric=True)
    with caplog.at_level(logging.WARNING):
        data, attrs = compute_superfluid(SELF, model, spec, (6, 6), logging.getLogger("qgt_t"))
    assert math.isnan(float(data["T_BKT"][0])) and math.isnan(attrs["T_BKT_K"])
    assert "no BKT crossing" in caplog.text
    assert np.all(data["D_s"][0] == 0.0)


# --- (4) minimal metric --------------------------------------------------------------------

def test_minimal_metric_bounds_and_symmetric_sites():
    """Bound ≤ minimal ≤ ordinary; at the symmetric honeycomb sites the shift is ~0."""
    model = flat_haldane()
    scan = scan_band(SELF, model, 0, GRID)
    shift, minimal = minimal_metric(SELF, model, 0, GRID)
    assert abs(scan.chern) == 1
    assert np.trace(minimal) <= np.trace(scan.metric) + 1e-14
    assert np.trace(minimal) >= abs(scan.chern) / (2 * np.pi)  # ∫Tr g d²k ≥ 2π|C|
    assert math.sqrt(np.linalg.det(minimal)) >= abs(scan.chern) / (4 * np.pi)
    # measured: Tr G = 0.1749054 (bound 0.1591549), shift 0, improvement 0
    assert np.abs(shift).max() < 1e-6
    assert np.trace(scan.metric) - np.trace(minimal) < 1e-12


def _bfgs_minimal(model, band, kgrid):
    """Brute-force reference: BFGS on Tr G over re-diagonalised shifted models (orbital 0
    fixed, central-difference gradient)."""
    from scipy.optimize import minimize

    def full(x):
        return np.vstack([np.zeros((1, 2)), np.reshape(x, (model.norb - 1, 2))])

    def trace(x):
        return float(np.trace(metric_integral(SELF, shifted_model(model, full(x)), band, kgrid)))

    def gradient(x):
        return np.array([(trace(x + e) - trace(x - e)) / 2e-3 for e in np.eye(x.size) * 1e-3])

    res = minimize(trace, np.zeros(2 * (model.norb - 1)), jac=gradient, method="BFGS",
                   options={"gtol": 1e-11, "maxiter": 200})
    return full(res.x), metric_integral(SELF, shifted_model(model, full(res.x)), band, kgrid)


def _kagome():
    import tomllib

    from qgt_mpi.api import deck_model

    with open(REPO / "inputs" / "kagome_flat.toml", "rb") as fh:
        params = dict(tomllib.load(fh)["model"])
    return deck_model(params.pop("kind"), **params)


@pytest.mark.parametrize("case", ["haldane", "kagome"])
def test_closed_form_minimal_metric_equals_brute_force(case):
    """The one-pass closed form (metric.py) = BFGS over re-diagonalised shifted models
    (≤ 1e-8 relative), and it recovers a known shift exactly."""
    if case == "haldane":
        offset = np.array([0.13, -0.07])
        model, band = shifted_model(flat_haldane(), [[0.0, 0.0], offset]), 0
    else:
        model = _kagome()
        model, band = shifted_model(model, [[0, 0], [0.05, 0.02], [-0.03, 0.04]]), 2
    shift, metric = minimal_metric(SELF, model, band, (12, 12))
    ref_shift, ref = _bfgs_minimal(model, band, (12, 12))
    assert np.abs(metric - ref).max() <= 1e-8 * np.abs(ref).max()
    assert np.trace(metric) <= np.trace(ref) + 1e-14  # the exact minimum
    np.testing.assert_allclose(shift, ref_shift, atol=1e-5)
    if case == "haldane":  # moving orbital 1 back to the symmetric site
        np.testing.assert_allclose(shift[1], -offset, atol=1e-10)


@pytest.fixture(scope="module")
def bm_small():
    """BM at 1.05°, 2 shells (76 plane waves), mass 10 meV: gapped flat bands 37, 38."""
    from qgt_mpi.models.bm_continuum import bm_continuum

    return bm_continuum(theta=1.05, shells=2, mass=10.0)


@pytest.mark.parametrize("grid", [(6, 6), (10, 10)])  # fewer / more k-points than orbitals
def test_window_minimal_metric_equals_dense(bm_small, grid):
    """theory §6 minimal metric of a SLEPc window band (window vectors + Sternheimer part
    from one sparse LU per k) = the dense solver's on the same model (≤ 1e-8 relative)."""
    pytest.importorskip("slepc4py")
    from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions
    from qgt_mpi.superfluid.metric import minimise, shift_form

    window = SlepcSolver(WindowOptions(nev=2, target=0.1), SELF)
    for band in (0, 1):
        dense_form = shift_form(SELF, bm_small, 37 + band, grid)
        window_form = shift_form(SELF, bm_small, band, grid, window)
        np.testing.assert_allclose(window_form.g0, dense_form.g0, rtol=1e-9)
        _, dense = minimise(dense_form)
        shift, windowed = minimise(window_form)
        assert np.abs(windowed - dense).max() <= 1e-8 * np.abs(dense).max()
        ordinary = scan_band(SELF, bm_small, 37 + band, grid).metric
        assert np.trace(windowed) < np.trace(ordinary)  # plane-wave shifts lower it
        assert np.trace(windowed) >= 1 / (2 * np.pi)  # |C| = 1
        np.testing.assert_allclose(window_form.metric(np.zeros_like(shift)), ordinary,
                                   rtol=1e-9, atol=1e-12)
    # both ways of holding Σ_k w wᵀ (the weights when N_k < norb, else the matrix) agree
    lam, vec = np.linalg.eigh(window_form.root.T @ window_form.root)
    other = dataclasses.replace(window_form, root=np.sqrt(np.clip(lam, 0, None))[:, None] * vec.T)
    assert np.abs(minimise(other)[1] - windowed).max() <= 1e-10 * np.abs(windowed).max()


@pytest.mark.subprocess
def test_deck_window_minimal_metric_equals_dense_deck(tmp_path):
    """A [superfluid] deck with minimal_metric = true on a [solver] slepc window runs (it was
    refused) and writes the dense run's /superfluid (window band 0 = band 37 of 76)."""
    pytest.importorskip("slepc4py")
    out = {}
    for name, band, solver in (("window", 0, table("solver", kind="slepc", nev=2, target=0.1)),
                               ("dense", 37, "")):
        text = deck_text(BM_MASSIVE, kgrid_table(6), sweep_table(delta=[0.5]),
                         table("output", kresolved=False),
                         table("superfluid", U=0.5, filling=0.5, temperature=[0.01, 0.1],
                               minimal_metric=True, band=band), solver)
        path, _ = run_deck(tmp_path, name, text, np=0)
        with h5py.File(path, "r") as f:
            out[name] = {k: f["superfluid"][k][()] for k in ("metric_integral_minimal",
                                                             "metric_integral_ordinary", "D_s")}
    for key, ref in out["dense"].items():
        assert np.abs(out["window"][key] - ref).max() <= 1e-8 * np.abs(ref).max(), key
    assert np.trace(out["dense"]["metric_integral_minimal"]) < np.trace(
        out["dense"]["metric_integral_ordinary"])


def test_shifted_model_keeps_hoppings_and_spectrum():
    parent = haldane(1.0, 0.3, 0.0, math.pi / 2)
    moved = shifted_model(parent, [[0.0, 0.0], [0.2, -0.1]])
    assert isinstance(moved, TightBinding) and moved.t is not parent.t
    np.testing.assert_array_equal(moved.t, parent.t)
    np.testing.assert_allclose(moved.positions[1] - parent.positions[1], [0.2, -0.1])
    k = np.random.default_rng(1).normal(size=(5, 2))
    np.testing.assert_allclose(np.linalg.eigvalsh(moved.hamiltonian(k, False)[0]),
                               np.linalg.eigvalsh(parent.hamiltonian(k, False)[0]), atol=1e-12)
    with pytest.raises(TypeError):
        shifted_model(object(), np.zeros((2, 2)))


# --- (5) deck ------------------------------------------------------------------------------

BASE = deck_text(HALDANE_T, kgrid_table(8), sweep_table(delta=[0.01])) + "[superfluid]\n"


def test_deck_superfluid_section_and_defaults():
    cfg = parse_deck(BASE + "U = 0.1\nfilling = 0.25\ntemperature = {start = 0.01, stop = 1, "
                     'num = 3, spacing = "log"}\n')
    sf = cfg.superfluid
    assert (sf.U, sf.filling, sf.n_orb, sf.band, sf.minimal_metric) == (0.1, 0.25, None, 0, True)
    np.testing.assert_allclose(sf.temperature, [0.01, 0.1, 1.0])
    assert cfg.defaults["superfluid.n_orb"] == "model.norb"
    assert parse_deck(BASE.replace("[superfluid]\n", "")).superfluid is None


@pytest.mark.parametrize(("body", "key", "allowed"), [
    ("filling = 0.5\ntemperature = [1]", "superfluid.U", "required key is missing"),
    ("U = -0.1\nfilling = 0.5\ntemperature = [1]", "superfluid.U", "must be > 0 meV"),
    ("U = 0.1\nfilling = 1.0\ntemperature = [1]", "superfluid.filling", "must be in (0, 1)"),
    ("U = 0.1\nfilling = 0\ntemperature = [1]", "superfluid.filling", "must be in (0, 1)"),
    ("U = 0.1\nfilling = 0.5\nn_orb = 0\ntemperature = [1]", "superfluid.n_orb", ">= 1"),
    ("U = 0.1\nfilling = 0.5\nband = -1\ntemperature = [1]", "superfluid.band", ">= 0"),
    ("U = 0.1\nfilling = 0.5\ntemperature = [1, -2]", "superfluid.temperature[1]", "1e+06] K"),
    ("U = 0.1\nfilling = 0.5", "superfluid.temperature", "required key is missing"),
    ("U = 0.1\nfilling = 0.5\ntemperature = [1]\nminimal_metric = 1",
     "superfluid.minimal_metric", "a boolean"),
    ("U = 0.1\nfilling = 0.5\ntemperature = [1]\nmu = 0", "superfluid.mu", "unknown key"),
])
def test_deck_superfluid_errors(body, key, allowed):
    with pytest.raises(InputError) as info:
        parse_deck(BASE + body + "\n")
    assert info.value.key == key and allowed in str(info.value)
    assert "\n" not in str(info.value)


def test_band_out_of_range_is_an_input_error():
    spec = SuperfluidSpec(U=0.1, filling=0.5, n_orb=None, band=2,
                          temperature=np.array([0.1]), minimal_metric=True)
    with pytest.raises(InputError, match=r"superfluid.band = 2: must be a band index in 0..1"):
        compute_superfluid(SELF, flat_haldane(), spec, (4, 4))


# --- figure --------------------------------------------------------------------------------

def test_plot_superfluid_writes_png_and_pdf(tmp_path):
    plot = pytest.importorskip("qgt_mpi.plot.superfluid")
    spec = SuperfluidSpec(U=0.1, filling=0.5, n_orb=None, band=0,
                          temperature=np.geomspace(0.01, 1.0, 15), minimal_metric=True)
    data, attrs = compute_superfluid(SELF, flat_haldane(), spec, (12, 12))
    path = tmp_path / "sf.h5"
    with h5py.File(path, "w") as f:
        grp = f.create_group("superfluid")
        grp.attrs.update(attrs)
        for name, (array, meta) in data.items():
            grp.create_dataset(name, data=array).attrs.update(meta)
    with h5py.File(path, "r") as f:
        written = plot.plot_superfluid(f, str(tmp_path / "fig"))
    assert sorted(p.rsplit(".", 1)[1] for p in written) == ["pdf", "png"]
    assert all((tmp_path / "fig" / p.rsplit("/", 1)[1]).stat().st_size > 1000 for p in written)


# --- (6) MPI -------------------------------------------------------------------------------

@pytest.mark.mpi
def test_world_equals_self_and_ranks_agree(comm):
    """compute_superfluid on the world comm equals COMM_SELF; arrays bit-identical over ranks."""
    spec = SuperfluidSpec(U=0.1, filling=0.4, n_orb=None, band=0,
                          temperature=np.geomspace(0.01, 1.0, 7), minimal_metric=True)
    model = shifted_model(flat_haldane(), [[0.0, 0.0], [0.07, -0.03]])
    world, w_attrs = compute_superfluid(comm, model, spec, (10, 9))
    alone, s_attrs = compute_superfluid(MPI.COMM_SELF, model, spec, (10, 9))
    worst = 0.0
    for name, (array, _) in world.items():
        ref = alone[name][0]
        scale = max(float(np.max(np.abs(ref), initial=0.0)), 1e-300)
        worst = max(worst, float(np.max(np.abs(array - ref), initial=0.0)) / scale)
    assert_all(comm, worst < 1e-9, f"world vs COMM_SELF relative difference {worst:.3g}")
    assert_all(comm, w_attrs["chern"] == s_attrs["chern"], "Chern number differs")
    root = comm.bcast({k: v[0] for k, v in world.items()}, root=0)
    same = all(np.array_equal(root[k], v[0], equal_nan=True) for k, v in world.items())
    assert_all(comm, same, "superfluid arrays differ between ranks")
