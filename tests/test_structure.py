"""Structure files in and out (models/structure.py, models/carbon.py, models/atomistic.py).

theory §2.6b: a structure written from the rigid ``tbg_atomistic`` cell and read back is the
same model; analytic limits of the carbon model built from atoms (AB bilayer at K, a massive
monolayer); layers by z; relaxation of a rigid bilayer read from a file equals the built-in
one; every bad structure is one error naming the file and the cause.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from runner import qgt

from qgt_mpi.io.deck import InputError, parse_deck
from qgt_mpi.models import build_model
from qgt_mpi.models.carbon import DEFAULTS, slater_koster
from qgt_mpi.models.structure import StructureError, read_structure, write_structure
from qgt_mpi.models.tbg_atomistic import monolayer_dirac_energy, tbg_atomistic

A = DEFAULTS["a"]
PRIM = A * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]])


def _save(model, path) -> str:
    write_structure(str(path), model.lattice, np.column_stack([model.positions, model.z]))
    return str(path)


def _spectrum(model, k) -> np.ndarray:
    return np.linalg.eigvalsh(model.csr(k)[0].toarray())


def _points(model) -> list[np.ndarray]:
    return list(model.high_symmetry_points().values())


@pytest.mark.parametrize("name", ["cell.vasp", "POSCAR", "cell.lmp", "cell.cif", "cell.xyz"])
def test_rigid_cell_round_trip(tmp_path, name):
    """Rigid m = 3 cell with a mass on one layer: VASP is the same H(k) to 1e-9 meV at random
    k with the same valley operator; LAMMPS and CIF rotate the cell into their own setting
    (same spectrum at Γ, K, K', M to 1e-9 meV); extended XYZ keeps 8 decimals in Å
    (hoppings then differ by ≲ 1e-3 meV)."""
    rigid = tbg_atomistic(3, mass=[10.0, 0.0])
    fmt = {"cell.lmp": "lammps-data"}.get(name)
    read = build_model("atomistic", {"structure": _save(rigid, tmp_path / name),
                                     "mass": [10.0, 0.0], "energy_zero": "absolute",
                                     **({"format": fmt} if fmt else {})})
    assert read.norb == rigid.norb and read.info["layers"] == 2
    assert read.info["theta"] == pytest.approx(rigid.theta, abs=1e-9)
    tol = 2e-3 if name.endswith(".xyz") else 1e-9
    if name in ("cell.vasp", "POSCAR", "cell.xyz"):
        for k in np.random.default_rng(3).normal(size=(4, 2)) * 4.0:
            assert abs(read.csr(k)[0] - rigid.csr(k)[0]).max() < tol
            assert abs(read.valley(k) - rigid.valley(k)).max() < tol * 1e-3
        np.testing.assert_array_equal(read.sublattice, rigid.sublattice)
    for k_read, k_rigid in zip(_points(read), _points(rigid), strict=True):
        assert np.abs(_spectrum(read, k_read) - _spectrum(rigid, k_rigid)).max() < tol


def test_ab_bilayer_at_k_is_analytic(tmp_path):
    """Bernal bilayer, cutoff 0.34 nm (intralayer up to 3rd neighbours, vertical dimer bond):
    at K the NN and 3rd-neighbour structure factors vanish, so the spectrum is ε_D twice and
    ε_D ± γ1 with γ1 = V_ppσ0 (theory §2.6); neutrality is ε_D (energy zero)."""
    d0 = DEFAULTS["d0"]
    pos = np.array([[*(PRIM.sum(0) / 3), 0.0], [*(2 * PRIM.sum(0) / 3), 0.0],
                    [*(2 * PRIM.sum(0) / 3), d0], [*(PRIM.sum(0)), d0]])
    pos[3, :2] -= PRIM[0] + PRIM[1]  # wrapped back by the reader anyway
    path = str(tmp_path / "ab.vasp")
    write_structure(path, PRIM, pos)
    model = build_model("atomistic", {"structure": path, "cutoff": 0.34,
                                      "energy_zero": "absolute"})
    e_d = monolayer_dirac_energy({**DEFAULTS, "cutoff": 0.34})
    k = model.dirac_point()
    np.testing.assert_allclose(_spectrum(model, k), np.sort([e_d, e_d, e_d - 480.0, e_d + 480.0]),
                               atol=1e-9)
    zeroed = build_model("atomistic", {"structure": path, "cutoff": 0.34})
    assert zeroed.describe()["neutrality_meV"] == pytest.approx(e_d, abs=1e-9)
    assert read_structure(path).layers()[1][0] == 2


def test_massive_monolayer_and_layer_masses(tmp_path):
    """A monolayer rotated by 17° with mass M: ε_D ± M/2 at its K, valley operator +1 there
    and commuting with H; a mass list must have one entry per layer."""
    rot = math.radians(17.0)
    r = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    lattice = PRIM @ r.T
    pos = np.column_stack([np.array([1 / 3, 2 / 3])[:, None] * lattice.sum(0), np.zeros(2)])
    path = str(tmp_path / "mono.vasp")
    write_structure(path, lattice, pos)
    model = build_model("atomistic", {"structure": path, "mass": 30.0,
                                      "energy_zero": "absolute"})
    assert model.orientation[0] == pytest.approx(rot, abs=1e-12)
    k = model.dirac_point()
    e_d = monolayer_dirac_energy(DEFAULTS)
    np.testing.assert_allclose(_spectrum(model, k), [e_d - 15.0, e_d + 15.0], atol=1e-9)
    h, v = model.csr(k)[0].toarray(), model.valley(k).toarray()
    assert np.abs(h @ v - v @ h).max() < 1e-9 and np.allclose(np.linalg.eigvalsh(v), 1.0)
    with pytest.raises(ValueError, match="2 entries; the structure has 1 layers"):
        build_model("atomistic", {"structure": path, "mass": [1.0, 2.0]})


def test_relaxing_a_rigid_file_equals_the_builtin_relaxation(tmp_path):
    """The rigid m = 4 cell, rotated by 23° and shifted, read with [model.relax]: the twist
    and the AA point are found from the atoms and the spectrum at Γ, K, M equals the built-in
    relaxed cell's (theory §2.6b)."""
    rigid = tbg_atomistic(4)
    rot = math.radians(23.0)
    r = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    pos = np.column_stack([rigid.positions @ r.T + [0.31, -0.07], rigid.z + 1.0])
    path = str(tmp_path / "rigid.vasp")
    write_structure(path, rigid.lattice @ r.T, pos)
    relax = {"method": "continuum"}
    read = build_model("atomistic", {"structure": path, "relax": relax})
    built = build_model("tbg_atomistic", {"m": 4, "relax": relax})
    assert read.info["relax_max_displacement_nm"] > 1e-3
    assert read.info["relax_max_displacement_nm"] == pytest.approx(
        built.info["relax_max_displacement_nm"], rel=1e-9)
    for k_read, k_built in zip(_points(read), _points(built), strict=True):
        assert np.abs(_spectrum(read, k_read) - _spectrum(built, k_built)).max() < 1e-7
    assert np.ptp(read.z[read.layer == 0]) == pytest.approx(np.ptp(built.z[built.layer == 0]))


def test_relaxed_cell_corrugation_and_gaps():
    """Relaxed m = 6 (θ = 5.1°): heights follow the local stacking (AA 0.360 nm apart at
    most), the SK hoppings use the 3D bond vectors, and the file's stacking map is kept."""
    relaxed = build_model("tbg_atomistic", {"m": 6, "relax": {"method": "continuum"},
                                            "energy_zero": "absolute"})
    gap = relaxed.z[relaxed.layer == 1].max() - relaxed.z[relaxed.layer == 0].min()
    assert 0.335 < gap <= 0.360 + 1e-12
    assert set(relaxed.maps) == {"stacking_r", "stacking_delta", "stacking_energy",
                                 "stacking_d"}
    d = np.array([[0.05, 0.02, 0.3]])
    assert slater_koster(d, relaxed.params)[0] == pytest.approx(
        slater_koster(d, DEFAULTS)[0], rel=1e-15)


@pytest.mark.parametrize(("text", "match"), [
    ("2\nLattice=\"2.46 0 0 1.23 2.13 0 0 0 20\" Properties=species:S:1:pos:R:3 "
     "pbc=\"T T F\"\nB 0 0 0\nN 1.23 0.71 0\n", r"elements \['B', 'N'\]"),
    ("2\n\nC 0 0 0\nC 1.42 0 0\n", "periodic along its first two vectors"),
    ("not a structure\n", "ASE cannot read it"),
])
def test_bad_structures_are_one_error(tmp_path, text, match):
    path = tmp_path / "bad.xyz"
    path.write_text(text)
    with pytest.raises(StructureError, match=match):
        read_structure(str(path))


def test_vacancy_and_non_rigid_relax_are_refused(tmp_path):
    rigid = tbg_atomistic(2)
    pos = np.column_stack([rigid.positions, rigid.z])
    path = str(tmp_path / "vac.vasp")
    write_structure(path, rigid.lattice, pos[1:])
    with pytest.raises(ValueError, match=r"intralayer neighbours .* honeycomb"):
        build_model("atomistic", {"structure": path})
    moved = pos + np.random.default_rng(0).normal(scale=1e-3, size=pos.shape)
    write_structure(path, rigid.lattice, moved)
    with pytest.raises(ValueError, match="not a rigid honeycomb"):
        build_model("atomistic", {"structure": path, "relax": {"method": "continuum"}})


@pytest.mark.parametrize(("body", "key"), [
    ('kind = "tbg_atomistic"\nm = 1000', "model.m"),
    ('kind = "tbg_atomistic"\nm = 3\ncutoff = 1000.0', "model.cutoff"),
    ('kind = "tbg_atomistic"\nm = 3\n[model.relax]\ngrid = 1000', "model.relax.grid"),
    ('kind = "tbg_atomistic"\nm = 3\n[model.relax]\nmethod = "lammps"', "model.relax.method"),
    ('kind = "tbg_atomistic"\nm = 3\n[model.relax]\nfoo = 1', "model.relax.foo"),
    ('kind = "atomistic"\nstructure = "x.vasp"\nmass = []', "model.mass"),
])
def test_deck_keys_checked_before_building(body, key):
    """Sizes and relaxation keys are checked by the deck reader (nothing allocated)."""
    text = f'[model]\n{body}\n[kgrid]\nsize = [2, 2]\n[sweep]\ntemperature = [1.0]\n' \
           'mu = [0.0]\ndelta = [1.0]\n'
    if "[model.relax]" in body:  # the sections after [model.relax] must not fall into it
        head, relax = body.split("[model.relax]")
        text = f'[model]\n{head}\n[kgrid]\nsize = [2, 2]\n[sweep]\ntemperature = [1.0]\n' \
               f'mu = [0.0]\ndelta = [1.0]\n[model.relax]{relax}\n'
    with pytest.raises(InputError) as err:
        parse_deck(text, "<test>")
    assert err.value.key == key


@pytest.mark.subprocess
def test_model_save_writes_a_structure_the_atomistic_kind_reads(tmp_path):
    """qgt-mpi model save DECK -o POSCAR writes the atoms; a deck reading them builds the same
    model (validate prints the same orbital count); a non-carbon model is refused (exit 2)."""
    deck = tmp_path / "tbg.toml"
    deck.write_text('[model]\nkind = "tbg_atomistic"\nm = 2\n[kgrid]\nsize = [2, 2]\n'
                    '[sweep]\ntemperature = [1.0]\nmu = [0.0]\ndelta = [1.0]\n')
    out = tmp_path / "POSCAR"
    proc = qgt(["model", "save", str(deck), "-o", str(out)])
    assert proc.returncode == 0 and "atoms as vasp" in proc.stdout
    read = build_model("atomistic", {"structure": str(out), "energy_zero": "absolute"})
    rigid = tbg_atomistic(2)
    assert abs(read.csr(np.array([0.3, 0.1]))[0] - rigid.csr(np.array([0.3, 0.1]))[0]).max() \
        < 1e-9
    haldane = tmp_path / "h.toml"
    haldane.write_text('[model]\nkind = "haldane"\nt1 = 1.0\nt2 = 0.1\n[kgrid]\nsize = [2, 2]\n'
                       '[sweep]\ntemperature = [1.0]\nmu = [0.0]\ndelta = [1.0]\n')
    refused = qgt(["model", "save", str(haldane), "-o", str(tmp_path / "h.xyz")])
    assert refused.returncode == 2 and "only the carbon kinds" in refused.stderr
    assert not (tmp_path / "h.xyz").exists()


def test_theta_selects_the_nearest_commensurate_cell():
    """tbg_atomistic with theta instead of m: the (m, 1) cell of the nearest angle."""
    from qgt_mpi.models.tbg_atomistic import m_for_angle, twist_angle

    for theta in (0.3, 1.05, 1.1, 2.0, 5.09, 21.8):
        m = m_for_angle(theta)
        assert all(abs(twist_angle(m) - theta) <= abs(twist_angle(n) - theta)
                   for n in range(max(1, m - 10), m + 11))
    assert m_for_angle(1.05) == 31
    assert build_model("tbg_atomistic", {"theta": 5.0, "energy_zero": "absolute"}).m == 6
    with pytest.raises(ValueError, match="give one of m"):
        build_model("tbg_atomistic", {"theta": 5.0, "m": 6})


@pytest.mark.slow
def test_neutrality_search_warns_when_it_misses_the_dirac_states(caplog):
    """Rigid (34, 1) cell: other states at K lie nearer the monolayer Dirac energy than the
    flat-band Dirac states, so the two states averaged are 24 meV apart; the build warns
    (docs/validation.md, relaxed TBG) and records the splitting."""
    import logging

    log = logging.getLogger("qgt_mpi")  # an earlier test may have set propagate = False
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="qgt_mpi"):
            model = build_model("tbg_atomistic", {"m": 34})
    finally:
        log.removeHandler(caplog.handler)
    assert model.info["neutrality_splitting_meV"] > 20.0
    assert any("charge neutrality uncertain" in r.getMessage() for r in caplog.records)
    small = build_model("tbg_atomistic", {"m": 3, "mass": 20.0})
    assert small.info["neutrality_splitting_meV"] == pytest.approx(20.0, abs=1.0)
