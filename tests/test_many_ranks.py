"""Many ranks on a small machine: the real command at 8, 16 and 32 ranks (oversubscribed)
equals the 1-rank run — dense decks with the default block size and with more ranks than
blocks, the parallel HDF5 writer with every rank writing k-resolved fields, SLEPc pools of 2,
4 and 8 ranks with H(k) distributed over each pool (32 ranks: pools of 8 ranks and of 1), a
checkpoint of 16 ranks resumed on 3, and one of 32 ranks resumed on 3 whose checkpoint is
resumed on 32.

Slow (each launch starts up to 16 interpreters on the machine's cores): ``make test`` runs
them in ``pytest-serial-subprocess``; ``make check`` does not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import HALDANE, deck_text, kgrid_table, span, sweep_table, table
from helpers import TRANSPORT_KEYS, assert_same_results
from runner import REPO, clean_env, qgt, rank_pids

pytestmark = [pytest.mark.subprocess, pytest.mark.slow, pytest.mark.many_ranks]


def _read(path: Path, kgrid: bool = True) -> dict[str, np.ndarray]:
    """Transport, geometry and (``kgrid``) the k-resolved fields of a complete result."""
    with h5py.File(path, "r") as f:
        assert bool(f.attrs["complete"])
        out = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
        out.update({"chern": f["geometry"]["chern"][()],
                    "metric": f["geometry"]["metric_integral"][()]})
        if kgrid:
            out.update({f"k/{k}": f["kgrid"][k][()] for k in f["kgrid"]
                        if f["kgrid"][k].dtype.kind in "iuf"})
    return out


def _run(deck: Path, out: Path, np_: int, *extra: str) -> None:
    proc = qgt(["run", str(deck), "-o", str(out), *extra], np=np_, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _haldane(tmp_path: Path, name: str, chunk: int | None) -> Path:
    path = tmp_path / f"{name}.toml"
    run = table("run") if chunk is None else table("run", chunk=chunk)
    path.write_text(deck_text(HALDANE, kgrid_table(30), sweep_table(
        [1.0, 10.0], span(-3.0, 3.0, 7), [0.05]), table("output", kresolved=True), run))
    return path


def test_dense_8_and_16_ranks_equal_one(tmp_path: Path) -> None:
    """30 x 30 Haldane with k-resolved output: 8 ranks (default blocks of 113), 16 ranks
    (default, 57) and 16 ranks with 9 blocks of 100 (7 ranks idle in the k-pass, warned
    about) all equal the 1-rank run to 1e-12, k-resolved fields included."""
    auto, coarse = _haldane(tmp_path, "auto", None), _haldane(tmp_path, "coarse", 100)
    ref = tmp_path / "ref.h5"
    _run(auto, ref, 0)
    expected = _read(ref)
    for np_, deck in ((8, auto), (16, auto), (16, coarse)):
        out = tmp_path / f"{deck.stem}-{np_}.h5"
        _run(deck, out, np_)
        assert_same_results(expected, _read(out))


SUPERCELL = (REPO / "inputs" / "supercell_window.toml").read_text()


def _pools_equal_one(tmp_path: Path, np_: int, layouts: tuple[int, ...]) -> None:
    """The SLEPc supercell deck (4 x 4 k) on ``np_`` ranks in each number of pools of
    ``layouts`` equals the 1-rank run to 1e-10 (relative to each field's largest value)."""
    deck = tmp_path / "window.toml"
    deck.write_text(SUPERCELL.replace("size = [8, 8]", "size = [4, 4]")
                    .replace("chunk = 8", "progress_percent = 50"))
    ref = tmp_path / "ref.h5"
    _run(deck, ref, 0)
    expected = _read(ref, kgrid=False)
    for pools in layouts:
        out = tmp_path / f"pools{pools}.h5"
        _run(deck, out, np_, "--pools", str(pools))
        got = _read(out, kgrid=False)
        for key, value in expected.items():
            scale = max(float(np.max(np.abs(value))), 1e-300)
            np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-10 * scale,
                                       err_msg=f"{key}, {pools} pools of {np_} ranks")


