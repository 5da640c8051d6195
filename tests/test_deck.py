"""Tests of the input deck (src/qgt_mpi/io/deck.py): parsing, defaults, sweeps, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from decks import HALDANE_T, deck_text, kgrid_table, sweep_table

from qgt_mpi.io.deck import (
    InputError,
    SweepSpec,
    delta_for_bands,
    load_deck,
    parse_deck,
)

SHIPPED = Path(__file__).resolve().parents[1] / "inputs" / "haldane_flat.toml"

MINIMAL = deck_text(HALDANE_T, kgrid_table(8), sweep_table([1.0, 2.0], delta=[0.01]))


def deck(**sections: str) -> str:
    """MINIMAL with whole sections replaced (``model=...``) or appended (``extra=...``)."""
    parts = dict(top="", model='kind = "haldane"\nt1 = 1.0\nt2 = 0.3', kgrid="size = [8, 8]",
                 sweep="temperature = [1.0, 2.0]\nmu = [0.0]\ndelta = [0.01]", extra="")
    parts.update(sections)
    return (f"{parts['top']}\n[model]\n{parts['model']}\n[kgrid]\n{parts['kgrid']}\n"
            f"[sweep]\n{parts['sweep']}\n{parts['extra']}\n")


def sweep(**axes: str) -> str:
    """A [sweep] body with some axes replaced."""
    body = dict(temperature="[1.0, 2.0]", mu="[0.0]", delta="[0.01]") | axes
    return "\n".join(f"{k} = {v}" for k, v in body.items())


def error(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        parse_deck(text)
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"{err.key} = ")
    return err


# --- good decks ----------------------------------------------------------------------------------

def test_shipped_input():
    cfg = load_deck(str(SHIPPED))
    assert cfg.model.kind == "haldane"
    assert cfg.model.params == {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": math.pi / 2}
    assert cfg.model.flatten.gap == 0.5 and cfg.model.flatten.range == math.inf
    assert cfg.kgrid == (96, 96) and cfg.degeneracy == 1.0
    np.testing.assert_allclose(cfg.sweep.temperature, np.geomspace(0.1, 30.0, 121))
    np.testing.assert_array_equal(cfg.sweep.mu, [-0.25, 0.0])
    np.testing.assert_array_equal(cfg.sweep.delta, [[0.01, 0.01]])
    assert cfg.output.file == "results/haldane_flat.h5" and cfg.output.kresolved
    assert cfg.source == str(SHIPPED) and cfg.text == SHIPPED.read_text(encoding="utf-8")


def test_defaults_recorded():
    cfg = parse_deck(deck(model='kind = "haldane"\nt1 = 1\nt2 = 0.3\n[model.flatten]\ngap = 0.5'),
                     source="runs/my_run.toml")
    assert cfg.defaults == {
        "title": "my_run", "degeneracy": 1.0, "model.mass": 0.0, "model.phi": math.pi / 2,
        "model.flatten.range": "inf", "model.flatten.nfine": 64,
        "output.file": "results/my_run.h5", "output.kresolved": True,
        "run.chunk": "auto", "run.progress_percent": 5.0,
    }
    assert cfg.title == "my_run" and cfg.output.file == "results/my_run.h5"
    assert cfg.model.params["t1"] == 1.0 and isinstance(cfg.model.params["t1"], float)
    assert cfg.model.flatten.nfine == 64 and cfg.run.chunk is None  # run/blocks.py
    assert parse_deck(MINIMAL).title == "qgt_mpi run"
    assert parse_deck(MINIMAL).model.flatten is None


def test_given_values_are_not_defaults():
    cfg = parse_deck(deck(top='title = "t"\ndegeneracy = 4',
                          extra="[output]\nfile = 'x.h5'\nkresolved = false\n"
                                "[run]\nchunk = 16\nprogress_percent = 100"))
    assert (cfg.title, cfg.degeneracy) == ("t", 4.0)
    assert (cfg.run.chunk, cfg.run.progress_percent) == (16, 100.0)
    assert cfg.output.file == "x.h5" and not cfg.output.kresolved
    assert not any(k.startswith(("title", "degeneracy", "output", "run")) for k in cfg.defaults)


def test_linear_and_log_tables():
    cfg = parse_deck(deck(sweep=sweep(
        temperature="{start = 0.5, stop = 10, num = 7, spacing = 'log'}",
        mu="{start = -1, stop = 1, num = 5}",
        delta="{start = 0.01, stop = 0.1, num = 3, spacing = 'log'}")))
    np.testing.assert_allclose(cfg.sweep.temperature, np.geomspace(0.5, 10, 7))
    np.testing.assert_allclose(cfg.sweep.mu, np.linspace(-1, 1, 5))
    np.testing.assert_allclose(cfg.sweep.delta, np.geomspace(0.01, 0.1, 3)[:, None])
    assert cfg.defaults["sweep.mu.spacing"] == "linear"
    one = parse_deck(deck(sweep=sweep(mu="{start = 0.2, stop = 1, num = 1}")))
    np.testing.assert_array_equal(one.sweep.mu, [0.2])


def test_mixed_delta_broadcast():
    cfg = parse_deck(deck(sweep=sweep(delta="[0.02, [0.01, 0.05], 3]")))
    np.testing.assert_array_equal(cfg.sweep.delta, [[0.02, 0.02], [0.01, 0.05], [3.0, 3.0]])
    scalars = parse_deck(deck(sweep=sweep(delta="[0.01, 0.02]")))
    assert scalars.sweep.delta.shape == (2, 1)


def test_delta_for_bands():
    per_band = SweepSpec(np.ones(1), np.zeros(1), np.array([[0.01, 0.01], [0.01, 0.05]]))
    np.testing.assert_array_equal(delta_for_bands(per_band, 2), per_band.delta)
    common = SweepSpec(np.ones(1), np.zeros(1), np.array([[0.01], [0.02]]))
    out = delta_for_bands(common, 3)
    np.testing.assert_array_equal(out, [[0.01] * 3, [0.02] * 3])
    out[0, 0] = 9.0  # a fresh array, not a view of the config
    assert common.delta[0, 0] == 0.01
    with pytest.raises(InputError) as info:
        delta_for_bands(per_band, 4)
    assert info.value.key == "sweep.delta" and "(model has 4 bands)" in str(info.value)
    assert "\n" not in str(info.value)


def test_sweep_arrays_read_only():
    cfg = parse_deck(MINIMAL)
    with pytest.raises(ValueError):
        cfg.sweep.temperature[0] = 5.0


# --- errors: one per class, exact key, one line ---------------------------------------------------

@pytest.mark.parametrize(("text", "key", "fragment"), [
    # unknown keys at every level
    (deck(top="colour = 1"), "colour", "unknown key (allowed: bands, degeneracy, kgrid, model,"),
    (deck(model='kind = "haldane"\nt1 = 1\nt2 = 0.3\nfoo = 1'), "model.foo",
     "unknown key (allowed: flatten, kind, mass, phi, supercell, t1, t2)"),
    (deck(extra="[model.flatten]\ngap = 0.5\ngpa = 1"), "model.flatten.gpa", "allowed: gap,"),
    (deck(sweep=sweep(mu="{start = 0, stop = 1, num = 3, step = 1}")), "sweep.mu.step",
     "allowed: num, spacing, start, stop"),
    # wrong types
    (deck(model='kind = "haldane"\nt1 = "one"\nt2 = 0.3'), "model.t1", "must be a number"),
    (deck(model='kind = "haldane"\nt1 = 1\nt2 = true'), "model.t2", "not a boolean"),
    (deck(kgrid="size = [8.0, 8]"), "kgrid.size[0]", "must be an integer"),
    (deck(kgrid="size = [8, 8, 8]"), "kgrid.size", "two positive integers"),
    # bad values
    (deck(sweep=sweep(temperature="[1.0, 2.0, -1.0]")), "sweep.temperature[2]", "[1e-09, 1e+06] K"),
    (deck(sweep=sweep(temperature="[0]")), "sweep.temperature[0]", "must be in [1e-09, 1e+06] K"),
    (deck(sweep=sweep(delta="[[0.01, 0.0]]")), "sweep.delta[0][1]", "[1e-09, 1e+06] meV"),
    (deck(sweep=sweep(delta="[0.01, -0.01]")), "sweep.delta[1]", "must be in [1e-09, 1e+06] meV"),
    (deck(sweep=sweep(mu="[]")), "sweep.mu", "non-empty list"),
    (deck(kgrid="size = [0, 10]"), "kgrid.size[0]", "integer in [1, 100000]"),
    (deck(sweep=sweep(mu="{start = 0, stop = 1, num = 3, spacing = 'log'}")), "sweep.mu.start",
     "log spacing needs start > 0"),
    (deck(sweep=sweep(mu="{start = 1, stop = 2, num = 3, spacing = 'cubic'}")),
     "sweep.mu.spacing", '"linear" or "log"'),
    (deck(model='kind = "kagome"\nt1 = 1\nt2 = 0.3'), "model.kind", "allowed: haldane"),
    (deck(model='kind = "haldane"\nt2 = 0.3'), "model.t1", "required key is missing"),
    (deck(extra='[model.flatten]\ngap = 0.5\nrange = "abc"'), "model.flatten.range",
     '"inf" or a number > 0'),
    (deck(sweep=sweep(delta="[[0.01, 0.02], [0.01]]")), "sweep.delta[1]", "same length"),
    (deck(sweep=sweep(mu="[nan]")), "sweep.mu[0]", "must be finite"),
    (deck(extra="[run]\nprogress_percent = 150"), "run.progress_percent", "(0, 100]"),
])
def test_error(text: str, key: str, fragment: str):
    err = error(text)
    assert err.key == key
    assert fragment in str(err)


def test_error_message_format():
    err = error(deck(sweep=sweep(temperature="[1.0, 2.0, -1.0]")))
    assert str(err) == ("sweep.temperature[2] = -1.0: must be in [1e-09, 1e+06] K "
                        "(verified range, docs/input.md)")
    err = error(deck(model='kind = "haldane"\nt1 = 1\nt2 = 0.3\nfoo = 1'))
    assert str(err) == ("model.foo = 1: unknown key "
                        "(allowed: flatten, kind, mass, phi, supercell, t1, t2)")


def test_missing_section():
    assert error(MINIMAL.replace("[kgrid]\nsize = [8, 8]", "")).key == "kgrid"


def test_not_toml(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nkind = 'haldane'\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_deck(str(bad))
    assert info.value.key == "INPUT" and info.value.value == str(bad)
    assert "not valid TOML (" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_path(tmp_path: Path):
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(InputError) as info:
        load_deck(missing)
    assert info.value.key == "INPUT" and info.value.value == missing
    assert "cannot read file (" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text, key, allowed", [
    (deck(model='kind = "haldane"\nt1 = 1e308\nt2 = 0.3'), "model.t1", "|x| <= 1e+06 meV"),
    (deck(sweep=sweep(mu="[1e308]")), "sweep.mu[0]", "|x| <= 1e+06 meV"),
    (deck(sweep=sweep(mu="[-1e308, 0.0]")), "sweep.mu[0]", "|x| <= 1e+06 meV"),
    (deck(sweep=sweep(temperature="[1e-300, 1.0]")), "sweep.temperature[0]",
     "[1e-09, 1e+06] K"),
    (deck(sweep=sweep(delta="[1e-31]")), "sweep.delta[0]", "[1e-09, 1e+06] meV"),
    (deck(model='kind = "haldane"\nt1 = 1e5\nt2 = 0.3', sweep=sweep(delta="[1e-8]")),
     "sweep.delta", "1e-12 x the energy scale"),
    (deck(sweep=sweep(temperature="{start = 1, stop = 2, num = 100000000}")),
     "sweep.temperature.num", "[1, 10000000]"),
])
def test_out_of_range_values_name_key_and_range(text, key, allowed):
    """Issue 10 §4: extreme values are refused with the key and the allowed range."""
    err = error(text)
    assert err.key == key and allowed in str(err), str(err)


def test_truncation_range_below_nearest_neighbour_is_refused():
    """R_c shorter than the shortest bond keeps no hopping: refused, naming the key."""
    from qgt_mpi.run.setup import model_from_config

    flat = 'kind = "haldane"\nt1 = 1.0\nt2 = 0.3\n[model.flatten]\ngap = 0.5\nnfine = 12\n'
    with pytest.raises(InputError) as info:
        model_from_config(parse_deck(deck(model=flat + "range = 0.3")))
    assert info.value.key == "model.flatten.range" and "0.57735" in str(info.value)
    model = model_from_config(parse_deck(deck(model=flat + "range = 0.6")))
    assert model.nbands == 2  # nearest neighbours (1/sqrt(3) a) kept
