"""Tests of the tight-binding core, the Haldane builder, flattening and truncation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qgt_mpi.models import (
    FlattenedModel,
    TightBinding,
    bandwidth,
    build_flattened,
    build_model,
    haldane,
    kgrid_points,
    reduced_indices,
    truncate,
)
from qgt_mpi.models import lattice as lattice_mod
from qgt_mpi.models.haldane import d_vector

PARAMS = {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": np.pi / 2}
GAP = 0.5
PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])


def random_k(n: int, seed: int = 0) -> np.ndarray:
    """Random Cartesian k-points, well outside the first zone too."""
    return np.random.default_rng(seed).uniform(-7.0, 7.0, size=(n, 2))


def models() -> dict[str, object]:
    """Haldane, its exact flattening and a truncated flattening."""
    parent = haldane(**PARAMS)
    return {"haldane": parent, "flat": build_flattened(parent, GAP),
            "truncated": build_flattened(parent, GAP, 3.0, 32),
            "haldane_offset": haldane(0.8, -0.2, 0.35, 0.9)}


@pytest.fixture(scope="module")
def zoo():
    return models()


def test_reciprocal_and_grid():
    model = haldane(**PARAMS)
    assert np.allclose(model.lattice @ model.reciprocal.T, 2 * np.pi * np.eye(2))
    assert math.isclose(model.cell_area, np.sqrt(3) / 2)
    n1, n2 = 5, 7
    full = kgrid_points(model.reciprocal, n1, n2, 0, n1 * n2)
    i, j = np.meshgrid(np.arange(n1), np.arange(n2), indexing="ij")
    expect = (i[..., None] / n1) * model.reciprocal[0] + (j[..., None] / n2) * model.reciprocal[1]
    assert np.allclose(full, expect.reshape(-1, 2))
    assert np.allclose(kgrid_points(model.reciprocal, n1, n2, 9, 20), full[9:20])
    ii, jj = reduced_indices(n1, n2, 9, 20)
    assert np.array_equal(ii * n2 + jj, np.arange(9, 20))
    assert kgrid_points(model.reciprocal, n1, n2, 4, 4).shape == (0, 2)
    with pytest.raises(ValueError):
        reduced_indices(n1, n2, 3, 36)


def test_hopping_list_hermiticity():
    model = haldane(**PARAMS)
    assert model.check_hermitian()
    broken = TightBinding(model.lattice, model.positions, model.R[1:], model.a[1:],
                          model.b[1:], model.t[1:])
    assert not broken.check_hermitian()
    with pytest.raises(ValueError):
        TightBinding.from_half(model.lattice, model.positions, [[0, 0]], [0], [0], [1j])


@pytest.mark.parametrize("name", ["haldane", "flat", "truncated", "haldane_offset"])
def test_hamiltonian_hermitian(zoo, name):
    ham, dham = zoo[name].hamiltonian(random_k(50))
    assert np.allclose(ham, ham.conj().swapaxes(-1, -2), atol=1e-13)
    assert np.allclose(dham, dham.conj().swapaxes(-1, -2), atol=1e-12)


@pytest.mark.parametrize("name", ["haldane", "flat", "truncated", "haldane_offset"])
def test_derivatives_match_finite_differences(zoo, name):
    model, k, h = zoo[name], random_k(40, seed=1), 1e-5
    _, dham = model.hamiltonian(k)
    for axis in range(2):
        step = np.zeros(2)
        step[axis] = h
        fd = (model.hamiltonian(k + step, False)[0] - model.hamiltonian(k - step, False)[0])
        assert np.allclose(dham[axis], fd / (2 * h), atol=1e-7)


def test_sparse_and_chunked_paths_agree(monkeypatch):
    k = random_k(30, seed=2)
    flat = build_flattened(haldane(**PARAMS), GAP)
    dense_model = truncate(flat, 2.5, 24)
    monkeypatch.setattr(lattice_mod, "_SPARSE_SCATTER", 0)
    monkeypatch.setattr(lattice_mod, "_CHUNK_ENTRIES", 100)  # several k-chunks as well
    sparse_model = truncate(flat, 2.5, 24)
    for got, ref in zip(sparse_model.hamiltonian(k), dense_model.hamiltonian(k), strict=True):
        assert np.allclose(got, ref, atol=1e-14)


def test_haldane_matches_d_vector():
    params = {"t1": 0.9, "t2": 0.25, "mass": 0.4, "phi": 1.1}
    model, k = haldane(**params), random_k(200, seed=3)
    h0, hvec = d_vector(k, **params)
    ham, _ = model.hamiltonian(k, derivatives=False)
    expect = h0[:, None, None] * np.eye(2) + np.einsum("ki,iab->kab", hvec, PAULI)
    assert np.allclose(ham, expect, atol=1e-13)
    norm = np.linalg.norm(hvec, axis=1)
    assert np.allclose(np.linalg.eigvalsh(ham), np.column_stack([h0 - norm, h0 + norm]))


def test_haldane_gap_at_dirac_points():
    """At K, K' the gap is 2|M ∓ 3√3 t2 sin φ| (theory §2.2)."""
    params = {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 0.7}
    model = haldane(**params)
    b = model.reciprocal
    valleys = np.array([(2 * b[0] + b[1]) / 3, (b[0] + 2 * b[1]) / 3])
    gaps = np.diff(np.linalg.eigvalsh(model.hamiltonian(valleys, False)[0]), axis=1).ravel()
    m_haldane = 3 * np.sqrt(3) * params["t2"] * np.sin(params["phi"])
    expect = 2 * np.abs(params["mass"] + np.array([1, -1]) * m_haldane)
    assert np.allclose(np.sort(gaps), np.sort(expect))


