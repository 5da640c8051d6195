"""Full thermoelectric and thermal tensors (theory §4.6) against limits.

Clean-limit entropy formula for α_xy (Berry curvature from geometry.bands on the same grid),
Mott and Wiedemann–Franz in the Hall channel, the entropy per carrier of a Hall-dominated flat
Chern band, Onsager/TR sign changes (φ → −φ), the fixed-filling solver, and rank invariance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from decks import PAPER, deck_text, kgrid_table, sweep_table
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K, K_B_OVER_E_UV_PER_K
from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.kernels.closed import fermi
from qgt_mpi.kernels.hall_moments import entropy
from qgt_mpi.models import build_model, haldane, kgrid_points
from qgt_mpi.run.driver import compute
from qgt_mpi.run.sweep import finish_in_memory
from qgt_mpi.solvers.dense import DenseSolver

SELF = MPI.COMM_SELF
DISPERSIVE = {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.2}  # C = ∓1, gap ≈ 2.5 meV at K


def _run(model, grid, kts, mus, deltas, comm=SELF, **fixed):
    job, tr, _ = compute(comm, model, (grid, grid), np.asarray(kts, float) / K_B_MEV_PER_K,
                         np.asarray(mus, float), np.asarray(deltas, float), **fixed)
    return job, tr


def _flat_model(phi=math.pi / 2):
    return build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": phi},
                       {"gap": 0.5, "range": math.inf, "nfine": 48})


def test_clean_limit_alpha_xy_is_berry_curvature_times_entropy():
    """δ → 0: α_xy = (e k_B/ħ) Σ_n ∫ Ω_n s(f_n) d²k/(2π)² (theory §4; sign fixed by §1's Ω, with
    σ_xy = −(e²/ħ) Σ_n ∫ Ω_n f_n), μ in the lower band, in the gap and in the upper band."""
    model, n, kt = haldane(**DISPERSIVE), 36, 0.3
    mus = np.array([-2.0, 0.0, 1.5])
    _, tr = _run(model, n, [kt], mus, [[1e-3, 1e-3], [1e-4, 1e-4]])
    eig = DenseSolver().solve(model, kgrid_points(model.reciprocal, n, n, 0, n * n))
    omega, _ = band_geometry(eig)
    norm = n * n * model.cell_area
    for i, mu in enumerate(mus):
        f = fermi(eig.energies - mu, kt)
        clean = 2 * math.pi * np.sum(omega * entropy(f)) / norm  # in e k_B/h
        sigma_clean = -2 * math.pi * np.sum(omega * f) / norm  # in e²/h
        err = np.abs(tr["alpha_xy"][i, :, 0] / clean - 1)
        assert abs(clean) > 0.05
        assert err[1] < 1e-6  # δ = 1e-4 meV
        assert err[0] > 3 * err[1]  # and the deviation shrinks with δ
        assert tr["sigma_xy"][i, 1, 0] == pytest.approx(sigma_clean, rel=1e-6)


@pytest.fixture(scope="module")
def sommerfeld():
    """Dispersive Haldane, δ = 0.05 meV ≫ k_BT; μ grid for a 5-point ∂σ_xy/∂μ."""
    d, hs = 0.05, 0.005
    mu0 = np.array([-2.0, 1.5])
    mus = np.concatenate([mu0, mu0 - 2 * hs, mu0 - hs, mu0 + hs, mu0 + 2 * hs])
    kts = np.array([d / 10, d / 20, d / 1000])
    _, tr = _run(haldane(**DISPERSIVE), 36, kts, mus, [[d, d]])
    s = tr["sigma_xy"][:, 0, 2].reshape(5, 2)
    dsigma = (s[1] - 8 * s[2] + 8 * s[3] - s[4]) / (12 * hs)  # T → 0, per meV
    return tr, kts, dsigma


def test_mott_relation_in_the_hall_channel(sommerfeld):
    """α_xy → −(π²k_B²T/3e) ∂σ_xy/∂μ, the error falling like T² (Sommerfeld)."""
    tr, kts, dsigma = sommerfeld
    err = [np.abs(tr["alpha_xy"][:2, 0, t] / (-(math.pi**2 / 3) * kts[t] * dsigma) - 1)
           for t in (0, 1)]
    assert np.all(err[1] < 1.5e-2)
    assert err[1][0] < 0.35 * err[0][0]  # T halves: error ÷ ≈ 4


def test_wiedemann_franz_in_both_channels(sommerfeld):
    """κ_xx/(Tσ_xx) and κ_xy/(Tσ_xy) → L_0 at low T for a dispersive band (tensor κ)."""
    tr, _, _ = sommerfeld
    for key in ("lorenz_ratio_xx_full", "lorenz_ratio_xy"):
        e0 = np.abs(tr[key][:2, 0, 0] - 1)
        e1 = np.abs(tr[key][:2, 0, 1] - 1)
        assert np.all(e1 < 1.5e-2), key
        assert np.max(e1) < 0.5 * np.max(e0), key


def test_flat_chern_band_seebeck_is_entropy_per_carrier():
    """δ ≪ k_BT ≪ Δ, Hall-dominated (σ_xx ≪ σ_xy): S_xx → −(k_B/e) s(ν)/ν for filling ν of the
    lower flat band (electrons, charge −e), while the paper's diagonal ratio is odd about
    ν = 1/2 and vanishes there."""
    kt = 0.02
    mus = -0.25 + kt * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    _, tr = _run(_flat_model(), 12, [kt], mus, [[1e-4, 1e-4], [1e-3, 1e-3]])
    nu = tr["filling"][:, :, 0, 0]
    target = -K_B_OVER_E_UV_PER_K * entropy(nu) / nu
    err = np.abs(tr["seebeck_xx"][:, :, 0] / target - 1)
    assert np.all(err[:, 0] < 6e-3)
    assert np.all(err[[0, 1, 3, 4], 1] > 4 * err[[0, 1, 3, 4], 0])  # → 0 linearly in δ
    assert np.all(np.diff(tr["seebeck_xx"][:, 0, 0]) > 20)  # 264 → 36 μV/K as ν: 0.12 → 0.88
    assert tr["seebeck_xx"][2, 0, 0] == pytest.approx(-2 * math.log(2) * K_B_OVER_E_UV_PER_K,
                                                      rel=1e-4)
    assert abs(tr["seebeck"][2, 0, 0]) < 0.1  # the diagonal ratio misses it entirely
    assert np.all(tr["sigma_xx"][:, 0, 0] < 6e-3 * tr["sigma_xy"][:, 0, 0])


@pytest.mark.parametrize("flat", [False, True])
def test_antisymmetric_parts_change_sign_with_chern_number(flat):
    """φ → −φ (time reversal, C → −C): σ_xy, α_xy, κ_xy, Nernst S_xy flip; xx parts stay."""
    kts, mus, deltas = [0.05, 0.3], [-1.0, 0.1, 1.2], [[0.02, 0.02], [0.01, 0.05]]
    if flat:
        mus = [-0.3, -0.25, -0.2]
        runs = [_run(_flat_model(p), 12, kts, mus, deltas)[1] for p in (math.pi / 2, -math.pi / 2)]
    else:
        runs = [_run(haldane(**{**DISPERSIVE, "phi": p}), 24, kts, mus, deltas)[1]
                for p in (1.2, -1.2)]
    plus, minus = runs
    for key in ("sigma_xy", "alpha_xy", "kappa_xy", "seebeck_xy"):
        assert np.max(np.abs(plus[key])) > 0
        np.testing.assert_allclose(minus[key], -plus[key], rtol=1e-9,
                                   atol=1e-12 * np.max(np.abs(plus[key])))
    for key in ("sigma_xx", "alpha_xx", "seebeck_xx", "kappa_xx_full", "lorenz_ratio_xy"):
        np.testing.assert_allclose(minus[key], plus[key], rtol=1e-9)


def test_fixed_filling_sweep_solves_mu():
    """μ(ν, T) reproduces the requested filling; ν = 1/2 of a flat band sits at its energy."""
    temps = np.array([0.2, 2.0, 20.0])
    nu = np.array([0.1, 0.5, 0.9])
    job, out, _ = compute(SELF, _flat_model(), (12, 12), temps, np.array([0.0]),
                          np.array([[0.01, 0.01]]), filling=nu, filling_bands=[0])
    np.testing.assert_allclose(out["filling"][:, 0, :, 0], nu[:, None] * np.ones(3), atol=1e-12)
    np.testing.assert_allclose(out["mu"][1, 0], -0.25, atol=1e-12)
    assert np.all(np.diff(out["mu"][:, 0, 0]) > 0)
    with pytest.raises(ValueError, match="filling"):
        finish_in_memory(SELF, job.sums, 1.0, 1.0, np.array([1.2]), [0])


@pytest.mark.mpi
def test_tensors_do_not_depend_on_rank_count():
    """Full tensors, density and the fixed-filling sweep: every rank count gives the serial
    values (≤ 1e-12 relative)."""
    comm = MPI.COMM_WORLD
    model = haldane(**DISPERSIVE)
    args = (model, 18, [0.05, 0.3], [-1.0, 0.0, 1.3], [[0.02, 0.02]])
    _, par = _run(*args, comm=comm)
    _, ser = _run(*args)
    nu = np.array([0.3, 0.7])
    fixed = {"filling": nu, "filling_bands": [0]}
    _, par_f = _run(*args, comm=comm, **fixed)
    _, ser_f = _run(*args, **fixed)
    keys = ("alpha_xy", "seebeck_xx", "seebeck_xy", "kappa_xy", "density", "filling")
    bad = [k for k in keys if not np.allclose(par[k], ser[k], rtol=1e-12, atol=0)]
    bad += [f"filled {k}" for k in (*keys, "mu")
            if not np.allclose(par_f[k], ser_f[k], rtol=1e-12, atol=1e-15)]
    assert comm.allgather(bad) == [[]] * comm.size, bad


def _filling_deck(**axes: object) -> str:
    """The paper's flattened model at fixed filling on 8×8; ``axes``: filling and the rest."""
    return deck_text(PAPER, kgrid_table(8),
                     sweep_table([0.3, 3.0], **{"mu": None, "delta": [0.01], **axes}),
                     title="fixed filling")


