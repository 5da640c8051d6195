"""Model files of every kind (issue 21 item 5): bit-identical H(k), ∂H/∂k, operators, valley
and high-symmetry points read back; hostile files refused in one line; ``model save`` of every
deck kind then ``kind = "model_file"`` runs the same numbers; ``Result.save`` of a BM model
holds a model that ``qgt-mpi plot`` draws."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import deck_text, kgrid_table, sweep_table, table
from runner import qgt

from qgt_mpi.models import build_model, haldane, load_model, save_model
from qgt_mpi.models.flatten import build_flattened
from qgt_mpi.models.textfile import ModelFileError

# kind, params, supercell: small cases of every model class the file holds
CASES = {
    "bm_chiral_both": ("bm_continuum", {"alpha": 0.586, "w0": 0.0, "shells": 2,
                                        "valley": "both"}, None),
    "tmd": ("tmd_continuum", {"theta": 3.7, "shells": 2, "layer_potential": 3.0}, None),
    "htg_both": ("htg_continuum", {"theta": 1.8, "shells": 1, "valley": "both"}, None),
    "tbg_strained": ("tbg_continuum", {"theta": 1.1, "shells": 2, "strain": 0.002,
                                       "rotate_cones": "yes", "params": "koshino2018"}, None),
    "atomistic_rigid": ("tbg_atomistic", {"m": 2}, None),
    "atomistic_relaxed": ("tbg_atomistic", {"m": 2, "mass": [10.0, 5.0],
                                            "relax": {"method": "continuum"}}, None),
    "supercell": ("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.1},
                  {"size": (2, 3), "disorder_width": 0.3, "disorder_seed": 4}),
}


def _model(name: str):
    kind, params, cell = CASES[name]
    return build_model(kind, params, cell=cell)


def _same_csr(a, b) -> bool:
    a, b = a.tocsr(), b.tocsr()
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_kind_reads_back_bit_identical(tmp_path, name):
    """H(k), ∂H/∂k (dense and per-entry values, whole and a span), describe, operators, the
    valley operator, high-symmetry points and the kind's extras come back bit for bit."""
    model = _model(name)
    path = tmp_path / "m.h5"
    save_model(model, str(path))
    back = load_model(str(path))
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == 2 and f.attrs["class"] == type(back).__name__
    rng = np.random.default_rng(7)
    k = rng.normal(size=(6, 2)) * np.abs(model.reciprocal).max()
    h, dh = model.hamiltonian(k)
    h2, dh2 = back.hamiltonian(k)
    assert np.array_equal(h, h2) and np.array_equal(np.asarray(dh), np.asarray(dh2))
    span = slice(model.indptr[1], model.indptr[model.norb // 2])
    for kk in k[:3]:
        for x, y in zip(model.values(kk), back.values(kk), strict=True):
            assert np.array_equal(x, y)
        for x, y in zip(model.values(kk, span), back.values(kk, span), strict=True):
            assert np.array_equal(x, y)
    assert back.describe() == model.describe()
    for attr in ("lattice", "positions", "reciprocal", "rows", "cols", "indptr"):
        assert np.array_equal(getattr(model, attr), getattr(back, attr)), attr
    assert sorted(model.operators) == sorted(back.operators)
    assert all(_same_csr(model.operators[n], back.operators[n]) for n in model.operators)
    assert getattr(back, "resolve_default", None) == getattr(model, "resolve_default", None)
    if hasattr(model, "valley"):
        assert all(_same_csr(model.valley(kk), back.valley(kk)) for kk in k[:2])
    if hasattr(model, "high_symmetry_points"):
        want, got = model.high_symmetry_points(), back.high_symmetry_points()
        assert list(want) == list(got) and all(np.array_equal(want[p], got[p]) for p in want)
    if hasattr(model, "spec"):  # continuum: the spec, valleys and the G-shift map
        assert back.valleys == model.valleys and back.spin_per_valley == model.spin_per_valley
        assert all(np.array_equal(x, y) for x, y in zip(model.shift_map(1, -1),
                                                         back.shift_map(1, -1), strict=True))
        assert [vars(x) for x in back.spec.layers] == [vars(x) for x in model.spec.layers]
    if hasattr(model, "valley_model"):  # carbon: every attribute the engine uses
        for attr in ("layer", "sublattice", "z", "orientation"):
            assert np.array_equal(getattr(model, attr), getattr(back, attr)), attr
        assert back.params == model.params and np.array_equal(back.dirac_point(),
                                                              model.dirac_point())
        assert (back.m, back.theta) == (model.m, model.theta)
        assert sorted(back.maps) == sorted(model.maps)
        assert all(np.array_equal(model.maps[n], back.maps[n]) for n in model.maps)
    if name == "atomistic_relaxed":
        assert sorted(back.maps) == ["stacking_d", "stacking_delta", "stacking_energy",
                                     "stacking_r"]


def test_atomistic_structure_file_model_reads_back(tmp_path):
    """kind = "atomistic" (a structure file, per-layer masses): a CarbonModel like
    tbg_atomistic, bit-identical, with its valley operator and Dirac point."""
    from qgt_mpi.models.structure import write_structure
    from qgt_mpi.models.tbg_atomistic import rigid_cell

    lattice, pos3, _layer, _theta = rigid_cell(2, 0.246, 0.335)
    write_structure(str(tmp_path / "POSCAR"), lattice, pos3)
    model = build_model("atomistic", {"structure": str(tmp_path / "POSCAR"),
                                      "mass": [4.0, 0.0]})
    save_model(model, str(tmp_path / "m.h5"))
    back = load_model(str(tmp_path / "m.h5"))
    k = np.random.default_rng(1).normal(size=(4, 2))
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in
               zip(model.hamiltonian(k), back.hamiltonian(k), strict=True))
    assert back.describe() == model.describe() and not hasattr(back, "m")
    assert _same_csr(model.valley(k[0]), back.valley(k[0]))
    assert np.array_equal(model.dirac_point(), back.dirac_point())


def test_dense_files_stay_version_1(tmp_path):
    """A TightBinding or flattened file is still format version 1 (read by older
    qgt_mpi); a version this qgt_mpi does not know is one line."""
    for i, model in enumerate((haldane(1.0, 0.3, 0.2, 1.1),
                               build_flattened(haldane(1.0, 0.3, 0.2, 1.1), 1.0))):
        path = tmp_path / f"d{i}.h5"
        save_model(model, str(path))
        with h5py.File(path, "a") as f:
            assert f.attrs["format_version"] == 1
            f.attrs["format_version"] = 3
        with pytest.raises(ModelFileError, match="version 3: this qgt_mpi reads versions 1 "
                           "to 2") as err:
            load_model(str(path))
        assert "\n" not in str(err.value)


def _poke(name, index=0, value=np.nan):
    def change(data):
        data = np.array(data)
        data.flat[index] = value
        return data
    return name, change


def _replace(f: h5py.Group, name: str, change) -> None:
    if name.startswith("@"):
        f.attrs[name[1:]] = change(f.attrs.get(name[1:]))
        return
    new = change(f[name][()])
    del f[name]
    if new is not None:
        f[name] = new


_H0_UP = lambda h: np.where(np.arange(h.size) == 1, h + 5.0, h)  # noqa: E731


def _layers(text):
    layers = json.loads(text)
    layers[0]["kinetic"] = "magic"
    return json.dumps(layers)


CONTINUUM_DAMAGE = [
    (_poke("h0"), "'h0' holds a non-finite"),
    (("h0", _H0_UP), "H\\(k\\) is not Hermitian"),
    (_poke("rows", 0, 10**6), "'rows' has an orbital index outside"),
    (("cols", lambda c: c[::-1].copy()), "CSR order"),
    (("hx", lambda h: h[:-1]), "'hx' has shape"),
    (("b", lambda b: b * 2), "not reciprocal"),
    (("rows", lambda r: r.astype(np.float64)), "'rows' has type float64, expected integer"),
    (("@layers_json", _layers), "kinetic must be one of"),
    (("@shells", lambda s: 10**7), "shells must be an integer"),
    (("@valley", lambda s: 2), "valley must be an integer"),
    (("@resolve_default", lambda s: "spin"), "names no operator"),
    (("harmonic_matrix", lambda m: m[:, :1]), "'harmonic_matrix'|2x2 matrix"),
    (("operators/sublattice/indptr", lambda p: p[::-1].copy()), "indptr"),
    (("operators/layer/data", lambda d: d * 1j), "operator 'layer' is not Hermitian"),
    (("@info_json", lambda s: "[1]"), "info_json must be a JSON object"),
]


@pytest.mark.parametrize("damage, match", CONTINUUM_DAMAGE,
                         ids=[f"{d[0]}-{i}" for i, (d, _m) in enumerate(CONTINUUM_DAMAGE)])
def test_damaged_continuum_file_is_one_line(tmp_path, damage, match):
    path = tmp_path / "c.h5"
    save_model(_model("bm_chiral_both"), str(path))
    with h5py.File(path, "a") as f:
        _replace(f, *damage)
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_continuum_file_sized_before_allocation(tmp_path, monkeypatch):
    """shells = 900 in a small file would allocate positions for ~10^7 orbitals: refused by
    its size before anything is built."""
    from qgt_mpi.run import memory

    path = tmp_path / "c.h5"
    save_model(_model("tmd"), str(path))
    with h5py.File(path, "a") as f:
        f.attrs["shells"] = 900
    monkeypatch.setattr(memory, "available_mib", lambda: 256.0)
    with pytest.raises(ModelFileError, match=r"shells = 900 makes .* more than half the memory"):
        load_model(str(path))


CARBON_DAMAGE = [
    (_poke("d"), "'d' holds a non-finite"),
    (_poke("t", 0, 1e9), "'t' has \\|value\\|"),
    (_poke("b", 3, -1), "'b' has an orbital index outside"),
    (_poke("sublattice", 0, 2), "sublattice index outside"),
    (("orientation", lambda o: o[:1]), "'orientation' has shape"),
    (("z", lambda z: z[:-2]), "'z' has shape"),
    (("@params_json", lambda s: json.dumps({"a": 0.246})), "params_json must give"),
    (("@m", lambda m: 2.5), "m = 2.5 must be an integer"),
    (("valley_model/t", lambda t: t * 1j), "valley operator V\\(k\\) is not Hermitian"),
    (("valley_model/positions", lambda p: p[:3]), "valley_model"),
    (("maps/stacking_energy", _poke("x")[1]), "'stacking_energy' holds a non-finite"),
    (("t", _H0_UP), "H\\(k\\) is not Hermitian"),
]


@pytest.mark.parametrize("damage, match", CARBON_DAMAGE,
                         ids=[f"{d[0]}-{i}" for i, (d, _m) in enumerate(CARBON_DAMAGE)])
def test_damaged_carbon_file_is_one_line(tmp_path, damage, match):
    path = tmp_path / "a.h5"
    save_model(_model("atomistic_relaxed"), str(path))
    with h5py.File(path, "a") as f:
        _replace(f, *damage)
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_valley_model_and_unknown_class(tmp_path):
    path = tmp_path / "a.h5"
    save_model(_model("atomistic_rigid"), str(path))
    with h5py.File(path, "a") as f:
        del f["valley_model"]
    with pytest.raises(ModelFileError, match="'valley_model' \\(class BondModel\\) is missing"):
        load_model(str(path))
    with h5py.File(path, "a") as f:
        f.attrs["class"] = "BMContinuum"
    with pytest.raises(ModelFileError, match="unknown model class 'BMContinuum'"):
        load_model(str(path))


def test_save_into_a_group_leaves_no_empty_group(tmp_path):
    """A model the file cannot hold is refused before the group exists (Result.save wrote
    an empty /model/definition that plot rejected)."""
    path = tmp_path / "r.h5"
    with h5py.File(path, "w") as f:
        f.create_group("model")
    with pytest.raises(TypeError, match="cannot save a object"):
        save_model(object(), str(path), "/model/definition")
    with h5py.File(path) as f:
        assert "model/definition" not in f
    save_model(_model("tmd"), str(path), "/model/definition")
    back = load_model(str(path), group="/model/definition")
    assert back.describe()["kind"] == "tmd_continuum"


# --- model save, then kind = "model_file": the same result file -------------------------------

SWEEP = kgrid_table(4) + sweep_table(temperature=[5.0, 50.0], mu=[-5.0, 0.0, 5.0], delta=[0.5])
DECKS = {
    "bm_continuum": table("model", kind="bm_continuum", theta=1.05, shells=2, valley="both"),
    "tmd_continuum": table("model", kind="tmd_continuum", theta=3.7, shells=2),
    "htg_continuum": table("model", kind="htg_continuum", theta=1.8, shells=1),
    "tbg_continuum": table("model", kind="tbg_continuum", theta=1.1, shells=2, strain=0.002,
                           rotate_cones="yes"),
    "tbg_atomistic": table("model", kind="tbg_atomistic", m=2),
    "tbg_relaxed": table("model", kind="tbg_atomistic", m=2, mass=[10.0, 5.0])
    + table("model.relax", method="continuum"),
    "supercell": table("model", kind="haldane", t1=1.0, t2=0.3, mass=0.2, phi=1.1)
    + table("model.supercell", size=[2, 2], disorder={"width": 0.2, "seed": 3}),
}
# α = −L1/eT sums (ε − μ)-weighted terms that cancel to 1e-10 of their size in the atomistic
# cells: two runs of the SAME deck differ there by ~2e-10 of the largest α (summation order
# varies with memory alignment); everything else is compared bit for bit.
THERMO = ("alpha_xx", "seebeck", "seebeck_xx", "seebeck_xy", "kappa_xx", "kappa_xx_full",
          "kappa_xy", "lorenz_ratio", "lorenz_ratio_xx_full", "lorenz_ratio_xy")


def _compare(a: Path, b: Path, exact: bool) -> int:
    """Every /transport and /geometry dataset of ``b`` equals ``a``'s (bitwise when
    ``exact``, else to 1e-12 of the largest value; THERMO to 1e-7: κ = K2 − K1²/K0 and the
    Lorenz ratio cancel ~4 digits of sums whose order differs between 1 and 2 ranks, measured
    1.3e-8 once); the datasets compared."""
    count = 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        # a Hall coefficient that vanishes by symmetry (alpha_xy of TBG, ~1e-19 of noise) is
        # compared against the scale of its group, not against its own noise
        floor = {g: max((float(np.nanmax(np.abs(d[()]))) for d in fa[g].values()
                         if d.dtype.kind in "fc" and d.size and np.isfinite(d[()]).any()),
                        default=0.0) for g in ("transport", "geometry")}
        for group in ("transport", "geometry"):
            assert sorted(fa[group]) == sorted(fb[group])
            for name, item in fa[group].items():
                x, y = item[()], fb[group][name][()]
                count += 1
                if x.dtype.kind not in "fc" or (exact and name not in THERMO):
                    assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), name
                    continue
                scale = float(np.nanmax(np.abs(x))) if x.size else 0.0
                rtol = 1e-7 if name in THERMO else 1e-12
                np.testing.assert_allclose(y, x, rtol=0, err_msg=name,
                                           atol=rtol * scale + 1e-12 * floor[group])
        assert sorted(fa["model"]) == sorted(fb["model"])  # e.g. the relaxation's maps
        for name in fa["model"]:
            assert np.array_equal(fa["model"][name][()], fb["model"][name][()]), name
    return count


