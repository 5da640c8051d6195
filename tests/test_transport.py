"""Transport sums: binned representation vs direct closed forms, and physical limits (theory §4).

The adaptive-cell Taylor representation (transport/binning.py, energy_cells.py, tree.py) must
reproduce the direct per-k, per-pair evaluation of theory §3's closed forms; the Hall J-form
must agree with the matrix Kubo–Bastin formula by quadrature; σ_xy must approach the TKNN
value; the Drude part of a parabolic band must equal n e²τ/m; flat bands have no Drude part
and σ_xx ∝ δ.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import binned_sums, direct_sums
from scipy import integrate

from qgt_mpi.geometry.bands import pair_products
from qgt_mpi.kernels.closed import fermi, y_pair
from qgt_mpi.models import haldane
from qgt_mpi.solvers.dense import DenseSolver


def _haldane_batch(nk=300, seed=1, **kw):
    """Eigenpairs of the (dispersive) Haldane model at random k."""
    model = haldane(**{"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.2, **kw})
    k = np.random.default_rng(seed).uniform(-4, 4, size=(nk, 2))
    eig = DenseSolver().solve(model, k)
    return eig.energies, pair_products(eig.velocities)


@pytest.mark.parametrize(
    "mu, delta",
    [
        (np.linspace(-2.5, 2.5, 11), np.array([0.05, 0.05])),  # even μ grid: anchored path
        (np.array([-1.3, 0.123, 0.9]), np.array([0.02, 0.07])),  # arbitrary μ, δ1 ≠ δ2
    ],
)
def test_binned_sums_match_direct_closed_forms(mu, delta):
    eps, prod = _haldane_batch()
    temps = [0.5, 4.0, 30.0]
    ref_s, ref_h = direct_sums(eps, prod, delta, mu, temps)
    got_s, got_h = binned_sums(eps, prod, delta, mu, temps)
    scale_s = np.abs(ref_s).max(axis=(2, 3), keepdims=True)
    assert np.max(np.abs(got_s - ref_s) / scale_s) < 1e-10
    scale_h = np.abs(ref_h).max(axis=(1, 2), keepdims=True)
    assert np.max(np.abs(got_h - ref_h) / scale_h) < 1e-10


def test_near_degenerate_pairs_match_direct():
    """Pairs closer than the series threshold (and exactly degenerate) stay exact."""
    rng = np.random.default_rng(3)
    nk, nb = 40, 3
    eps = np.sort(rng.uniform(-1, 1, (nk, nb)), axis=1)
    eps[:10, 1] = eps[:10, 0] + rng.uniform(0, 1e-4, 10)  # near-degenerate
    eps[10:15, 2] = eps[10:15, 1]  # exactly degenerate
    v = rng.normal(size=(2, nk, nb, nb)) + 1j * rng.normal(size=(2, nk, nb, nb))
    v = v + v.conj().swapaxes(-1, -2)
    prod = pair_products(v)
    delta = np.array([0.03, 0.03, 0.03])
    mu, temps = np.array([-0.4, 0.1, 0.5]), [0.3, 5.0]
    ref_s, ref_h = direct_sums(eps, prod, delta, mu, temps)
    got_s, got_h = binned_sums(eps, prod, delta, mu, temps)
    assert np.max(np.abs(got_s - ref_s)) / np.abs(ref_s).max() < 1e-9
    scale_h = np.abs(ref_h).max(axis=(1, 2), keepdims=True)
    assert np.max(np.abs(got_h - ref_h) / scale_h) < 1e-9


def _bastin_hall(model, k, mu, kt, delta):
    """Antisymmetric Kubo–Bastin σ_xy per k (ħ = e = 1), matrices in the orbital basis.

    σ_ij = i ∫dε f(ε) Tr[v_i (dG^R/dε) v_j A − v_i A v_j (dG^A/dε)], A = −(G^R − G^A)/(2πi),
    G^R = (ε − H + iΓ)^(−1) with Γ = δ·1; the Hall part is (σ_xy − σ_yx)/2.
    """
    ham, dham = model.hamiltonian(k[None])
    h, vx, vy = ham[0], dham[0, 0], dham[1, 0]
    eye = np.eye(h.shape[0])

    def integrand(e):
        gr = np.linalg.inv((e + 1j * delta) * eye - h)
        ga = gr.conj().T
        spec = -(gr - ga) / (2j * np.pi)
        dgr, dga = -gr @ gr, -ga @ ga
        sxy = np.trace(vx @ dgr @ vy @ spec - vx @ spec @ vy @ dga)
        syx = np.trace(vy @ dgr @ vx @ spec - vy @ spec @ vx @ dga)
        return (1j * fermi(e - mu, kt) * (sxy - syx) / 2).real

    eps = np.linalg.eigvalsh(h)
    lo, hi = eps.min() - 400 * delta, max(eps.max(), mu) + 60 * kt
    pts = sorted({*eps.tolist(), mu})
    val, _ = integrate.quad(integrand, lo, hi, points=pts, limit=2000, epsabs=0, epsrel=1e-11)
    return val


def test_hall_J_form_matches_matrix_kubo_bastin():
    """σ_xy per k from Y_nm Im(v v) (theory §3–4) vs the matrix Bastin formula by quadrature."""
    model = haldane(1.0, 0.3, 0.2, 1.2)
    rng = np.random.default_rng(7)
    delta, mu, kt = 0.15, 0.3, 0.2
    for k in rng.uniform(-3, 3, size=(3, 2)):
        eig = DenseSolver().solve(model, k[None])
        prod = pair_products(eig.velocities)
        e = eig.energies[0]
        y = y_pair(e[:, None], e[None, :], delta, delta, mu, kt)
        j_form = np.sum(np.where(np.eye(2, dtype=bool), 0, y * prod["N_xy"][0]))
        bastin = _bastin_hall(model, k, mu, kt, delta)
        # Tails beyond the window cost ~δ/(window) relative: 400δ below the bands.
        assert j_form == pytest.approx(bastin, rel=1e-6, abs=1e-9)
