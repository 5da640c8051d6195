"""Deck model kinds: tight_binding inline decks (kagome, checkerboard), the kinds table,
the HDF5 model file (bit-identical H(k)), flattening/truncation of any kind, ``model`` CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from decks import kgrid_table, sweep_table
from runner import REPO, qgt
from w90_util import haldane_files, sample_k

from qgt_mpi.geometry.chern import chern_numbers
from qgt_mpi.io.deck import InputError, load_deck, parse_deck
from qgt_mpi.models import (
    KINDS,
    build_model,
    haldane,
    kgrid_points,
    load_model,
    save_model,
    tight_binding,
    truncate,
)
from qgt_mpi.models.registry import REQUIRED
from qgt_mpi.run.setup import model_from_config
from qgt_mpi.solvers.dense import DenseSolver

SWEEP = kgrid_table(8) + sweep_table()


def _chern(model, n: int = 24) -> np.ndarray:
    return chern_numbers(model, DenseSolver(), n, n, [(b, b + 1) for b in range(model.nbands)])


def _bands(model, n: int = 48) -> np.ndarray:
    k = kgrid_points(model.reciprocal, n, n, 0, n * n)
    return np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])


def test_checkerboard_deck_is_sun_et_al():
    """H(k) = 4t'' cos kx cos ky + d·σ of Sun et al. PRL 106, 236803; C = (+1, −1)."""
    model = model_from_config(load_deck(str(REPO / "inputs/checkerboard_chern.toml")))
    t, phi = 1.0, math.pi / 4
    tp, tpp = 1 / (2 + math.sqrt(2)), 1 / (2 + 2 * math.sqrt(2))
    k = sample_k(64)
    kx, ky = k[:, 0], k[:, 1]
    d = np.stack([4 * t * np.cos(phi) * np.cos(kx / 2) * np.cos(ky / 2),
                  4 * t * np.sin(phi) * np.sin(kx / 2) * np.sin(ky / 2),
                  2 * tp * (np.cos(kx) - np.cos(ky))])
    d0 = 4 * tpp * np.cos(kx) * np.cos(ky)
    analytic = np.stack([d0 - np.linalg.norm(d, axis=0), d0 + np.linalg.norm(d, axis=0)], 1)
    np.testing.assert_allclose(np.linalg.eigvalsh(model.hamiltonian(k, False)[0]), analytic,
                               atol=1e-13)
    assert np.array_equal(np.rint(_chern(model)), [1, -1])
    e = _bands(model)
    flatness = (e[:, 1].min() - e[:, 0].max()) / np.ptp(e[:, 0])
    assert flatness > 20  # a nearly flat Chern band (≈ 27 on this grid)


def test_kagome_deck_chern_numbers_and_flat_limit():
    """Kagome + intrinsic SOC: C = (+1, −2, +1), reversed with λ → −λ; λ = 0: E = 2t flat."""
    config = load_deck(str(REPO / "inputs/kagome_flat.toml"))
    model = model_from_config(config)
    assert np.array_equal(np.rint(_chern(model)), [1, -2, 1])
    params = dict(config.model.params)
    hops = dict(params["hoppings"])
    soc = hops["t"].imag != 0
    flipped = tight_binding(params["lattice"], params["positions"],
                            {**hops, "t": np.where(soc, hops["t"].conj(), hops["t"])},
                            partners="refuse")
    assert np.array_equal(np.rint(_chern(flipped)), [-1, 2, -1])
    plain = tight_binding(params["lattice"], params["positions"],
                          {k: v[~soc] for k, v in hops.items()}, partners="refuse")
    e = _bands(plain)
    np.testing.assert_allclose(e[:, 2], 2.0, atol=1e-12)  # the exactly flat band at 2t
    assert e[:, 1].max() == pytest.approx(2.0, abs=1e-12)  # touching it at Γ


def test_partners_added_or_refused():
    half = [((0, 0), 0, 1, 1.0 + 0.5j)]
    full = [*half, ((0, 0), 1, 0, 1.0 - 0.5j)]
    a = tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]], half, partners="add")
    b = tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]], full, partners="refuse")
    k = sample_k()
    assert np.array_equal(a.hamiltonian(k)[0], b.hamiltonian(k)[0])
    with pytest.raises(ValueError, match=r"hoppings\[0\].*no Hermitian partner"):
        tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]], half, partners="refuse")
    wrong = [*half, ((0, 0), 1, 0, 1.0 + 0.5j)]
    with pytest.raises(ValueError, match="not Hermitian partners"):
        tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]], wrong)
    with pytest.raises(ValueError, match="repeats"):
        tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]], half * 2)


@pytest.mark.parametrize("body, key", [
    ('lattice = [[1.0, 0.0]]\npositions = [[0, 0]]\nhoppings = [[0, 0, 0, 0, 1, 0]]',
     "model.lattice"),
    ('lattice = [[1.0, 0.0], [0.0, 1.0]]\npositions = [[0, 0]]\nhoppings = [[0, 0, 0]]',
     "model.hoppings[0]"),
    ('lattice = [[1.0, 0.0], [0.0, 1.0]]\npositions = [[0, 0]]\n'
     'hoppings = [{R = [1, 0], a = 0, b = 0, t = "x"}]', "model.hoppings[0].t"),
    ('lattice = [[1.0, 0.0], [0.0, 1.0]]\npositions = [[0, 0]]\nhoppings = [[1, 0, 0, 0, 1, 0]]'
     '\npartners = "maybe"', "model.partners"),
])
def test_tight_binding_deck_errors_name_the_key(body, key):
    with pytest.raises(InputError) as err:
        parse_deck(f'[model]\nkind = "tight_binding"\n{body}\n{SWEEP}')
    assert str(err.value).startswith(key), str(err.value)


def test_kinds_table_drives_the_deck():
    """Every kind's required parameters are required by the deck reader, by name."""
    for kind, entry in KINDS.items():
        required = [n for n, p in entry.params.items() if p.default is REQUIRED]
        if not required:  # one-of choices checked when the model is built
            config = parse_deck(f'[model]\nkind = "{kind}"\n{SWEEP}')
            why = {"wannier90": "needs hr", "bm_continuum": "exactly one of 'theta'",
                   "tbg_atomistic": "give one of m"}[kind]
            with pytest.raises(InputError, match=why):
                model_from_config(config)
            continue
        with pytest.raises(InputError) as err:
            parse_deck(f'[model]\nkind = "{kind}"\n{SWEEP}')
        assert str(err.value).startswith(f"model.{required[0]}"), str(err.value)
    with pytest.raises(InputError, match="unknown model"):
        parse_deck(f'[model]\nkind = "nope"\n{SWEEP}')


