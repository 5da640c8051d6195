"""Atomistic commensurate twisted bilayer graphene (theory §2.6) against dense diagonalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qgt_mpi.models import build_model
from qgt_mpi.models.tbg_atomistic import (
    DEFAULTS,
    monolayer_dirac_energy,
    neutrality_energy,
    tbg_atomistic,
    twist_angle,
)


@pytest.fixture(scope="module")
def cells():
    return {m: tbg_atomistic(m) for m in (1, 2, 3, 4, 5)}


def dense_at(model, k):
    h = model.csr(k)[0].toarray()
    return (*np.linalg.eigh(h), h)


def test_angle_size_and_cell(cells):
    assert twist_angle(31) == pytest.approx(1.0501, abs=5e-5)
    assert twist_angle(1) == pytest.approx(21.7868, abs=5e-5)
    for m, model in cells.items():
        n = 3 * m * m + 3 * m + 1
        assert model.norb == 4 * n
        assert model.cell_area == pytest.approx(n * math.sqrt(3) / 2 * 0.246 ** 2)
        assert model.describe()["theta"] == pytest.approx(twist_angle(m))
        frac = model.positions @ np.linalg.inv(model.lattice)
        assert np.all((frac > -1e-9) & (frac < 1))
        # no two carbons of one layer coincide (mod the superlattice)
        for layer in (0, 1):
            f = frac[model.layer == layer]
            diff = f[:, None, :] - f[None, :, :]
            diff -= np.round(diff)
            dist = np.linalg.norm(diff @ model.lattice, axis=-1) + np.eye(len(f))
            assert dist.min() == pytest.approx(0.246 / math.sqrt(3), rel=1e-9)


def test_neighbours_hermiticity_and_linear_bond_count(cells):
    per_atom = []
    for model in cells.values():
        assert model.check_hermitian()
        rows, cols = model.rows[model.entry], model.cols[model.entry]  # per bond
        intra = model.layer[rows] == model.layer[cols]
        dist = np.linalg.norm(model.d, axis=1)
        nn = intra & np.isclose(dist, 0.246 / math.sqrt(3), rtol=1e-9)
        assert np.all(np.bincount(rows[nn], minlength=model.norb) == 3)
        assert np.allclose(model.t[nn], DEFAULTS["vpp_pi0"])  # t(a0) = V_ppπ0
        nnn = intra & np.isclose(dist, 0.246, rtol=1e-9)
        assert np.all(np.bincount(rows[nnn], minlength=model.norb) == 6)
        inter = ~intra  # interlayer: every |d3| ≥ d0 and ≤ cutoff
        assert np.all(np.hypot(dist[inter], DEFAULTS["d0"]) <= DEFAULTS["cutoff"] + 1e-12)
        per_atom.append(model.t.size / model.norb)
    assert max(per_atom) / min(per_atom) < 1.1  # O(N) bonds: ≈ 46 per carbon at 0.5 nm


def test_dirac_cone_at_moire_k_and_neutrality(cells):
    e_mono = monolayer_dirac_energy(DEFAULTS)
    assert e_mono == pytest.approx(787.6, abs=0.1)  # ≈ −3 t(a) from the NNN hops: +0.8 eV
    for model in cells.values():
        n = model.norb
        k_dirac = model.dirac_point()
        assert np.allclose(np.mod(model.lattice @ k_dirac / (2 * np.pi), 1), [1 / 3, 2 / 3])
        hs = model.high_symmetry_points()
        assert np.allclose(hs["K"], k_dirac)
        assert np.linalg.norm(hs["M"]) == pytest.approx(np.linalg.norm(hs["K"]) * 3 ** 0.5 / 2)
        e_k, e_kp = (np.linalg.eigvalsh(model.csr(hs[p])[0].toarray()) for p in ("K", "K'"))
        assert e_k == pytest.approx(e_kp, abs=1e-8)  # K and K' related by the D6 symmetry
        e_cn = neutrality_energy(model)
        assert neutrality_energy(model, dense_limit=0) == pytest.approx(e_cn, abs=1e-6)
        assert 770.0 < e_cn < 800.0
        e = np.linalg.eigvalsh(model.csr(k_dirac)[0].toarray()) - e_cn
        centre = e[n // 2 - 2:n // 2 + 2]
        assert np.abs(centre).max() < 3.0  # four Dirac states (two valleys), valley splitting
        assert centre == pytest.approx(-centre[::-1], abs=1e-6)  # split symmetrically
        remote = (e[n // 2 + 2], -e[n // 2 - 3])
        assert remote[0] == pytest.approx(remote[1], rel=0.1)  # particle-hole-ish
        # a cone: the splitting-corrected energy grows linearly away from K
        direction = model.reciprocal[0] / np.linalg.norm(model.reciprocal[0])
        rise = []
        for step in (0.02, 0.04):
            dk = step * np.linalg.norm(model.reciprocal[0]) * direction
            ek = np.linalg.eigvalsh(model.csr(k_dirac + dk)[0].toarray()) - e_cn
            rise.append(np.sqrt(max(ek[n // 2] ** 2 - centre[2] ** 2, 0.0)))
        assert rise[1] / rise[0] == pytest.approx(2.0, rel=0.05)


def test_valley_operator(cells):
    decoupled = tbg_atomistic(3, cutoff=0.3)  # no interlayer bond shorter than d0
    k = np.array([0.17, -0.05])
    h, v = decoupled.csr(k)[0], decoupled.valley(k)
    assert abs(h @ v - v @ h).max() < 1e-9  # V commutes with every monolayer hopping
    assert abs(v - v.getH()).max() < 1e-14
    for m in (3, 5):
        model = cells[m]
        k_dirac = model.dirac_point()
        (_, vecs, _), n = dense_at(model, k_dirac), model.norb
        low = vecs[:, n // 2 - 2:n // 2 + 2]
        valley = np.linalg.eigvalsh(low.conj().T @ (model.valley(k_dirac) @ low))
        assert valley == pytest.approx([-1, -1, 1, 1], abs=0.01)
    # K of layer 1 is valley +1 for a single layer's Dirac states (decoupled cell)
    k_dirac = decoupled.dirac_point()
    e, vecs, _ = dense_at(decoupled, k_dirac)
    e_mono = monolayer_dirac_energy(decoupled.params)
    at_dirac = vecs[:, np.abs(e - e_mono) < 1e-6]
    assert at_dirac.shape[1] == 4  # layer 1 at its K, layer 2 at its −K (folded onto K_M)
    v_minus_layer = decoupled.valley(k_dirac) - decoupled.operators["layer"]
    assert np.abs(at_dirac.conj().T @ (v_minus_layer @ at_dirac)).max() < 1e-9


def test_registry_and_bad_input():
    params = {"m": 2.0, **DEFAULTS}
    model = build_model("tbg_atomistic", params)
    assert model.describe()["kind"] == "tbg_atomistic" and model.norb == 76
    with pytest.raises(ValueError, match="integer"):
        build_model("tbg_atomistic", {**params, "m": 2.5})


def test_energy_zero_at_charge_neutrality_by_default():
    """kind = tbg_atomistic built from a deck puts E = 0 at the Dirac point of the moiré K
    (bands N/2 − 1 and N/2 meet there) and keeps the absolute value in describe()."""
    from qgt_mpi.models import build_model
    from qgt_mpi.models.tbg_atomistic import neutrality_energy, tbg_atomistic

    shifted = build_model("tbg_atomistic", {"m": 2})
    absolute = build_model("tbg_atomistic", {"m": 2, "energy_zero": "absolute"})
    e_cn = neutrality_energy(tbg_atomistic(2))
    assert abs(shifted.describe()["neutrality_meV"] - e_cn) < 1e-9 and 700 < e_cn < 900
    k = shifted.dirac_point()
    e_rel = np.linalg.eigvalsh(shifted.csr(k)[0].toarray())
    e_abs = np.linalg.eigvalsh(absolute.csr(k)[0].toarray())
    assert np.max(np.abs(e_rel - (e_abs - e_cn))) < 1e-9
    n = shifted.norb
    assert abs(e_rel[n // 2 - 1] + e_rel[n // 2]) < 1e-9
