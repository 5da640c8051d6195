"""Degenerate window groups resolved by a symmetry operator (theory §5.7, Eq. 5.9).

The chiral limit of the BM model at the first magic angle (α = 0.58566, w0 = 0, no mass) has
two flat bands at ±ε, |ε| < 1e-3 meV, touching at K and K': as eigenstates their per-band
geometry is gauge noise. Resolved by σ_z they are the sublattice-polarised bands with
C = ±1, (1/2π)∫Tr g = 1 and Tr g = |Ω| at every k (ideal bands).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import deck_text, kgrid_table, sweep_table, table
from mpi4py import MPI
from runner import qgt

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers.resolve import clusters, group_rotation
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions


@pytest.fixture(scope="module")
def chiral():
    return bm_continuum(alpha=0.58566, w0=0.0, w1=110.0, shells=3)


def test_group_rotation_diagonalises_the_operator_inside_a_group():
    """A 2-fold group in a random basis comes out as S eigenvectors (−1 first); a group S
    cannot split (S = 1 on it) is left alone and counted; singletons are untouched."""
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)) + 1j * rng.standard_normal((6, 6)))
    s_diag = np.array([1.0, -1.0, 1.0, 1.0, 1.0, 1.0])
    energies = np.array([-3.0, 0.0, 1e-4, 2.0, 5.0, 5.001])
    mix = np.eye(6, dtype=complex)
    mix[1:3, 1:3] = q[:2, :2] / np.linalg.norm(q[:2, :2], axis=0)
    mix[1:3, 1:3], _ = np.linalg.qr(mix[1:3, 1:3])
    vectors = np.eye(6, dtype=complex) @ mix
    rot, new, labels, failed = group_rotation(energies, vectors, lambda x: s_diag[:, None] * x,
                                              1e-2)
    assert [list(c) for c in clusters(energies, 1e-2)] == [[1, 2], [4, 5]]
    assert labels.tolist() == [-1, 0, 0, -1, -1, -1] and failed == 1
    out = vectors @ rot
    s_in = np.real(np.einsum("in,i,in->n", out.conj(), s_diag, out))
    assert np.allclose(s_in[1:3], [-1.0, 1.0], atol=1e-12)
    assert np.allclose(np.abs(out[:, 1:3]), np.eye(6)[:, 1:3], atol=1e-12)
    assert np.allclose(new[[0, 3, 4, 5]], [-3.0, 2.0, 5.0, 5.001], atol=1e-12)
    assert abs(new[1] + new[2] - 1e-4) < 1e-15 and np.all((new[1:3] >= 0) & (new[1:3] <= 1e-4))
    assert np.allclose(rot.conj().T @ rot, np.eye(6), atol=1e-12)


def test_chiral_magic_angle_window_gives_ideal_sublattice_bands(chiral):
    """nev = 2 at target 0 (the flat bands), 6×6: resolved at every k; per band
    (1/2π)∫Ω = ∓1, (1/2π)∫Tr g = 1 and Tr g = |Ω| pointwise to 1e-3 (measured 3e-16)."""
    n = 6
    red = np.array([(i / n, j / n) for i in range(n) for j in range(n)])
    solver = SlepcSolver(WindowOptions(nev=2, target=0.0), MPI.COMM_SELF)
    eig = solver.solve(chiral, red @ chiral.b)
    assert solver.resolved["resolved"] == n * n and solver.resolved_by == "sublattice"
    assert np.all(eig.groups == 0)
    sub = chiral.operators["sublattice"]
    polar = np.real(np.einsum("kin,ij,kjn->kn", eig.vectors.conj(), sub.toarray(),
                              eig.vectors))
    assert np.allclose(polar, [-1.0, 1.0], atol=1e-6)
    curv, metric = band_geometry(eig)
    trace = metric[..., 0] + metric[..., 1]
    per_area = abs(np.linalg.det(chiral.b)) / (n * n) / (2 * np.pi)
    assert np.allclose(curv.sum(0) * per_area, [1.0, -1.0], atol=1e-4)
    assert np.allclose(trace.sum(0) * per_area, [1.0, 1.0], atol=1e-4)
    assert np.max(np.abs(trace - np.abs(curv))) < 1e-3 * np.mean(np.abs(curv))


def test_chiral_run_link_chern_numbers_and_trace(chiral):
    """The whole k-pass (links, sums): Chern (1, −1) per band, trace violation ≤ 1e-3."""
    solver = SlepcSolver(WindowOptions(nev=2, target=0.0), MPI.COMM_SELF)
    geo = compute(MPI.COMM_SELF, chiral, (6, 6), np.array([1.0]), np.array([0.0]),
                  np.full((1, 2), 0.1), solver=solver,
                  window={"delta_out": np.array([0.1]), "chern_below": None})[2]
    assert geo["chern_groups"][:2].tolist() == [1, -1]
    assert np.allclose(geo["trace_integral"], [1.0, 1.0], atol=1e-4)
    assert np.max(geo["trace_violation"]) < 1e-3
    assert not np.any(geo["band_undefined"])


def test_non_chiral_and_explicit_none_are_not_resolved(chiral):
    """w0 ≠ 0 has no default operator; resolve = None keeps the eigenbasis."""
    k = np.array([[0.01, 0.02]])
    solver = SlepcSolver(WindowOptions(nev=2, target=0.0, resolve=None), MPI.COMM_SELF)
    assert solver.solve(chiral, k).groups is None and solver.resolved_by == "none"
    model = bm_continuum(theta=1.05, w0=88.0, w1=110.0, shells=2, mass=10.0)
    solver = SlepcSolver(WindowOptions(nev=2, target=0.0), MPI.COMM_SELF)
    assert solver.solve(model, k).groups is None


def _deck(kind: str, resolve: str, out: Path) -> str:
    """The chiral magic angle with the deck's own output file ``out``."""
    return deck_text(table("model", kind="bm_continuum", alpha=0.58566, w0=0.0, shells=3),
                     table("solver", kind=kind, nev=2, target=0.0, resolve=resolve),
                     kgrid_table(3), sweep_table(), table("output", file=str(out)))


