"""The default block size of the k-pass (run/blocks.py): every pool busy, the imbalance
reported by dry-run and the run, the warning for a chunk that leaves pools idle, and a run
with the default chunk resuming on another rank count."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import h5py
import pytest
from decks import HALDANE, deck_text, kgrid_table, sweep_table, table
from helpers import TRANSPORT_KEYS, assert_same_results
from runner import qgt, rank_pids, start

from qgt_mpi.run.blocks import (
    DENSE_BLOCK_K,
    WINDOWED_BLOCK_K,
    default_chunk,
    idle_warning,
    imbalance,
    pool_loads,
)


@pytest.mark.parametrize("windowed", [False, True])
def test_default_chunk_keeps_every_pool_busy(windowed: bool) -> None:
    """For every grid and pool count: blocks no larger than the solver's cap, the fewest
    rounds, the busiest pool at the least load R rounds of equal blocks allow (so no
    pool idles that a smaller block could use), and no warning."""
    cap = WINDOWED_BLOCK_K if windowed else DENSE_BLOCK_K
    for nk in [1, 2, 3, 7, 16, 100, 144, 576, 4097, 12100, 160_000, 1_440_000]:
        for pools in [1, 2, 3, 4, 8, 16, 32, 256]:
            chunk = default_chunk(nk, pools, windowed)
            n_blocks = math.ceil(nk / chunk)
            rounds = math.ceil(n_blocks / pools)
            assert 1 <= chunk <= cap
            assert rounds == math.ceil(nk / (pools * cap)), (nk, pools, chunk)
            loads = pool_loads(nk, chunk, pools)
            assert sum(loads) == nk
            assert max(loads) <= rounds * math.ceil(nk / (pools * rounds)), (nk, pools, loads)
            if nk >= pools * pools * rounds:  # enough k-points: every pool has a block
                assert n_blocks >= pools and min(loads) > 0, (nk, pools)
            assert idle_warning(nk, chunk, pools, given=False) is None


def test_issue_case_two_pools_sixteen_k_points() -> None:
    """16 k-points of a windowed solver on 2 pools: the old default 4096 put them in one
    block (imbalance 2.00, one pool idle, warned about); the default makes 2 blocks of 8."""
    assert imbalance(16, 4096, 2) == 2.0
    warning = idle_warning(16, 4096, 2, given=True)
    assert warning is not None and "1 pool(s) idle" in warning and "chunk <= 8" in warning
    assert default_chunk(16, 2, windowed=True) == 8 and imbalance(16, 8, 2) == 1.0
    # dense 24 x 24 on 3 ranks: 3 blocks of 192 (was one block of 576: imbalance 3.00)
    assert default_chunk(576, 3, windowed=False) == 192 and imbalance(576, 4096, 3) == 3.0
    # 12 x 12 windowed on 2 pools: 4 blocks of 36 in 2 rounds (the cap keeps rounds short)
    assert default_chunk(144, 2, windowed=True) == 36 and imbalance(144, 36, 2) == 1.0


def test_default_chunk_dense_large_grid() -> None:
    """A 1200 x 1200 dense grid on 256 ranks: 2 rounds of blocks of 2813 (imbalance 1.0002);
    the old 4096 made 352 blocks, 96 ranks doing two and 160 one (imbalance 1.46)."""
    nk = 1200 * 1200
    chunk = default_chunk(nk, 256, windowed=False)
    assert chunk == math.ceil(nk / 512)
    assert imbalance(nk, chunk, 256) < 1.001 and imbalance(nk, 4096, 256) > 1.45


def _deck(tmp_path: Path, n: int, chunk: int | None = None, name: str = "deck") -> Path:
    """The Haldane model on an n x n grid, k-resolved output off; ``chunk`` None: default."""
    path = tmp_path / f"{name}.toml"
    run = table("run", progress_percent=2) if chunk is None else table(
        "run", chunk=chunk, progress_percent=2)
    path.write_text(deck_text(HALDANE, kgrid_table(n), sweep_table([5.0], [-1.0, 0.5], [0.05]),
                              table("output", kresolved=False), run))
    return path


@pytest.mark.subprocess
def test_dry_run_prints_plan_and_imbalance(tmp_path: Path) -> None:
    """dry-run: the default's blocks and imbalance 1.00 on 3 ranks; a deck chunk that
    leaves ranks idle is warned about with its imbalance."""
    proc = qgt(["dry-run", str(_deck(tmp_path, 24)), "--np", "3"])
    assert proc.returncode == 0, proc.stderr
    assert "576 k-points in 3 blocks of 192 (default) dealt to 3 rank(s)" in proc.stdout
    assert "k-pass imbalance 1.00" in proc.stdout and "pool(s) idle" not in proc.stdout
    proc = qgt(["dry-run", str(_deck(tmp_path, 24, chunk=4096, name="big")), "--np", "3"])
    assert proc.returncode == 0, proc.stderr
    assert "k-pass imbalance 3.00" in proc.stdout
    assert "[run] chunk = 4096 gives 1 block(s) of 576 k-points for 3 pool(s): 2 pool(s) " \
           "idle" in proc.stdout


@pytest.mark.subprocess
def test_run_warns_when_chunk_leaves_ranks_idle(tmp_path: Path) -> None:
    """A run on 2 ranks with one block: a warning in the log; the default: none, 2 blocks."""
    out = tmp_path / "a.h5"
    proc = qgt(["run", str(_deck(tmp_path, 12, chunk=4096)), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout + proc.stderr
    assert "1 pool(s) idle in the k-pass (imbalance 2.00)" in log
    proc = qgt(["run", str(_deck(tmp_path, 12, name="auto")), "-o", str(tmp_path / "b.h5")],
               np=2)
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout + proc.stderr
    assert "in 2 blocks of 72 dealt to 2 rank(s) (k-pass imbalance 1.00)" in log
    assert "pool(s) idle" not in log


def _read(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        out = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
        out.update({"chern": f["geometry"]["chern"][()],
                    "metric": f["geometry"]["metric_integral"][()]})
    return out


@pytest.mark.slow
@pytest.mark.subprocess
def test_default_chunk_resumes_on_other_rank_count(tmp_path: Path) -> None:
    """Stopped on 3 ranks (default chunk 3810), resumed on 2 (whose default would be 4000):
    the checkpoint's block size is adopted and the result equals an uninterrupted run."""
    deck = _deck(tmp_path, 400)
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    assert qgt(["run", str(deck), "-o", str(ref)], np=2).returncode == 0
    proc = start(["run", str(deck), "-o", str(out), "--checkpoint-interval", "0"], 3)
    seen = 0
    for line in proc.stdout:
        seen += "k-pass" in line and "%" in line
        if seen >= 2:
            break
    for pid in rank_pids(str(out)):
        os.kill(pid, signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=120) == 3
    with h5py.File(f"{out}.checkpoint.h5", "r") as f:
        done = f["done"][()]
        assert int(f["state"]["block_chunk"][()]) == 3810 and 0 < done.sum() < done.size
    again = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming from checkpoint" in again.stdout and "blocks of 3810" in again.stdout
    assert_same_results(_read(ref), _read(out))
