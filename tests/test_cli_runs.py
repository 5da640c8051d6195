"""The real command under mpirun: rank-count invariance, bad inputs, output file contents."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import HALDANE, HALDANE_T, deck_text, kgrid_table, span, sweep_table, table
from helpers import TRANSPORT_KEYS
from runner import REPO, qgt

pytestmark = pytest.mark.subprocess  # every test runs the real command


def _deck(tmp_path: Path, name: str, size=(13, 11), flatten: str = "") -> Path:
    """The Haldane model (``flatten``: its [model.flatten] table) in blocks of 37 k-points."""
    path = tmp_path / f"{name}.toml"
    path.write_text(deck_text(
        HALDANE + flatten, kgrid_table(*size),
        sweep_table(span(0.5, 20.0, 5, "log"), span(-3.0, 3.0, 13), [0.05, [0.02, 0.08]]),
        table("output", kresolved=True), table("run", chunk=37), title="rank invariance"))
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
        numeric = {g: [k for k in f[g] if f[g][k].dtype.kind in "iuf"]  # no label axes
                   for g in ("kgrid", "geometry")}
        out.update({f"k/{k}": f["kgrid"][k][()] for k in numeric["kgrid"]})
        out.update({f"g/{k}": f["geometry"][k][()] for k in numeric["geometry"]})
        out["n_ranks"] = f.attrs["n_ranks"]
    return out


@pytest.mark.parametrize("size, flatten", [((13, 11), ""),
                                            ((1, 2), ""),
                                            ((6, 5), table("model.flatten", gap=0.5))])
def test_results_do_not_depend_on_rank_count(tmp_path, size, flatten):
    """1, 2, 3 and 4 ranks agree to 1e-12 relative (a 1×2 grid leaves ranks without k)."""
    deck = _deck(tmp_path, "inv", size, flatten)
    results = []
    for np_ in (1, 2, 3, 4):
        out = tmp_path / f"out{np_}.h5"
        proc = qgt(["run", str(deck), "-o", str(out)], np=np_)
        assert proc.returncode == 0, proc.stderr
        results.append(_read(out))
        assert results[-1]["n_ranks"] == np_
    ref = results[0]
    for other in results[1:]:
        for key in ref:
            if key == "n_ranks":
                continue
            a, b = np.asarray(ref[key], float), np.asarray(other[key], float)
            # The Drude/geometric parts are judged against the σ_xx they add up to.
            base = ref["sigma_xx"] if key.startswith("sigma_xx_") else a
            scale = np.nanmax(np.abs(base)) if a.size else 1.0
            assert np.allclose(a, b, rtol=1e-12, atol=1e-12 * scale, equal_nan=True), key


BAD = {
    "unknown key": ("[model]\nkind = 'haldane'\nt1 = 1.0\nt2 = 0.3\ncolour = 1\n", "model.colour"),
    "negative temperature": ("temperature = [1.0, -2.0]", "sweep.temperature[1]"),
    "empty grid": ("size = [0, 10]", "kgrid.size[0]"),
    "wrong type": ("t1 = 'one'", "model.t1"),
    "per-band delta length": ("delta = [[0.01, 0.02, 0.03]]", "sweep.delta"),
}
GOOD = deck_text(HALDANE_T, kgrid_table(4), sweep_table(delta=[0.01]))


def _bad_text(change: str) -> str:
    """GOOD with one line (or the model section) replaced."""
    if change.startswith("[model]"):
        return change + GOOD.split("[kgrid]", 1)[1].join(["[kgrid]", ""])
    key = change.split("=")[0].strip()
    lines = [change if ln.split("=")[0].strip() == key else ln for ln in GOOD.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_on_all_ranks_with_one_line(tmp_path, case):
    change, key = BAD[case]
    deck = tmp_path / "bad.toml"
    deck.write_text(_bad_text(change))
    out = tmp_path / "never.h5"
    proc = qgt(["run", str(deck), "-o", str(out)], np=3, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("qgt-mpi: input error: " + key), lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists() and not Path(str(out) + ".partial").exists()


def test_unreadable_input_and_validate(tmp_path):
    proc = qgt(["run", str(tmp_path / "missing.toml")], np=2, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("qgt-mpi: input error: INPUT = ")
    ok = qgt(["validate", str(REPO / "inputs" / "haldane_flat.toml")])
    assert ok.returncode == 0 and "input ok" in ok.stdout
    deck = tmp_path / "bad.toml"
    deck.write_text(_bad_text("size = [0, 10]"))
    assert qgt(["validate", str(deck)]).returncode == 2


def test_unwritable_output_fails_together(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    deck = tmp_path / "ok.toml"
    deck.write_text(GOOD)
    proc = qgt(["run", str(deck), "-o", str(blocker / "sub" / "out.h5")], np=3, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1


def test_default_input_end_to_end(tmp_path):
    """The paper's deck on 2 ranks: file layout, provenance, physics sanity."""
    out = tmp_path / "flat.h5"
    proc = qgt(["run", str(REPO / "inputs" / "haldane_flat.toml"), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stderr
    assert "results written to" in proc.stdout and "ETA" in proc.stdout
    assert not Path(str(out) + ".partial").exists()
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"] and f.attrs["n_ranks"] == 2
        assert f.attrs["program"] == "qgt_mpi" and "[model.flatten]" in f.attrs["input_text"]
        tr = f["transport"]
        n_mu, n_d, n_t = tr["mu"].size, tr["delta"].shape[0], tr["temperature"].size
        assert tr["delta"].shape == (n_d, 2)
        for key in TRANSPORT_KEYS:
            assert tr[key].shape == (n_mu, n_d, n_t) and "units" in tr[key].attrs
        assert list(f["geometry"]["chern"][()]) == [-1, 1]
        assert np.max(f["bands"]["bandwidth"][()]) < 1e-12
        assert np.max(np.abs(tr["sigma_xx_drude"][()])) < 1e-12 * np.max(tr["sigma_xx"][()])
        i_gap = int(np.argmin(np.abs(tr["mu"][()])))
        assert tr["sigma_xy"][i_gap, 0, 0] == pytest.approx(1.0, abs=1e-3)
        assert f["kgrid"]["energies"].shape == (96, 96, 2)
        assert f["kgrid"]["metric"].shape == (96, 96, 2, 3)
        assert "phases" in f["timing"]
    info = qgt(["info", str(out)])
    assert info.returncode == 0 and "Chern -1  1" in info.stdout
    assert qgt(["info", str(tmp_path / "nope.h5")]).returncode == 2