def test_wannier90_deck_paths_relative_to_the_deck(tmp_path):
    f = haldane_files(tmp_path)
    lat = ", ".join(str(list(r)) for r in f["lattice"])
    deck = tmp_path / "w.toml"
    deck.write_text(f'[model]\nkind = "wannier90"\nhr = "seed_hr.dat"\n'
                    f'centres = "seed_centres.xyz"\nlattice = [{lat}]\n{SWEEP}')
    model = model_from_config(load_deck(str(deck)))
    k = sample_k()
    assert np.abs(model.hamiltonian(k)[0] - f["model"].hamiltonian(k)[0]).max() < 1e-12


@pytest.mark.parametrize("flatten", [None, {"gap": 0.5, "range": math.inf},
                                     {"gap": 0.5, "range": 2.0, "nfine": 16}])
def test_model_file_round_trip_is_bit_identical(tmp_path, flatten):
    """TightBinding, exact FlattenedModel and truncated models read back with equal H(k)."""
    model = build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.1, "phi": 1.0}, flatten)
    path = tmp_path / "m.h5"
    save_model(model, str(path))
    back = load_model(str(path))
    k = sample_k(40)
    h, dh = model.hamiltonian(k)
    h2, dh2 = back.hamiltonian(k)
    assert np.array_equal(h, h2) and np.array_equal(dh, dh2)
    assert back.describe() == model.describe()


