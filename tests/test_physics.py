"""Physical limits of the whole pipeline (theory §4, §5, §7): TKNN, Drude, flat bands."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K, K_B_OVER_E_UV_PER_K
from qgt_mpi.models import build_model, haldane
from qgt_mpi.run.driver import compute
from qgt_mpi.run.sweep import finish_in_memory
from qgt_mpi.transport.accumulate import TransportSums

SELF = MPI.COMM_SELF
FLAT = {"gap": 0.5, "range": math.inf, "nfine": 48}
HALDANE = {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": math.pi / 2}


def _run(model, grid, temps, mus, deltas):
    """Transport and geometry of a model on a grid (serial)."""
    _, tr, geo = compute(SELF, model, grid, np.asarray(temps, float), np.asarray(mus, float),
                         np.asarray(deltas, float))
    return tr, geo


@pytest.mark.parametrize("mass, chern_lower", [(0.0, -1), (2.5, 0)])
def test_hall_conductivity_tends_to_tknn(mass, chern_lower):
    """μ in the gap, T, δ → 0: σ_xy → −(e²/h) Σ_occ C_n (theory §3), 0 in the trivial phase."""
    model = haldane(1.0, 0.3, mass, math.pi / 2)
    tr, geo = _run(model, (48, 48), [0.05], [0.0], [[1e-3, 1e-3]])
    assert geo["chern_groups"][0] == chern_lower
    assert tr["sigma_xy"][0, 0, 0] == pytest.approx(-chern_lower, abs=2e-3)


def test_hall_conductivity_converges_in_delta_and_half_fills():
    """Flat C = ±1 bands, T → 0: σ_xy → 1 mid-gap (error falls at least ∝ δ; by particle–hole
    symmetry the O(δ), O(δ²) tails cancel, giving δ³) and → ½ with μ on the lower band,
    where f(ε_1) = ½ in σ_xy = −Σ f_n C_n (theory §3)."""
    model = build_model("haldane", HALDANE, FLAT)
    deltas = [[0.004, 0.004], [0.002, 0.002], [0.001, 0.001]]
    tr, _ = _run(model, (24, 24), [0.01], [0.0, -0.25], deltas)
    dev = np.abs(tr["sigma_xy"][0, :, 0] - 1.0)
    assert dev[2] < 1e-4
    assert np.all(dev[:-1] / dev[1:] > 1.9)
    half = tr["sigma_xy"][1, :, 0]
    assert np.all(np.abs(half - 0.5) < 0.02)
    assert np.all(np.diff(np.abs(half - 0.5)) < 0)


def test_flat_bands_have_no_drude_part_and_sigma_is_linear_in_delta():
    """theory §7: σ_xx of flat Chern bands is purely geometric and ∝ δ at T = Δ/k_B."""
    model = build_model("haldane", HALDANE, FLAT)
    temp = 0.5 / K_B_MEV_PER_K
    tr, geo = _run(model, (24, 24), [temp], [-0.25, 0.0], [[0.001] * 2, [0.002] * 2])
    assert np.max(geo["bandwidth"]) < 1e-12
    assert np.max(np.abs(tr["sigma_xx_drude"])) < 1e-14 * np.max(np.abs(tr["sigma_xx"]))
    ratio = tr["sigma_xx"][:, 1, 0] / tr["sigma_xx"][:, 0, 0]
    np.testing.assert_allclose(ratio, 2.0, rtol=1e-3)


def test_flat_bands_midgap_seebeck_vanishes():
    """Particle–hole symmetric flat bands, μ mid-gap: S = 0 (theory §7)."""
    model = build_model("haldane", HALDANE, FLAT)
    tr, _ = _run(model, (12, 12), [1.0, 6.0, 20.0], [0.0], [[0.01, 0.01]])
    assert np.max(np.abs(tr["seebeck"][0])) < 1e-9


def test_flattening_leaves_integrated_geometry_unchanged():
    """Metric integral, Chern numbers and Ω_I agree between Haldane and its flattening."""
    _, geo_h = _run(haldane(**HALDANE), (30, 30), [1.0], [0.0], [[0.01, 0.01]])
    _, geo_f = _run(build_model("haldane", HALDANE, FLAT), (30, 30), [1.0], [0.0],
                    [[0.01, 0.01]])
    np.testing.assert_allclose(geo_f["metric_integral"], geo_h["metric_integral"], rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_array_equal(geo_f["chern_groups"], geo_h["chern_groups"])
    assert np.all(geo_f["omega_I"] >= geo_f["omega_I_bound"] - 1e-12)


def _parabolic(mu, delta, kt, npts=400_000):
    """All theory §4 observables of ε = k² (m = 1/2) from TransportSums, radial quadrature."""
    e_max = mu + 2000 * delta
    k = np.linspace(0, math.sqrt(e_max), npts + 1)[1:] - 0.5 * math.sqrt(e_max) / npts
    dk = math.sqrt(e_max) / npts
    eps = (k**2)[:, None]
    # ∫d²k/(2π)² v_x² W = ∫ k dk/(2π) (v²/2) W with v = 2k: fold the measure into M_xx.
    weight = (k * dk / (2 * math.pi) * (2 * k) ** 2 / 2)[:, None, None]
    prods = {"M_xx": weight, "M_yy": weight, "N_xy": np.zeros_like(weight)}
    temps = np.array([kt / K_B_MEV_PER_K])
    sums = TransportSums(temps, np.array([mu]), np.array([[delta]]))
    sums.add(eps, prods)
    return {k: v[0, 0, 0] for k, v in finish_in_memory(SELF, sums, 1.0, 1.0).items()}


def test_parabolic_band_drude_equals_n_e2_tau_over_m():
    """Paper Eq. 1 with τ = ħ/(2δ): σ = n e²τ/m → E_F/(2δ) in e²/h for ε = k²/2m (theory §7)."""
    mu, delta, kt = 1.0, 0.01, 1e-5
    n_tau_over_m = mu / (2 * delta)  # n = mE_F/2π, τ = 1/(2δ): σ/(e²/h) = 2π n τ/m
    # Exact T = 0 value at finite δ (Lorentzian-broadened, band bottom at 0):
    x = mu / delta
    exact = (1 / (2 * math.pi)) * (1 / math.pi) * (
        0.5 / (1 + x**2) + x * (0.5 * (math.pi / 2 + math.atan(x)) + 0.5 * x / (1 + x**2))
    ) * 2 * math.pi
    got = _parabolic(mu, delta, kt)["sigma_xx_drude"]
    assert got == pytest.approx(exact, rel=1e-5)
    assert got == pytest.approx(n_tau_over_m, rel=5e-3)


def test_parabolic_band_wiedemann_franz_and_mott():
    """Degenerate metal (δ ≪ k_BT ≪ E_F): L/L_0 → 1 and S → Mott's −(π²/3)(k_B/e) k_BT/E_F.

    For ε = k² the transport function is σ(E) ∝ E, so d ln σ/dE = 1/E_F; carriers have
    charge −e (theory §1), hence the minus sign. Corrections are O((k_BT/E_F)², δ/E_F).
    """
    mu, delta, kt = 1.0, 0.002, 0.02
    got = _parabolic(mu, delta, kt)
    assert got["lorenz_ratio"] == pytest.approx(1.0, abs=5e-3)
    mott = -(math.pi**2 / 3) * K_B_OVER_E_UV_PER_K * kt / mu
    assert got["seebeck"] == pytest.approx(mott, rel=1e-5)  # σ(E) ∝ E: no O(T²) term
    assert got["sigma_xx"] == pytest.approx(got["sigma_xx_drude"], rel=1e-12)
