"""Collective failure in every phase: one rank fails, every rank stops.

A failure is injected on one rank through the test hook ``QGT_TEST_FAIL=phase:rank``
(qgt_mpi.parallel.errors.fail_point, the one place it is read) into each phase of a real run
under ``mpirun -n 3``. Every rank must exit with status 1 inside the timeout, stderr must hold
one line naming the failure and no traceback, and no result, partial, temporary or lock file
may be left. A hang shows up as ``subprocess.TimeoutExpired``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from decks import BM_MASSIVE, HALDANE, deck_text, kgrid_table, sweep_table, table
from runner import qgt

from qgt_mpi.parallel.errors import PHASES

pytestmark = pytest.mark.subprocess  # every test runs the real command

# Small but complete: k-resolved output, several blocks per rank (checkpoint after every
# round with --checkpoint-interval 0), and a [superfluid] section on a flattened model.
def _text(n: int = 8) -> str:
    """The deck on an n×n grid."""
    return deck_text(HALDANE, table("model.flatten", gap=0.5), kgrid_table(n),
                     sweep_table([0.5, 2.0], [-0.25, 0.0, 0.25], [0.02]),
                     table("superfluid", U=0.1, filling=0.5, temperature=[0.01, 0.1]),
                     table("output", kresolved=True), table("run", chunk=7),
                     title="injected failure")


DECK = _text()
TIMEOUT = 90.0  # seconds: startup of 3 ranks on a shared 2-core machine dominates


def _leftovers(out: Path) -> list[str]:
    """Files a failed run must not leave (a checkpoint is a valid restart point, allowed)."""
    names = [out.name + s for s in ("", ".partial", ".lock", ".checkpoint.h5.tmp")]
    return sorted(p.name for p in out.parent.iterdir() if p.name in names)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("rank", [1])
def test_failure_in_one_rank_stops_all(tmp_path, phase, rank):
    deck = tmp_path / "deck.toml"
    deck.write_text(DECK)
    out = tmp_path / "out.h5"
    t0 = time.monotonic()
    proc = qgt(["run", str(deck), "-o", str(out), "--checkpoint-interval", "0"], np=3,
               timeout=TIMEOUT, env={"QGT_TEST_FAIL": f"{phase}:{rank}"})
    took = time.monotonic() - t0
    assert proc.returncode == 1, (phase, proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("qgt-mpi: error: "), proc.stderr[-2000:]
    assert lines[0].endswith(f"injected failure in phase {phase!r} on rank {rank}"), lines
    assert "Traceback" not in proc.stdout
    assert _leftovers(out) == [], (phase, _leftovers(out))
    print(f"{phase}: all ranks exited with status 1 after {took:.1f} s")


def test_hook_is_inert_without_the_variable(tmp_path):
    """The same deck runs to completion without the hook (so the phases above are reached)."""
    deck = tmp_path / "deck.toml"
    deck.write_text(DECK)
    out = tmp_path / "out.h5"
    proc = qgt(["run", str(deck), "-o", str(out), "--checkpoint-interval", "0"], np=3,
               timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists() and _leftovers(out) == ["out.h5"]


def test_full_file_system_fails_together_without_partial_file(tmp_path):
    """A result that cannot be written (file-size limit of 100 KiB on every rank, as a full
    file system) stops all ranks with status 1 and one message; no .partial, no .lock."""
    import subprocess

    from runner import REPO, clean_env

    deck = tmp_path / "deck.toml"
    deck.write_text(_text(60))
    out = tmp_path / "out.h5"
    inner = f"ulimit -f 100; exec {sys.executable} -m qgt_mpi run {deck} -o {out}"
    proc = subprocess.run(["mpirun", "--quiet", "-n", "3", "bash", "-c", inner],
                          capture_output=True, text=True, timeout=TIMEOUT, env=clean_env(),
                          cwd=REPO)
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("qgt-mpi:")]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(ours) == 1 and "File too large" in ours[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert _leftovers(out) == [] and not list(tmp_path.glob("out.h5*"))


def test_setup_failure_with_a_pool_across_ranks(tmp_path):
    """A failure on one rank in set-up while the SLEPc solver's pool spans both ranks: the
    other rank must not be left inside the pool's collective creation of the solver."""
    deck = tmp_path / "deck.toml"
    deck.write_text(deck_text(BM_MASSIVE, table("solver", kind="slepc", nev=2, target=0.0),
                              kgrid_table(3), sweep_table(), title="pool set-up failure"))
    out = tmp_path / "out.h5"
    proc = qgt(["run", str(deck), "-o", str(out)], np=2, timeout=TIMEOUT,
               env={"QGT_TEST_FAIL": "setup:1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].endswith("injected failure in phase 'setup' on rank 1")
    assert _leftovers(out) == []
