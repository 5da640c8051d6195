"""Checkpoint/restart under mpirun: signals, kill -9, other rank counts, refusals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import HALDANE, deck_text, haldane_table, kgrid_table, span, sweep_table, table
from helpers import TRANSPORT_KEYS, assert_same_results
from runner import qgt, rank_pids, start

from qgt_mpi.transport.stream import sweep_units

pytestmark = pytest.mark.subprocess  # every test runs the real command


def _deck(tmp_path: Path, n: int = 110, haldane: str = HALDANE, **axes: object) -> Path:
    """The Haldane model on an n×n grid in blocks of 10 k-points; ``axes`` replace sweep axes."""
    axes = {"temperature": [1.0, 10.0], "mu": span(-3.0, 3.0, 25),
            "delta": [0.05, [0.02, 0.07]], **axes}
    path = tmp_path / "deck.toml"
    path.write_text(deck_text(haldane, kgrid_table(n), sweep_table(**axes),
                              table("output", kresolved=True),
                              table("run", chunk=10, progress_percent=2)))
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
        out.update({k: f["kgrid"][k][()] for k in f["kgrid"]
                    if f["kgrid"][k].dtype.kind in "iuf"})  # label axes are not data
        out.update({"chern": f["geometry"]["chern"][()],
                    "metric": f["geometry"]["metric_integral"][()]})
    return out


def _interrupt(deck: Path, out: Path, np_: int, how: str) -> int:
    """Start a run, wait until its k-pass is under way, then signal it; returns its status."""
    proc = start(["run", str(deck), "-o", str(out), "--checkpoint-interval", "0"], np_)
    rng = np.random.default_rng()
    wanted = int(rng.integers(2, 12))  # a random point between ~2 % and ~20 % of the k-pass
    seen = 0
    for line in proc.stdout:
        seen += "k-pass" in line
        if seen >= wanted:  # at least one checkpoint written (interval 0: every round)
            break
    pids = rank_pids(str(out))
    assert len(pids) == np_, pids
    if how == "term":
        for pid in pids:  # SLURM's --signal delivers to every task
            os.kill(pid, signal.SIGTERM)
    else:
        time.sleep(rng.uniform(0, 0.3))
        os.kill(pids[rng.integers(np_)], signal.SIGKILL)
    proc.stdout.read()
    return proc.wait(timeout=120)


@pytest.mark.parametrize("how", ["term", "kill9"])
def test_interrupted_run_restarts_on_other_rank_count(tmp_path, how):
    """Interrupt under -n 3, restart under -n 2: same results as an uninterrupted run."""
    deck = _deck(tmp_path)
    ref = tmp_path / "ref.h5"
    assert qgt(["run", str(deck), "-o", str(ref)], np=2).returncode == 0
    out = tmp_path / "out.h5"
    status = _interrupt(deck, out, 3, how)
    ckpt = Path(str(out) + ".checkpoint.h5")
    assert ckpt.exists() and not out.exists()
    if how == "term":
        assert status == 3
    with h5py.File(ckpt, "r") as f:
        done = f["done"][()]
    assert 0 < done.sum() < done.size
    proc = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resuming from checkpoint" in proc.stdout
    assert not ckpt.exists()
    assert_same_results(_read(ref), _read(out))


def test_restart_refuses_changed_input(tmp_path):
    deck = _deck(tmp_path, n=40)
    out = tmp_path / "out.h5"
    status = _interrupt(_deck(tmp_path, n=110), out, 2, "term")
    assert status == 3
    changed = _deck(tmp_path, temperature=[2.0])
    proc = qgt(["run", str(changed), "-o", str(out)], np=2)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "cannot restart" in line and "sweep.temperature" in line and "\n" not in line
    proc = qgt(["run", str(changed), "-o", str(out), "--no-restart"], np=2)
    assert proc.returncode == 0 and out.exists()
    missing = qgt(["run", str(deck), "-o", str(tmp_path / "x.h5"), "--restart"], np=2)
    assert missing.returncode == 2 and "no checkpoint" in missing.stderr


def test_restart_names_changed_key_and_unreadable_checkpoint(tmp_path):
    """A refused restart names ``model.t2`` (not ``model.params``); a corrupt checkpoint is
    named and --no-restart suggested."""
    out = tmp_path / "out.h5"
    assert _interrupt(_deck(tmp_path, n=110), out, 2, "term") == 3
    changed = _deck(tmp_path, haldane=haldane_table(t2=0.31))
    proc = qgt(["run", str(changed), "-o", str(out)], np=2)
    assert proc.returncode == 2 and "(model.t2)" in proc.stderr, proc.stderr
    ckpt = Path(f"{out}.checkpoint.h5")
    ckpt.write_bytes(b"not hdf5")
    proc = qgt(["run", str(_deck(tmp_path, n=110)), "-o", str(out)], np=2)
    line = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in line, proc.stderr
    assert str(ckpt) in line and "--no-restart" in line


def test_signal_during_evaluation_keeps_the_kpass(tmp_path):
    """SIGTERM during the sweep evaluation: the k-pass was checkpointed when it
    ended, every rank stops with status 3, and the rerun skips the k-pass and gives the
    uninterrupted result."""
    deck = _deck(tmp_path, n=24, temperature=span(0.5, 20.0, 20),
                 mu=span(-3.0, 3.0, 300))  # an evaluation of ~3 s, the k-pass well under 1 s
    ref = tmp_path / "ref.h5"
    assert qgt(["run", str(deck), "-o", str(ref)], np=2).returncode == 0
    out = tmp_path / "out.h5"
    ckpt = Path(f"{out}.checkpoint.h5")
    proc = start(["run", str(deck), "-o", str(out), "--checkpoint-interval", "1e6"], 2)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:  # written when the k-pass ends
        time.sleep(0.05)
    time.sleep(0.3)
    for pid in rank_pids(str(out)):
        os.kill(pid, signal.SIGTERM)
    text = proc.stdout.read()
    assert proc.wait(timeout=120) == 3, text
    assert "during the sweep evaluation" in text and not out.exists()
    with h5py.File(ckpt, "r") as f:
        assert f["done"][()].all()
        kept = int(f["state/sweep_done"][()].sum())  # the finished units (data in .partial)
    n_units = len(sweep_units(300, 2, 20))  # 300 μ x 2 δ x 20 T, T grouped in pairs
    assert 0 < kept < n_units, kept
    partial = Path(f"{out}.partial")
    assert partial.exists()
    again = qgt(["run", str(deck), "-o", str(out)], np=3)  # resumes on another rank count
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming from checkpoint" in again.stdout and not ckpt.exists()
    assert f"{kept} of {n_units} units already in" in again.stdout and not partial.exists()
    assert_same_results(_read(ref), _read(out))