def test_flatten_and_truncate_any_kind(tmp_path):
    """A Wannier90 model and an inline model flatten and truncate like the Haldane model."""
    f = haldane_files(tmp_path)
    w = build_model("wannier90", {"tb": f["tb"]}, {"gap": 0.5, "range": math.inf})
    params = {k: f["model"].info[k] for k in ("t1", "t2", "mass", "phi")}
    ref = build_model("haldane", params, {"gap": 0.5, "range": math.inf})
    k = sample_k()
    assert np.abs(w.hamiltonian(k)[0] - ref.hamiltonian(k)[0]).max() < 1e-12
    cb = model_from_config(load_deck(str(REPO / "inputs/checkerboard_chern.toml")))
    short = truncate(cb, 3.0, 16)
    e, e0 = _bands(short, 16), _bands(cb, 16)
    assert np.abs(e - e0).max() < 1e-12  # every hopping of the deck is within R_c = 3


@pytest.mark.subprocess
def test_model_cli_save_info_and_run_from_file(tmp_path):
    """qgt-mpi model save/info; kind = "model_file" reproduces the deck's run exactly."""
    out = tmp_path / "cb.h5"
    deck = REPO / "inputs/checkerboard_chern.toml"
    proc = qgt(["model", "save", str(deck), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    info = qgt(["model", "info", str(out)])
    assert info.returncode == 0 and "tight_binding" in info.stdout and "nhoppings" in info.stdout
    original = model_from_config(load_deck(str(deck)))
    via_file = model_from_config(parse_deck(f'[model]\nkind = "model_file"\nfile = "{out}"\n'
                                            f'{SWEEP}'))
    k = sample_k()
    assert np.array_equal(original.hamiltonian(k)[0], via_file.hamiltonian(k)[0])
    bad = qgt(["model", "info", str(tmp_path / "none.h5")])
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.subprocess
def test_model_save_never_destroys_a_file(tmp_path):
    """model save refuses the deck itself and an existing file without --overwrite (exit 2,
    one line, both files unchanged); with --overwrite the file is replaced whole."""
    deck = tmp_path / "cb.toml"
    deck.write_text((REPO / "inputs/checkerboard_chern.toml").read_text())
    before = deck.read_bytes()
    onto_deck = qgt(["model", "save", str(deck), "-o", str(deck)])
    assert onto_deck.returncode == 2 and "input deck" in onto_deck.stderr
    assert len(onto_deck.stderr.strip().splitlines()) == 1 and deck.read_bytes() == before
    existing = tmp_path / "keep.h5"
    existing.write_bytes(b"precious")
    kept = qgt(["model", "save", str(deck), "-o", str(existing)])
    assert kept.returncode == 2 and "--overwrite" in kept.stderr
    assert existing.read_bytes() == b"precious"
    replaced = qgt(["model", "save", str(deck), "-o", str(existing), "--overwrite"])
    assert replaced.returncode == 0, replaced.stderr
    assert qgt(["model", "info", str(existing)]).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cb.toml", "keep.h5"]  # no temp


@pytest.mark.subprocess
def test_bad_wannier_file_in_a_run_is_one_line_exit_2(tmp_path):
    f = haldane_files(tmp_path)
    Path(f["tb"]).write_text(open(f["tb"]).read().replace("0.001 0", "0.001 nan", 1))
    deck = tmp_path / "bad.toml"
    deck.write_text(f'[model]\nkind = "wannier90"\ntb = "seed_tb.dat"\n{SWEEP}'
                    f'[output]\nfile = "{tmp_path / "out.h5"}"\n')
    proc = qgt(["run", str(deck)], np=2)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "seed_tb.dat:" in lines[0] and "non-finite" in lines[0], lines
    assert not (tmp_path / "out.h5").exists()


def test_haldane_kind_unchanged():
    assert np.array_equal(build_model("haldane", {"t1": 1.0, "t2": 0.3}).t,
                          haldane(1.0, 0.3, 0.0, math.pi / 2).t)
