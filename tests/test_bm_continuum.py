"""Bistritzer–MacDonald continuum model (theory §2.5): Dirac cones, magic angle, symmetries."""

from __future__ import annotations

import numpy as np
import pytest
from decks import kgrid_table, sweep_table

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.geometry.chern import chern_numbers
from qgt_mpi.io.checks import InputError
from qgt_mpi.io.deck import parse_deck
from qgt_mpi.models import build_model
from qgt_mpi.models.bm_continuum import BMContinuum, k_theta, theta_from_alpha
from qgt_mpi.run.setup import model_from_config
from qgt_mpi.solvers import DenseSolver

MAGIC_ALPHA = 0.58566356  # chiral first magic α: bandwidth minimisation, bench/bench_tbg.py


def grid(model: BMContinuum, n: int) -> np.ndarray:
    """Cartesian points (i/n) b1 + (j/n) b2 of an n×n grid."""
    i, j = np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij")
    return np.column_stack([i.ravel(), j.ravel()]) @ model.b


def flat_energies(model: BMContinuum, k: np.ndarray) -> np.ndarray:
    """The two bands closest to charge neutrality, (nk, 2)."""
    e = np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])
    n = model.norb // 2
    return e[:, n - 1:n + 1]


def test_basis_size_pattern_and_derivatives():
    model = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=3)
    assert model.norb == 148  # 2 layers × 37 plane waves × 2 sublattices
    assert BMContinuum(theta=1.05, shells=5).norb == 4 * (1 + 3 * 5 * 6)
    key = model.rows * model.norb + model.cols
    assert np.all(np.diff(key) > 0)
    k = np.array([[0.031, -0.017], [0.2, 0.1]])
    ham, dham = model.hamiltonian(k)
    assert np.allclose(ham, ham.conj().swapaxes(-1, -2), atol=1e-12)
    h, dx, dy = model.values(k[1])
    dense = np.zeros((3, model.norb, model.norb), complex)
    dense[:, model.rows, model.cols] = [h, dx, dy]
    assert np.allclose(dense, [ham[1], dham[0, 1], dham[1, 1]])
    assert np.allclose(model.csr(k[1])[0].toarray(), ham[1])
    eps = 1e-4  # H is affine in k: the central difference is exact up to rounding
    step = np.array([eps, 0.0])
    fd = model.hamiltonian(k + step, False)[0] - model.hamiltonian(k - step, False)[0]
    assert np.allclose(fd / (2 * eps), dham[0], atol=1e-8)
    assert np.allclose(model.lattice @ model.b.T, 2 * np.pi * np.eye(2))
    assert model.cell_area == pytest.approx(np.sqrt(3) / 2 * model.info["moire_length"] ** 2)


@pytest.mark.parametrize("valley", [1, -1])
def test_dirac_cones_at_moire_k_without_coupling(valley):
    model = BMContinuum(theta=1.05, w0=0.0, w1=0.0, shells=3, valley=valley)
    hs = model.high_symmetry_points()
    dk = 0.01 * model.k_theta * np.array([np.cos(0.3), np.sin(0.3)])
    for name in ("K", "K'"):
        e = np.sort(np.abs(np.linalg.eigvalsh(model.hamiltonian((hs[name] + dk)[None],
                                                                False)[0][0])))
        assert e[:2] == pytest.approx([model.hbar_v * np.linalg.norm(dk)] * 2, rel=1e-10)
    e_gamma = np.abs(np.linalg.eigvalsh(model.hamiltonian(hs["G"][None], False)[0][0]))
    assert e_gamma.min() == pytest.approx(model.hbar_v * model.k_theta, rel=1e-10)


def test_alpha_and_theta_conventions():
    model = BMContinuum(alpha=MAGIC_ALPHA, w0=0.0, w1=110.0)
    assert model.w1 / (model.hbar_v * k_theta(model.theta)) == pytest.approx(MAGIC_ALPHA)
    assert theta_from_alpha(MAGIC_ALPHA, 110.0) == pytest.approx(model.theta)
    assert 1.0 < model.theta < 1.1  # w1 = 110 meV puts α ≈ 0.586 near 1.05°
    for bad in ({}, {"theta": 1.0, "alpha": 0.5}, {"theta": 1.0, "shells": 0},
                {"theta": 1.0, "valley": 0}):
        with pytest.raises(ValueError):
            BMContinuum(**bad)


def test_chiral_magic_angle_minimises_bandwidth():
    widths = []
    for alpha in (0.57, MAGIC_ALPHA, 0.60):
        model = BMContinuum(alpha=alpha, w0=0.0, w1=110.0, shells=4)
        k_pts = grid(model, 4)
        h = model.hamiltonian(k_pts, derivatives=False)[0]
        assert np.allclose(model.operators["sublattice"] @ h[3] + h[3] @ model.operators[
            "sublattice"].toarray(), 0, atol=1e-12)  # chiral: {H, σz} = 0 at w0 = 0
        widths.append(np.ptp(flat_energies(model, k_pts)))
    assert widths[1] < 1e-4 < 1.0 < min(widths[0], widths[2])  # meV