@pytest.mark.subprocess
def test_deck_filling_sweep_end_to_end(tmp_path):
    """[sweep] filling/filling_bands through the CLI on 2 ranks: solved μ and datasets match
    the Python API; mu together with filling, or a band outside the model, exit 2."""
    import h5py
    from runner import qgt, run_deck

    out, _ = run_deck(tmp_path, "fill", _filling_deck(filling=[0.25, 0.5], filling_bands=[0, 1]))
    _, ref, _ = compute(SELF, _flat_model(), (8, 8), np.array([0.3, 3.0]), np.array([0.0]),
                        np.array([[0.01, 0.01]]), filling=np.array([0.25, 0.5]),
                        filling_bands=[0, 1])
    with h5py.File(out, "r") as f:
        tr = f["transport"]
        assert "mu" not in tr
        np.testing.assert_allclose(tr["filling_target"][()], [0.25, 0.5])
        np.testing.assert_allclose(tr["mu_solved"][()], ref["mu"], rtol=1e-12, atol=1e-14)
        for key in ("seebeck_xx", "alpha_xy", "kappa_xy", "filling"):
            np.testing.assert_allclose(tr[key][()], ref[key], rtol=1e-10,
                                       atol=1e-10 * np.max(np.abs(ref[key])))
        assert tr["seebeck"].attrs["long_name"].startswith("paper Eq. 19")
    info = qgt(["info", str(out)])
    assert info.returncode == 0 and "2 filling x 1 delta x 2 T" in info.stdout, info.stderr
    deck = tmp_path / "bad.toml"
    for axes, key in (({"filling": [0.5], "mu": [0.0]}, "sweep.mu"),
                      ({"filling": [0.5], "filling_bands": [2]}, "sweep.filling_bands"),
                      ({"filling": [1.5]}, "sweep.filling[0]")):
        deck.write_text(_filling_deck(**axes))
        bad = qgt(["run", str(deck), "-o", str(tmp_path / "bad.h5")], np=1)
        assert bad.returncode == 2 and key in bad.stderr, bad.stderr
        assert not (tmp_path / "bad.h5").exists()