def test_slepc_pools_on_8_ranks_equal_one(tmp_path: Path) -> None:
    """The SLEPc supercell deck (9-band window, 4 x 4 k) on 8 ranks in 2, 4 and 8 pools
    (H(k) distributed over 4, 2 and 1 rank(s) of a pool) equals 1 rank to 1e-10."""
    _pools_equal_one(tmp_path, 8, (2, 4, 8))


def _stop_after_first_round(deck: Path, out: Path, np_: int) -> int:
    """Run ``deck`` on ``np_`` ranks with a slow k-pass (a test hook sleeps 1.5 s per
    block), SIGTERM every rank once a progress line says a round is done; returns the
    checkpoint's number of done blocks (asserted to be neither none nor all)."""
    env = {**clean_env(), "QGT_TEST_BLOCK_SLEEP": "1.5"}
    cmd = ["mpirun", "--quiet", "-n", str(np_), "-x", "QGT_TEST_BLOCK_SLEEP", sys.executable,
           "-m", "qgt_mpi", "run", str(deck), "-o", str(out), "--checkpoint-interval", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "k-pass" in line and "%" in line:  # the first round is done
            break
    for pid in rank_pids(str(out)):
        os.kill(pid, signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=300) == 3, rest[-3000:]
    with h5py.File(f"{out}.checkpoint.h5", "r") as f:
        done = f["done"][()]
    assert 0 < done.sum() < done.size
    return int(done.sum())


def _resume(deck: Path, out: Path, np_: int) -> None:
    """Resume ``out`` from its checkpoint on ``np_`` ranks, to the end."""
    proc = qgt(["run", str(deck), "-o", str(out)], np=np_, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "resuming from checkpoint" in proc.stdout


def test_checkpoint_of_16_ranks_resumes_on_3(tmp_path: Path) -> None:
    """Stopped (SIGTERM to every rank) on 16 ranks after some rounds, resumed on 3: equal to
    the 1-rank run (1e-12), k-resolved fields included. A test hook slows each block."""
    deck = _haldane(tmp_path, "stop", 20)  # 45 blocks: 3 rounds on 16 ranks
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    _run(deck, ref, 0)
    _stop_after_first_round(deck, out, 16)
    _resume(deck, out, 3)
    assert_same_results(_read(ref), _read(out))


def test_dense_32_ranks_equal_one(tmp_path: Path) -> None:
    """30 x 30 Haldane, k-resolved output, on 32 ranks: default blocks (32 of 29) and 9
    blocks of 100 (23 ranks idle in the k-pass) equal the 1-rank run to 1e-12."""
    auto, coarse = _haldane(tmp_path, "auto", None), _haldane(tmp_path, "coarse", 100)
    ref = tmp_path / "ref.h5"
    _run(auto, ref, 0)
    expected = _read(ref)
    for deck in (auto, coarse):
        out = tmp_path / f"{deck.stem}-32.h5"
        _run(deck, out, 32)
        assert_same_results(expected, _read(out))


def test_slepc_pools_of_8_on_32_ranks_equal_one(tmp_path: Path) -> None:
    """The SLEPc supercell deck (4 x 4 k) on 32 ranks: 4 pools of 8 ranks (H(k) distributed
    over 8) and 32 pools of 1 (more pools than k-points) equal 1 rank to 1e-10."""
    _pools_equal_one(tmp_path, 32, (4, 32))


def test_checkpoint_32_to_3_to_32(tmp_path: Path) -> None:
    """Stopped on 32 ranks after a round, resumed on 3 and stopped again, resumed on 32: a
    checkpoint of 32 ranks read by 3 and one written by 3 read by 32; the result equals the
    uninterrupted 1-rank run to 1e-12, k-resolved fields included."""
    deck = _haldane(tmp_path, "stop", 10)  # 90 blocks: 3 rounds on 32 ranks, 30 on 3
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    _run(deck, ref, 0)
    first = _stop_after_first_round(deck, out, 32)
    assert _stop_after_first_round(deck, out, 3) > first  # resumed from 32, stopped again
    _resume(deck, out, 32)
    assert_same_results(_read(ref), _read(out))
