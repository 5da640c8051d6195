"""Checkpoint/restart under mpirun (issue 4): signals, kill -9, other rank counts, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from runner import HALDANE_MODEL, REPO, _clean_env, qgt

from qgt_mpi.transport.stream import sweep_units

KEYS = ("sigma_xx", "sigma_xx_drude", "sigma_xx_geometric", "sigma_yy", "sigma_xy", "seebeck",
        "kappa_xx", "lorenz_ratio")

DECK = HALDANE_MODEL.replace("{", "{{").replace("}", "}}") + """
[kgrid]
size = [{n}, {n}]
[sweep]
temperature = [1.0, 10.0]
mu = {{start = -3.0, stop = 3.0, num = 25}}
delta = [0.05, [0.02, 0.07]]
[output]
kresolved = true
[run]
chunk = 10
progress_percent = 2
"""


def _deck(tmp_path: Path, n: int = 110, **changes: str) -> Path:
    text = DECK.format(n=n)
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / "deck.toml"
    path.write_text(text)
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {k: f["transport"][k][()] for k in KEYS}
        out.update({k: f["kgrid"][k][()] for k in f["kgrid"]
                    if f["kgrid"][k].dtype.kind in "iuf"})  # label axes are not data
        out.update({"chern": f["geometry"]["chern"][()],
                    "metric": f["geometry"]["metric_integral"][()]})
    return out


def _same(a: dict, b: dict) -> None:
    for key in a:
        base = a["sigma_xx"] if key.startswith("sigma_xx_") else a[key]
        scale = np.max(np.abs(base))
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-12 * scale,
                                   err_msg=key)


def _rank_pids(marker: str) -> list[int]:
    """PIDs of the python rank processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if cmd and b"python" in Path(cmd[0].decode()).name.encode() and any(
                marker.encode() in c for c in cmd):
            pids.append(int(entry.name))
    return sorted(pids)


def _interrupt(deck: Path, out: Path, np_: int, how: str) -> int:
    """Start a run, wait until its k-pass is under way, then signal it; returns its status."""
    cmd = ["mpirun", "--quiet", "-n", str(np_), sys.executable, "-m", "qgt_mpi", "run",
           str(deck), "-o", str(out), "--checkpoint-interval", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_clean_env(), cwd=REPO)
    rng = np.random.default_rng()
    wanted = int(rng.integers(2, 12))  # a random point between ~2 % and ~20 % of the k-pass
    seen = 0
    for line in proc.stdout:
        seen += "k-pass" in line
        if seen >= wanted:  # at least one checkpoint written (interval 0: every round)
            break
    pids = _rank_pids(str(out))
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
    _same(_read(ref), _read(out))


def test_restart_refuses_changed_input(tmp_path):
    deck = _deck(tmp_path, n=40)
    out = tmp_path / "out.h5"
    status = _interrupt(_deck(tmp_path, n=110), out, 2, "term")
    assert status == 3
    changed = _deck(tmp_path, n=110, **{"temperature = [1.0, 10.0]": "temperature = [2.0]"})
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
    named and --no-restart suggested (issue 10 §5)."""
    out = tmp_path / "out.h5"
    assert _interrupt(_deck(tmp_path, n=110), out, 2, "term") == 3
    changed = _deck(tmp_path, n=110, **{"t2 = 0.3": "t2 = 0.31"})
    proc = qgt(["run", str(changed), "-o", str(out)], np=2)
    assert proc.returncode == 2 and "(model.t2)" in proc.stderr, proc.stderr
    ckpt = Path(f"{out}.checkpoint.h5")
    ckpt.write_bytes(b"not hdf5")
    proc = qgt(["run", str(_deck(tmp_path, n=110)), "-o", str(out)], np=2)
    line = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in line, proc.stderr
    assert str(ckpt) in line and "--no-restart" in line


def test_signal_during_evaluation_keeps_the_kpass(tmp_path):
    """SIGTERM during the sweep evaluation (issue 10 §3): the k-pass was checkpointed when it
    ended, every rank stops with status 3, and the rerun skips the k-pass and gives the
    uninterrupted result."""
    deck = _deck(tmp_path, n=24, **{
        "temperature = [1.0, 10.0]": "temperature = {start = 0.5, stop = 20.0, num = 20}",
        "num = 25": "num = 300"})  # an evaluation of ~3 s, the k-pass well under 1 s
    ref = tmp_path / "ref.h5"
    assert qgt(["run", str(deck), "-o", str(ref)], np=2).returncode == 0
    out = tmp_path / "out.h5"
    ckpt = Path(f"{out}.checkpoint.h5")
    cmd = ["mpirun", "--quiet", "-n", "2", sys.executable, "-m", "qgt_mpi", "run", str(deck),
           "-o", str(out), "--checkpoint-interval", "1e6"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_clean_env(), cwd=REPO)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:  # written when the k-pass ends
        time.sleep(0.05)
    time.sleep(0.3)
    for pid in _rank_pids(str(out)):
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
    _same(_read(ref), _read(out))
