"""Property-based fuzz test of whole runs on mutated example decks.

Every deck in inputs/ is first shrunk (a 5×4 grid, at most 3 values per sweep axis, nfine
16) so that one run takes a fraction of a second, then mutated by hypothesis: values
replaced by nan, ±inf, huge, tiny, zero, negative numbers, strings, booleans, lists and
tables of the wrong shape; keys deleted; unknown keys added. For each generated deck the
real command line (``qgt_mpi.cli.main.main``, in this process, one rank) must either exit 0 with
finite results (or NaN flagged by its ``*_undefined`` mask) or exit 2 with one line on
stderr and no file; never a traceback (an uncaught exception fails the test), never exit 1,
never a leftover file. A few generated decks also run under ``mpirun -n 2`` with a timeout,
for hangs. The number of examples is bounded (``settings`` below) to keep the test near a
minute; the counts are printed at the end (``-s``).
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import toml, toml_key
from runner import REPO, qgt

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qgt_mpi.cli.main import main  # noqa: E402

DECKS = sorted((REPO / "inputs").glob("*.toml"))
OUTCOMES: Counter = Counter()
CASES = itertools.count()

ODD_VALUES = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-308, 5e-324, 0, 0.0, -0.0, -1,
              -1e-3, 1e-300, 2**63, -(2**63), 10**30, True, False, "", "inf", "1.0", "haldane",
              [], [1], [[]], [1.0, "a"], [[0.01, 0.02, 0.03]], {}, {"start": 1}, {"x": 1}]


def _shrink(deck: dict) -> dict:
    """Make an example deck cheap to run (same keys, smaller sizes)."""
    deck.setdefault("kgrid", {})["size"] = [5, 4]
    sweeps = [deck.get("sweep", {}), deck.get("superfluid", {})]
    for table in sweeps:
        for key in ("temperature", "mu", "delta"):
            axis = table.get(key)
            if isinstance(axis, list):
                table[key] = axis[:3]
            elif isinstance(axis, dict) and "num" in axis:
                axis["num"] = min(axis["num"], 3)
    flatten = deck.get("model", {}).get("flatten")
    if isinstance(flatten, dict):
        flatten["nfine"] = 16
    deck.get("output", {}).pop("file", None)
    return deck


BASES = [_shrink(tomllib.loads(p.read_text())) for p in DECKS]


def _paths(node, prefix=()):
    """Every (path, value) below node; paths index dicts by key and lists by position."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        out.append(((*prefix, key), value))
        if isinstance(value, dict | list):
            out.extend(_paths(value, (*prefix, key)))
    return out


def _parent(deck, path):
    node = deck
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated_decks(draw):
    """One shrunk example deck with 1 to 3 mutations."""
    deck = json.loads(json.dumps(BASES[draw(st.integers(0, len(BASES) - 1))]))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(deck)
        if not paths:
            break
        path, _value = paths[draw(st.integers(0, len(paths) - 1))]
        parent = _parent(deck, path)
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra"]))
        if action == "replace":
            parent[path[-1]] = draw(st.sampled_from(ODD_VALUES) | st.floats() | st.integers())
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "t3", "size", "Temperature"]))] = 1.0
        else:
            parent.append(draw(st.sampled_from(ODD_VALUES)))
    return deck


def _toml(deck) -> str:
    """The deck as TOML text, every table inline."""
    if not isinstance(deck, dict):  # the whole deck replaced: write it as one odd key
        return f"deck = {toml(deck)}\n"
    return "".join(f"{toml_key(k)} = {toml(v)}\n" for k, v in deck.items())


def _check_file(out: Path) -> None:
    """Exit 0: transport finite, or NaN exactly where flagged undefined."""
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"]
        tr = f["transport"]
        for key in tr:
            if key.endswith("_undefined") or tr[key].dtype.kind not in "fc":
                continue
            data = tr[key][()]
            bad = ~np.isfinite(data)
            if f"{key}_undefined" in tr:
                assert np.array_equal(bad, tr[f"{key}_undefined"][()] == 1), key
            else:
                assert not bad.any(), f"non-finite {key} without a flag"


def _run_one(deck: dict, tmp: Path, capsys) -> int:
    path, out = tmp / "deck.toml", tmp / "out.h5"
    path.write_text(_toml(deck))
    capsys.readouterr()
    status = main(["run", str(path), "-o", str(out)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    left = sorted(p.name for p in tmp.iterdir() if p.name != "deck.toml")
    if status == 0:
        assert left == ["out.h5"], left
        _check_file(out)
        out.unlink()
    else:
        assert status == 2, f"exit {status}: {err}\n{path.read_text()}"
        assert len(lines) == 1 and lines[0].startswith("qgt-mpi: input error: "), err
        assert left == [], left
    return status


@pytest.mark.slow
@seed(20261130)
@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(deck=mutated_decks())
def test_mutated_decks_run_or_are_refused(deck, tmp_path, capsys):
    work = tmp_path / f"case{next(CASES)}"
    work.mkdir()
    OUTCOMES[_run_one(deck, work, capsys)] += 1


@pytest.mark.slow
def test_report_fuzz_counts():
    """Print what the fuzz test generated (runs after it in file order)."""
    print(f"\nfuzz: {sum(OUTCOMES.values())} generated decks, exit status counts "
          f"{dict(sorted(OUTCOMES.items()))}")


@pytest.mark.subprocess
@seed(7)
@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(deck=mutated_decks())
def test_mutated_decks_under_mpirun_do_not_hang(deck, tmp_path):
    work = tmp_path / f"m{abs(hash(json.dumps(deck, default=str))) % 10**8}"
    work.mkdir()
    path, out = work / "deck.toml", work / "out.h5"
    path.write_text(_toml(deck))
    proc = qgt(["run", str(path), "-o", str(out)], np=2, timeout=120)
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in work.iterdir()) == (
        ["deck.toml", "out.h5"] if proc.returncode == 0 else ["deck.toml"])