def test_c2zt_gives_zero_curvature_and_mass_gives_chern_bands():
    k = grid(BMContinuum(theta=1.05), 5) + 0.013  # generic points: no degeneracies
    for mass, expect_zero in ((0.0, True), (10.0, False)):
        model = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=3, mass=mass)
        n = model.norb // 2
        curvature, _ = band_geometry(DenseSolver().solve(model, k))
        scale = np.abs(curvature[:, n - 1:n + 1]).max()
        assert (scale < 1e-6) if expect_zero else (scale > 1.0)
    for valley, sign in ((1, 1), (-1, -1)):
        model = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=3, mass=10.0, valley=valley)
        n = model.norb // 2
        c = chern_numbers(model, DenseSolver(), 8, 8, [(n - 1, n), (n, n + 1)])
        # Integers up to the cutoff (the unwrapped corner k + G sees a shifted cutoff): 1e-4
        assert c == pytest.approx([sign, -sign], abs=1e-3)


def test_valleys_are_time_reversal_partners():
    plus = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=6, valley=1)
    minus = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=6, valley=-1)
    k = np.array([[0.11, 0.27], [0.4, 0.55], [0.6, 0.3]]) @ plus.b
    two_m = plus.b[0] + plus.b[1]
    assert np.allclose(minus.hamiltonian(k, False)[0],
                       plus.hamiltonian(two_m - k, False)[0].conj(), atol=1e-12)
    # ε_−(k) = ε_+(−k): −k and 2M − k differ by a reciprocal vector; −k lies outside the
    # grid cell, far from the cutoff centre, hence 6 shells (4 shells: 1e-3 meV)
    assert np.abs(flat_energies(minus, k) - flat_energies(plus, -k)).max() < 1e-7


def test_shell_convergence_and_shift_map():
    k = np.array([[0.5, 0.5], [0.1, 0.2], [0.0, 0.0]])
    ref = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=6)
    e_ref = flat_energies(ref, k @ ref.b)
    err = {s: np.abs(flat_energies(BMContinuum(theta=1.05, shells=s), k @ ref.b) - e_ref)
           for s in (3, 4)}
    assert err[3][0].max() < 1e-4 and err[3].max() < 5e-3  # meV: centre M, corner Γ
    assert err[4].max() < 1e-5
    model = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=4)
    src, dst = model.shift_map(1, 0)
    k0 = np.array([0.4, 0.3]) @ model.b
    u0 = np.linalg.eigh(model.hamiltonian(k0[None], False)[0][0])[1][:, model.norb // 2]
    u1 = np.linalg.eigh(model.hamiltonian((k0 + model.b[0])[None], False)[0][0])[1][
        :, model.norb // 2]
    assert abs(np.vdot(u0[dst], u1[src])) == pytest.approx(1.0, abs=1e-6)


def test_trace_condition_of_sublattice_polarised_flat_bands():
    """theory §5.7: at the magic α the sublattice-polarised flat bands are ideal.

    A small sublattice mass makes the chiral zero modes (σz = ±1) exact eigenstates at ±mass/2,
    so the existing per-band geometry gives their metric and curvature directly.
    """
    violation = {}
    for alpha in (MAGIC_ALPHA, 0.55):
        model = BMContinuum(alpha=alpha, w0=0.0, w1=110.0, shells=4, mass=10.0)
        n = model.norb // 2
        eig = DenseSolver().solve(model, grid(model, 5))
        curvature, metric = band_geometry(eig)
        band = n  # the A-polarised band at +mass/2
        vec = eig.vectors[:, :, band]
        sub = np.einsum("ko,o,ko->k", vec.conj(), model.operators["sublattice"].diagonal(),
                        vec).real
        trace = metric[:, band, 0] + metric[:, band, 1]
        omega = np.abs(curvature[:, band])
        violation[alpha] = np.abs(trace - omega).max() / omega.mean()
        if alpha == MAGIC_ALPHA:
            assert sub == pytest.approx(1.0, abs=1e-6)
            area = abs(np.linalg.det(model.b)) / 25
            assert trace.sum() * area / (2 * np.pi) == pytest.approx(1.0, abs=1e-3)
    assert violation[MAGIC_ALPHA] < 1e-3 < 0.1 < violation[0.55]


def test_build_model_registry():
    params = {"theta": 1.05, "alpha": 0.0, "w0": 88.0, "w1": 110.0, "hbar_v": 594.4,
              "shells": 3.0, "valley": -1.0, "mass": 0.0}
    model = build_model("bm_continuum", params)
    assert model.describe()["valley"] == -1 and model.norb == 148
    with pytest.raises(ValueError, match="exactly one"):
        build_model("bm_continuum", {**params, "theta": 0.0})


def _deck(model_text: str) -> str:
    """A one-point deck on a 4×4 grid around the body of a [model] table."""
    return f"[model]\n{model_text}\n" + kgrid_table(4) + sweep_table(delta=[0.5])


@pytest.mark.parametrize(("model_text", "norb"), [
    ('kind = "bm_continuum"\ntheta = 1.05\nshells = 2', 4 * 19),
    ('kind = "bm_continuum"\nalpha = 0.5\nw0 = 0.0\nvalley = -1', 148),
    ('kind = "tbg_atomistic"\nm = 2', 76),
])
def test_decks_build_both_kinds(model_text, norb):
    assert model_from_config(parse_deck(_deck(model_text))).norb == norb


@pytest.mark.parametrize("model_text", ['kind = "bm_continuum"\nw1 = 100.0',
                                        'kind = "bm_continuum"\ntheta = 1.0\nvalley = 2',
                                        'kind = "tbg_atomistic"\nm = 0'])
def test_bad_decks_name_the_model(model_text):
    with pytest.raises(InputError, match="model"):
        model_from_config(parse_deck(_deck(model_text)))