@pytest.mark.subprocess
@pytest.mark.parametrize(("kind", "resolve", "message"), [
    ("slepc", "spin", "solver.resolve = 'spin'"),
    ("dense", "sublattice", "solver.resolve = 'sublattice'")])
def test_bad_resolve_is_an_input_error(tmp_path, kind, resolve, message):
    deck = tmp_path / "d.toml"
    out = tmp_path / "o.h5"
    deck.write_text(_deck(kind, resolve, out))
    proc = qgt(["run", str(deck)], timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()


@pytest.mark.subprocess
def test_resolved_by_is_in_the_file(tmp_path):
    deck = tmp_path / "d.toml"
    out = tmp_path / "o.h5"
    deck.write_text(_deck("slepc", "auto", out))
    proc = qgt(["run", str(deck)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        attrs = f["geometry"].attrs
        assert attrs["resolved_by"] == "sublattice"
        assert attrs["resolved_kpoint_solves"] == attrs["kpoint_solves"] > 0
        assert f["geometry/chern"][:2].tolist() == [1, -1]


def test_band_path_energies_are_eigenvalues_in_a_resolving_run(chiral):
    """The [bands] phase solves in the eigenbasis: eigenvalues ±ε (dense), not ⟨ψ|H|ψ⟩ = 0."""
    from qgt_mpi.solvers import DenseSolver
    from qgt_mpi.solvers.resolve import eigenbasis

    k = np.array([[0.011, -0.007], [0.03, 0.02]])
    solver = SlepcSolver(WindowOptions(nev=2, target=0.0), MPI.COMM_SELF)
    resolved = solver.solve(chiral, k, velocities=False)
    with eigenbasis(solver):
        plain = solver.solve(chiral, k, velocities=False)
    dense = DenseSolver().solve(chiral, k).energies[:, chiral.norb // 2 - 1: chiral.norb // 2 + 1]
    assert np.max(np.abs(plain.energies - dense)) < 1e-9 and plain.groups is None
    assert np.max(np.abs(resolved.energies)) < 1e-12 < np.max(np.abs(dense))
    assert solver.solve(chiral, k[:1], velocities=False).groups is not None  # restored