def _save_and_run(tmp_path: Path, name: str, ranks: int = 0) -> tuple[Path, Path]:
    deck = tmp_path / f"{name}.toml"
    deck.write_text(deck_text(DECKS[name], SWEEP))
    proc = qgt(["model", "save", str(deck), "-o", str(tmp_path / "m.h5")], np=ranks)
    assert proc.returncode == 0, proc.stderr[-2000:]
    via = tmp_path / "via_file.toml"
    via.write_text(deck_text(table("model", kind="model_file", file="m.h5"), SWEEP))
    out = [tmp_path / "deck.h5", tmp_path / "file.h5"]
    for src, dst in zip((deck, via), out, strict=True):
        proc = qgt(["run", str(src), "-o", str(dst)], np=ranks)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return out[0], out[1]


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DECKS))
def test_model_save_then_model_file_runs_the_same_numbers(tmp_path, name):
    """Every deck kind: `model save`, then kind = "model_file" writes the same /transport
    and /geometry (bit for bit but α-type sums, see THERMO) and /model maps."""
    a, b = _save_and_run(tmp_path, name)
    assert _compare(a, b, exact=True) > 50


@pytest.mark.subprocess
@pytest.mark.slow
def test_model_save_and_model_file_run_under_mpirun(tmp_path):
    """The relaxed atomistic cell saved and run on 2 ranks: the numbers of a serial run of
    the deck (to 1e-12 of the largest value: the ranks sum in another order)."""
    deck, file = _save_and_run(tmp_path, "tbg_relaxed", ranks=2)
    serial = tmp_path / "serial.h5"
    proc = qgt(["run", str(tmp_path / "tbg_relaxed.toml"), "-o", str(serial)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _compare(serial, file, exact=False) > 50
    assert _compare(deck, file, exact=True) > 50
    info = qgt(["model", "info", str(tmp_path / "m.h5")])
    assert info.returncode == 0 and "CarbonModel" in info.stdout, info.stderr


@pytest.mark.subprocess
def test_result_save_of_a_bm_model_holds_the_model_plot_draws(tmp_path):
    """Result.save of a BM model wrote an empty /model/definition that plot rejected."""
    from mpi4py import MPI

    import qgt_mpi as q

    model = q.models.bm_continuum(theta=1.05, shells=2, mass=10.0)
    res = q.compute(model, (4, 4), [5.0], [0.0], [0.5], comm=MPI.COMM_SELF)
    path = tmp_path / "bm.h5"
    res.save(str(path))
    back = q.load_model(str(path), group="/model/definition")
    k = np.random.default_rng(3).normal(size=(5, 2))
    assert np.array_equal(back.hamiltonian(k)[0], model.hamiltonian(k)[0])
    assert back.describe() == model.describe()
    proc = qgt(["plot", str(path), "-d", str(tmp_path / "fig")])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig" / "bands_path.png").exists(), proc.stdout
