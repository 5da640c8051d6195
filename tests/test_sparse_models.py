"""Sparse models (theory §2.1, §2.7): bond lists, supercells, disorder; serial."""

from __future__ import annotations

import numpy as np
import pytest
from decks import HALDANE_T, deck_text, kgrid_table, sweep_table

from qgt_mpi.io.deck import InputError, parse_deck
from qgt_mpi.models import BondModel, as_sparse, build_model, haldane, truncate
from qgt_mpi.models.supercell import folded_points, supercell

K_POINTS = np.array([[0.0, 0.0], [0.17, 0.41], [-1.3, 2.2], [2.9, -0.4]])


def test_bond_model_reproduces_tight_binding_and_derivatives():
    """as_sparse of a TightBinding gives the same H(k) and ∂H/∂k (theory §1)."""
    model = haldane(1.0, 0.3, 0.2, 1.1)
    sparse = as_sparse(model)
    assert isinstance(sparse, BondModel)
    h1, d1 = model.hamiltonian(K_POINTS)
    h2, d2 = sparse.hamiltonian(K_POINTS)
    assert np.max(np.abs(h1 - h2)) < 1e-14 and np.max(np.abs(d1 - d2)) < 1e-14
    for i, k in enumerate(K_POINTS):
        h, dx, dy = (m.toarray() for m in sparse.csr(k))
        assert np.max(np.abs(h - h1[i])) < 1e-14
        assert np.max(np.abs(np.stack([dx, dy]) - d1[:, i])) < 1e-14


def test_derivative_matches_finite_difference():
    """∂H/∂k of a disordered supercell against a central difference (step 1e-6)."""
    model = supercell(haldane(1.0, 0.3, 0.0, 1.57), (2, 3), 0.5, 4)
    k, step = np.array([0.31, -0.52]), 1e-6
    _, dham = model.hamiltonian(k)
    for i in range(2):
        e = np.zeros(2)
        e[i] = step
        fd = (model.hamiltonian(k + e)[0] - model.hamiltonian(k - e)[0]) / (2 * step)
        assert np.max(np.abs(fd - dham[i])) < 1e-8


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (4, 4)])
def test_supercell_bands_are_folded_primitive_bands(size):
    """Without disorder, bands at K = primitive bands at K + (i/n1) b1 + (j/n2) b2, exactly."""
    prim = haldane(1.0, 0.3, 0.2, 1.3)
    cell = supercell(prim, size)
    assert cell.norb == prim.norb * size[0] * size[1] and cell.check_hermitian()
    for k in K_POINTS:
        e_cell = np.linalg.eigvalsh(cell.hamiltonian(k)[0][0])
        folded = prim.hamiltonian(folded_points(k, prim.reciprocal, size))[0]
        e_prim = np.sort(np.linalg.eigvalsh(folded).ravel())
        assert np.max(np.abs(e_cell - e_prim)) < 1e-12


def test_supercell_of_truncated_flat_model_folds_too():
    """The long-range truncated flat-band model (many images per bond pair) folds exactly."""
    prim = truncate(build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": 1.4},
                                {"gap": 1.0, "range": 2.5, "nfine": 24}), 2.5)
    cell = supercell(prim, (2, 2))
    k = K_POINTS[1]
    e_cell = np.linalg.eigvalsh(cell.hamiltonian(k)[0][0])
    e_prim = np.sort(np.linalg.eigvalsh(prim.hamiltonian(
        folded_points(k, prim.reciprocal, (2, 2)))[0]).ravel())
    assert np.max(np.abs(e_cell - e_prim)) < 1e-12


def test_disorder_is_seeded_box_distributed_and_hermitian():
    prim = haldane(1.0, 0.0, 0.0, 0.0)
    a = supercell(prim, (5, 5), 2.0, 11)
    b = supercell(prim, (5, 5), 2.0, 11)
    c = supercell(prim, (5, 5), 2.0, 12)
    onsite = np.real(np.diag(a.hamiltonian(np.zeros(2))[0][0]))
    assert np.array_equal(onsite, np.real(np.diag(b.hamiltonian(np.zeros(2))[0][0])))
    assert not np.array_equal(onsite, np.real(np.diag(c.hamiltonian(np.zeros(2))[0][0])))
    assert np.all(np.abs(onsite) <= 1.0) and np.std(onsite) > 0.4  # box of width 2: std 0.577
    assert a.check_hermitian()


def test_supercell_refuses_k_space_only_models():
    flat = build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": 1.4},
                       {"gap": 1.0, "range": np.inf, "nfine": 24})
    with pytest.raises(ValueError, match=r"flatten\.range"):
        supercell(flat, (2, 2))
    with pytest.raises(ValueError, match="real-space"):
        as_sparse(flat)


def _deck(extra: str = "", solver: str = "") -> str:
    """The plain Haldane deck with ``extra`` after [model] (its sub-tables) and a solver."""
    return deck_text(HALDANE_T, extra + "\n", kgrid_table(4), sweep_table(), solver + "\n")


def test_deck_sections_parse_and_build():
    cfg = parse_deck(_deck(extra="[model.supercell]\nsize = [2, 3]\n"
                                 "disorder = {width = 0.5, seed = 3}",
                                 solver='[solver]\nkind = "slepc"\nnev = 4\ntarget = -1.0'))
    assert cfg.model.supercell.size == (2, 3) and cfg.model.supercell.disorder_seed == 3
    assert cfg.solver.kind == "slepc" and cfg.solver.nev == 4 and cfg.solver.tol == 1e-10


@pytest.mark.parametrize(("solver", "key"), [
    ('[solver]\nkind = "slepc"\nnev = 4', "solver.target"),
    ('[solver]\nkind = "lapack"', "solver.kind"),
    ('[solver]\nkind = "slepc"\nnev = 4\ntarget = 0.0\nncv = 3', "solver.ncv"),
    ('[solver]\nkind = "slepc"\nnev = 0\ntarget = 0.0', "solver.nev"),
    ('[solver]\ntol = 0.5', "solver.tol"),
    ('[solver]\nchern_below = 1.5', "solver.chern_below"),
])
def test_bad_solver_sections_name_the_key(solver, key):
    with pytest.raises(InputError) as err:
        parse_deck(_deck(solver=solver))
    assert err.value.key == key and "\n" not in str(err.value)


@pytest.mark.parametrize(("extra", "key"), [
    ("[model.supercell]\nsize = [0, 2]", "model.supercell.size[0]"),
    ("[model.supercell]\nsize = [2]", "model.supercell.size"),
    ("[model.supercell]\nsize = [2, 2]\ndisorder = {width = -1.0}",
     "model.supercell.disorder.width"),
    ("[model.supercell]\nsize = [2, 2]\nshape = 1", "model.supercell.shape"),
])
def test_bad_supercell_sections_name_the_key(extra, key):
    with pytest.raises(InputError) as err:
        parse_deck(_deck(extra))
    assert err.value.key == key
