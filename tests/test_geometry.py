"""Tests of the dense solver, per-band geometry and link-variable Chern numbers."""

from __future__ import annotations

import numpy as np
import pytest

from qgt_mpi.geometry import (
    band_geometry,
    chern_numbers,
    degenerate_pairs,
    pair_products,
    plaquette_flux,
    qgt_pair_sums,
)
from qgt_mpi.models import TightBinding, build_flattened, haldane, kgrid_points
from qgt_mpi.solvers import DenseSolver, Eigenpairs

SOLVER = DenseSolver()
PARAMS = {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": np.pi / 2}


def random_k(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-7.0, 7.0, size=(n, 2))


def projectors(model, k: np.ndarray) -> np.ndarray:
    """P_n(k) = |u_n><u_n| from eigh, (nk, nb, norb, norb); gauge-free."""
    _, vecs = np.linalg.eigh(model.hamiltonian(k, False)[0])
    return np.einsum("kan,kbn->knab", vecs, vecs.conj())


def projector_qgt(model, k: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """T^(n)_ij = Tr[P ∂_iP ∂_jP] by central differences; (nk, nb, 2, 2) complex."""
    proj = projectors(model, k)
    grads = []
    for axis in range(2):
        step = np.zeros(2)
        step[axis] = h
        grads.append((projectors(model, k + step) - projectors(model, k - step)) / (2 * h))
    return np.stack([np.stack([np.einsum("knab,knbc,knca->kn", proj, gi, gj)
                               for gj in grads], -1) for gi in grads], -2)


def integrated_curvature(model, n: int) -> np.ndarray:
    """(1/2π) Σ Ω ΔA on the n×n grid, per band."""
    eig = SOLVER.solve(model, kgrid_points(model.reciprocal, n, n, 0, n * n))
    area = abs(np.linalg.det(model.reciprocal)) / n**2
    return band_geometry(eig)[0].sum(axis=0) * area / (2 * np.pi)


def test_solver_contract():
    model, k = haldane(**PARAMS), random_k(64)
    eig = SOLVER.solve(model, k)
    assert isinstance(eig, Eigenpairs) and SOLVER.name == "dense"
    assert eig.energies.shape == (64, 2) and np.all(np.diff(eig.energies, axis=1) >= 0)
    gram = eig.vectors.conj().swapaxes(-1, -2) @ eig.vectors
    assert np.allclose(gram, np.eye(2), atol=1e-13)
    assert eig.velocities.shape == (2, 64, 2, 2)
    assert SOLVER.solve(model, k, velocities=False).velocities is None
    empty = SOLVER.solve(model, np.zeros((0, 2)))
    assert empty.energies.shape == (0, 2) and empty.velocities.shape == (2, 0, 2, 2)


def test_diagonal_velocities_are_band_slopes():
    """Hellmann–Feynman: v^i_nn = ∂ε_n/∂k_i, checked by finite differences of ε."""
    model, k, h = haldane(0.8, -0.2, 0.35, 0.9), random_k(50, seed=1), 1e-6
    vel = SOLVER.solve(model, k).velocities
    for axis in range(2):
        step = np.zeros(2)
        step[axis] = h
        slope = (SOLVER.solve(model, k + step, False).energies
                 - SOLVER.solve(model, k - step, False).energies) / (2 * h)
        assert np.allclose(np.diagonal(vel[axis], axis1=1, axis2=2).real, slope, atol=1e-7)


@pytest.mark.parametrize("params", [PARAMS, {"t1": 0.8, "t2": -0.2, "mass": 0.35, "phi": 0.9}])
def test_geometry_matches_projector_finite_differences(params):
    """Ω = −2 Im Tr[P ∂xP ∂yP], g_ij = Re Tr[P ∂iP ∂jP] (gauge-free, independent of v)."""
    model, k = haldane(**params), random_k(40, seed=2)
    curvature, metric = band_geometry(SOLVER.solve(model, k))
    tensor = projector_qgt(model, k)
    assert np.allclose(curvature, -2 * tensor[..., 0, 1].imag, atol=1e-6)
    fd_metric = np.stack([tensor[..., 0, 0], tensor[..., 1, 1], tensor[..., 0, 1]], -1).real
    assert np.allclose(metric, fd_metric, atol=1e-6)


def test_pair_products_and_pair_sums():
    model, k = haldane(0.8, -0.2, 0.35, 0.9), random_k(30, seed=3)
    eig = SOLVER.solve(model, k)
    prod = pair_products(eig.velocities)
    vx, vy = eig.velocities
    assert np.allclose(prod["M_xx"][:, 0, 1], np.abs(vx[:, 0, 1]) ** 2)
    assert np.allclose(prod["M_xy"], prod["M_xy"].swapaxes(1, 2))
    assert np.allclose(prod["N_xy"], -prod["N_xy"].swapaxes(1, 2))
    sums = qgt_pair_sums(eig)
    curvature, metric = band_geometry(eig)
    assert np.allclose(np.diagonal(sums, axis1=0, axis2=1), 0.0)
    assert np.allclose(sums.sum(axis=1).real, metric.sum(axis=0))
    assert np.allclose(-2 * sums.sum(axis=1)[:, 2].imag, curvature.sum(axis=0))
    gap2 = (eig.energies[:, 1] - eig.energies[:, 0]) ** 2
    assert np.allclose(sums[0, 1, 2], np.sum(vx[:, 0, 1] * vy[:, 1, 0] / gap2))


def test_degenerate_pairs_are_skipped_and_counted():
    """Two identical decoupled orbitals: every pair is degenerate, geometry is zero."""
    lattice = np.eye(2)
    model = TightBinding.from_half(lattice, [[0, 0], [0.5, 0.5]], [[1, 0], [1, 0]], [0, 1],
                                   [0, 1], [0.7, 0.7])
    eig = SOLVER.solve(model, random_k(25, seed=4))
    curvature, metric = band_geometry(eig)
    assert np.all(np.isfinite(curvature)) and np.allclose(curvature, 0.0)
    assert np.allclose(metric, 0.0)
    assert degenerate_pairs(eig.energies) == 25
    assert degenerate_pairs(SOLVER.solve(haldane(**PARAMS), random_k(5)).energies) == 0


def test_flattening_leaves_geometry_unchanged():
    parent, k = haldane(0.8, -0.2, 0.35, 0.9), random_k(200, seed=5)
    flat = build_flattened(parent, 0.5)
    ref_curv, ref_metric = band_geometry(SOLVER.solve(parent, k))
    curv, metric = band_geometry(SOLVER.solve(flat, k))
    scale = max(1.0, np.abs(ref_curv).max())
    assert np.allclose(curv, ref_curv, rtol=0, atol=1e-10 * scale)
    assert np.allclose(metric, ref_metric, rtol=0, atol=1e-10 * scale)


# (mass, phi) -> topological? with t1 = 1, t2 = 0.3; critical |M| = 3√3 |t2 sin φ|.
PHASES = [(0.0, np.pi / 2, True), (1.0, np.pi / 2, True), (-0.8, np.pi / 2, True),
          (2.2, np.pi / 2, False), (0.6, np.pi / 4, True), (1.6, np.pi / 4, False),
          (-1.7, np.pi / 4, False)]


@pytest.mark.parametrize(("mass", "phi", "topological"), PHASES)
def test_haldane_phase_diagram(mass, phi, topological):
    assert topological == (abs(mass) < 3 * np.sqrt(3) * abs(0.3 * np.sin(phi)))
    chern = {}
    for sign in (1, -1):
        model = haldane(1.0, 0.3, mass, sign * phi)
        link = chern_numbers(model, SOLVER, 24, 24, [(0, 1), (1, 2), (0, 2)])
        assert np.allclose(link, np.round(link), atol=1e-9)
        assert link[0] == pytest.approx(np.round(integrated_curvature(model, 60)[0]), abs=1e-9)
        assert link[0] == pytest.approx(-link[1]) and link[2] == pytest.approx(0.0, abs=1e-9)
        chern[sign] = round(link[0])
    assert abs(chern[1]) == (1 if topological else 0)
    assert chern[-1] == -chern[1]


def test_link_sign_matches_integrated_curvature_near_integer():
    """Un-rounded: (1/2π)Σ Ω ΔA → link Chern, both −1 for the default model."""
    model = haldane(**PARAMS)
    assert integrated_curvature(model, 60)[0] == pytest.approx(-1.0, abs=1e-3)
    assert chern_numbers(model, SOLVER, 12, 12, [(0, 1)])[0] == pytest.approx(-1.0)


def test_plaquette_flux_split_over_ranks():
    model, n1, n2 = haldane(0.8, -0.2, 0.35, 0.9), 18, 14
    full = plaquette_flux(model, SOLVER, n1, n2, 0, n1 * n2, [(0, 1)])
    cuts = [(0, 100), (100, 100), (100, n1 * n2)]
    parts = [plaquette_flux(model, SOLVER, n1, n2, a, b, [(0, 1)]) for a, b in cuts]
    assert parts[1].shape == (0, 1)
    assert np.allclose(np.concatenate(parts), full, atol=1e-12)
    total = sum(p.sum() for p in parts) / (2 * np.pi)
    assert total == pytest.approx(round(total), abs=1e-9) and abs(round(total)) == 1


def test_plaquette_flux_is_local_curvature_including_boundary():
    """Each flux ≈ Ω(centre) ΔA, boundary plaquettes included (needs unwrapped corners)."""
    model, n = haldane(**PARAMS), 40
    flux = plaquette_flux(model, SOLVER, n, n, 0, n * n, [(0, 1)])[:, 0]
    i, j = np.divmod(np.arange(n * n), n)
    centres = np.outer((i + 0.5) / n, model.reciprocal[0]) + np.outer((j + 0.5) / n,
                                                                      model.reciprocal[1])
    area = abs(np.linalg.det(model.reciprocal)) / n**2
    local = band_geometry(SOLVER.solve(model, centres))[0][:, 0] * area
    edge = (i == n - 1) | (j == n - 1)
    assert np.max(np.abs(flux - local)) < 0.03 * np.max(np.abs(local))
    assert np.max(np.abs(flux[edge] - local[edge])) < 0.03 * np.max(np.abs(local))


def test_chern_independent_of_lattice_handedness():
    """Swapping a1 ↔ a2 (b1 × b2 < 0) describes the same crystal: same Chern number."""
    model = haldane(**PARAMS)
    swapped = TightBinding(model.lattice[::-1], model.positions, model.R[:, ::-1], model.a,
                           model.b, model.t)
    assert np.linalg.det(swapped.reciprocal) < 0
    k = random_k(10)
    assert np.allclose(swapped.hamiltonian(k)[0], model.hamiltonian(k)[0])
    assert chern_numbers(swapped, SOLVER, 12, 12, [(0, 1)]) == pytest.approx(
        chern_numbers(model, SOLVER, 12, 12, [(0, 1)]))


@pytest.mark.parametrize("r_cut", [2.0, 4.0, 6.0])
def test_truncated_flat_model_keeps_chern_number(r_cut):
    parent = haldane(**PARAMS)
    expect = chern_numbers(parent, SOLVER, 16, 16, [(0, 1)])[0]
    truncated = build_flattened(parent, 0.5, r_cut, 40)
    assert chern_numbers(truncated, SOLVER, 16, 16, [(0, 1)])[0] == pytest.approx(expect)
    assert abs(round(expect)) == 1