def test_flattened_bands_and_eigenvectors(zoo):
    parent, flat, k = zoo["haldane"], zoo["flat"], random_k(300, seed=4)
    e_flat, u_flat = np.linalg.eigh(flat.hamiltonian(k, False)[0])
    _, u_parent = np.linalg.eigh(parent.hamiltonian(k, False)[0])
    assert np.allclose(e_flat, [-GAP / 2, GAP / 2], atol=1e-13)
    overlap = np.abs(np.einsum("kan,kan->kn", u_parent.conj(), u_flat))
    assert np.allclose(overlap, 1.0, atol=1e-12)
    assert np.all(bandwidth(flat, 12) < 1e-12)


def test_flattening_refuses_closed_gap():
    critical = {"t1": 1.0, "t2": 0.3, "phi": np.pi / 2, "mass": 3 * np.sqrt(3) * 0.3}
    parent = haldane(**critical)
    b = parent.reciprocal
    valleys = np.array([(2 * b[0] + b[1]) / 3, (b[0] + 2 * b[1]) / 3])
    with pytest.raises(ValueError, match="gap closes"):
        FlattenedModel(parent, (-GAP / 2, GAP / 2)).hamiltonian(valleys)
    with pytest.raises(ValueError):
        FlattenedModel(parent, (1.0,))


def test_truncating_a_short_range_model_is_exact():
    """Haldane hops reach |d| = 1: R_c = 1 reproduces it, R_c = 0.8 drops the t2 hops."""
    model, k = haldane(0.8, -0.2, 0.35, 0.9), random_k(60, seed=5)
    full = truncate(model, 1.0, 12)
    assert full.check_hermitian()
    assert np.allclose(full.hamiltonian(k)[0], model.hamiltonian(k)[0], atol=1e-13)
    assert np.allclose(full.hamiltonian(k)[1], model.hamiltonian(k)[1], atol=1e-12)
    nn_only = truncate(model, 0.8, 12)
    assert np.allclose(nn_only.hamiltonian(k)[0], haldane(0.8, 0.0, 0.35, 0.9).hamiltonian(k)[0],
                       atol=1e-13)


def test_truncation_bandwidth_decays_exponentially(zoo):
    flat, cuts = zoo["flat"], np.arange(1, 7)
    widths = np.array([bandwidth(truncate(flat, r, 40), 30).max() for r in cuts])
    assert np.all(np.diff(widths) < 0)
    assert np.all(widths[1:] / widths[:-1] < 0.6)
    slope, _ = np.polyfit(cuts, np.log(widths), 1)
    residual = np.log(widths) - np.polyval(np.polyfit(cuts, np.log(widths), 1), cuts)
    assert slope < -0.5 and np.max(np.abs(residual)) < 0.3


def test_truncation_tends_to_exact_flat_model(zoo):
    flat, k = zoo["flat"], random_k(100, seed=6)
    exact = flat.hamiltonian(k, False)[0]
    errors = [np.abs(truncate(flat, r, 40).hamiltonian(k, False)[0] - exact).max()
              for r in (1.0, 3.0, 5.0, 8.0)]
    assert np.all(np.diff(errors) < 0) and errors[-1] < 2e-4
    assert truncate(flat, 5.0, 40).check_hermitian(atol=0.0)


def test_build_model():
    model = build_model("haldane", PARAMS, None)
    assert isinstance(model, TightBinding) and model.describe()["kind"] == "haldane"
    flat = build_model("haldane", PARAMS, {"gap": GAP, "range": math.inf, "nfine": 24})
    assert isinstance(flat, FlattenedModel) and flat.describe()["kind"] == "haldane+flat"
    trunc = build_model("haldane", PARAMS, {"gap": GAP, "range": 2.0, "nfine": 24})
    assert isinstance(trunc, TightBinding) and trunc.describe()["flat_range"] == 2.0
    for info in (model.describe(), flat.describe(), trunc.describe()):
        assert all(np.isscalar(v) for v in info.values())
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model("kagome", PARAMS, None)
    with pytest.raises(ValueError, match="missing"):
        build_model("haldane", {"t1": 1.0}, None)
    with pytest.raises(ValueError):
        build_model("haldane", PARAMS, {"range": 2.0})


def test_non_hermitian_model_file_is_refused(tmp_path):
    """A model file whose hopping list has a one-way hopping (edited or truncated outside
    qgt_mpi) is refused on reading, naming the file; its Hermitian repair reads back."""
    import numpy as np

    from qgt_mpi.models import TightBinding, load_model, save_model

    lattice = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    pos = np.array([[0.0, 0.0], [0.5, 0.3]])
    hop = {"R": np.array([[0, 0], [0, 0], [1, 0]]), "a": np.array([0, 1, 0]),
           "b": np.array([1, 0, 1]), "t": np.array([1.0, 1.0, 0.5 + 0.2j])}
    one_way = TightBinding(lattice, pos, hop["R"], hop["a"], hop["b"], hop["t"], {})
    save_model(one_way, str(tmp_path / "bad.h5"))
    with pytest.raises(ValueError, match=r"bad\.h5: H\(k\) is not Hermitian"):
        load_model(str(tmp_path / "bad.h5"))
    fixed = TightBinding(lattice, pos, np.vstack([hop["R"], [[-1, 0]]]),
                         np.append(hop["a"], 1), np.append(hop["b"], 0),
                         np.append(hop["t"], np.conj(hop["t"][2])), {})
    save_model(fixed, str(tmp_path / "good.h5"))
    assert load_model(str(tmp_path / "good.h5")).norb == 2
