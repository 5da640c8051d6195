"""Output paths that would destroy data are refused before anything runs.

Each refusal is exit status 2 with one stderr line naming the key and the path, and the
existing file (deck, device, FIFO, earlier result) is untouched. A second run with the same
output refuses at once while the first holds the lock; a stale lock file (holder killed with
-9: the kernel dropped its lock) does not block a rerun.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from decks import HALDANE, deck_text, kgrid_table, sweep_table, table
from runner import REPO, qgt

pytestmark = pytest.mark.subprocess  # every test runs the real command


def _text(n: int = 4, **output: object) -> str:
    """A one-point run on an n×n grid; ``output``: more [output] keys."""
    return deck_text(HALDANE, kgrid_table(n), sweep_table(delta=[0.05]),
                     table("output", **output, kresolved=False), title="output safety")


DECK = _text()


def _deck(tmp_path: Path) -> Path:
    deck = tmp_path / "deck.toml"
    deck.write_text(DECK)
    return deck


def _refused(proc, key: str = "-o") -> str:
    """Assert a one-line input error naming ``key``; return the line."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith(f"qgt-mpi: input error: {key} = "), lines
    return lines[0]


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_output_equal_to_deck_is_refused(tmp_path, how):
    deck = _deck(tmp_path)
    target = {"same": deck, "symlink": tmp_path / "link.h5", "hardlink": tmp_path / "hard.h5"}
    if how == "symlink":
        target[how].symlink_to(deck)
    elif how == "hardlink":
        os.link(deck, target[how])
    line = _refused(qgt(["run", str(deck), "-o", str(target[how]), "--overwrite"], np=2))
    assert "input deck" in line
    assert deck.read_text() == DECK


def test_non_regular_outputs_are_refused(tmp_path):
    deck = _deck(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for out, word in ((fifo, "not a regular file"), ("/dev/null", "not a regular file"),
                      (tmp_path, "directory")):
        line = _refused(qgt(["run", str(deck), "-o", str(out), "--overwrite"]))
        assert word in line, line
    assert fifo.is_fifo() and Path("/dev/null").is_char_device()
    partial_dir = tmp_path / "r.h5.partial"
    partial_dir.mkdir()
    assert "directory" in _refused(qgt(["run", str(deck), "-o", str(tmp_path / "r.h5")]))


def test_existing_result_is_kept_unless_overwrite(tmp_path):
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    out.write_bytes(b"precious")
    assert "--overwrite" in _refused(qgt(["run", str(deck), "-o", str(out)], np=2))
    assert out.read_bytes() == b"precious"
    proc = qgt(["run", str(deck), "-o", str(out), "--overwrite"], np=2)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"]
    assert not Path(f"{out}.lock").exists()


def test_deck_output_key_is_named(tmp_path):
    deck = tmp_path / "deck.toml"
    deck.write_text(_text(file=str(tmp_path)))
    _refused(qgt(["run", str(deck)]), key="output.file")


def test_second_run_refuses_at_once_naming_the_first(tmp_path):
    """A lock held by another process (here: this test) makes the run refuse in seconds."""
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    with open(f"{out}.lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write("host testhost pid 4242 started 2026-01-01T00:00:00+00:00")
        holder.flush()
        t0 = time.monotonic()
        line = _refused(qgt(["run", str(deck), "-o", str(out)], np=2))
        assert time.monotonic() - t0 < 60
        assert "in use by another run" in line and "pid 4242" in line
    assert not out.exists()


def test_two_concurrent_runs_one_succeeds_one_refuses(tmp_path):
    """Real concurrency: two runs started together; exactly one writes the result."""
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    deck.write_text(_text(60))
    cmd = [sys.executable, "-m", "qgt_mpi", "run", str(deck), "-o", str(out)]
    procs = [subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    codes = sorted(p.wait(timeout=300) for p in procs)
    errors = [p.stderr.read() for p in procs]
    assert codes == [0, 2], errors
    assert any("in use by another run" in e or "exists" in e for e in errors), errors


def test_stale_lock_file_after_kill_does_not_block(tmp_path):
    """kill -9 leaves NAME.lock behind but no lock: the rerun proceeds and removes it."""
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    Path(f"{out}.lock").write_text("host gone pid 1 started long ago")
    proc = qgt(["run", str(deck), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and not Path(f"{out}.lock").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf"])
def test_checkpoint_interval_must_be_finite_and_non_negative(tmp_path, value):
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    line = _refused(qgt(["run", str(deck), "-o", str(out), f"--checkpoint-interval={value}"]),
                    key="--checkpoint-interval")
    assert "finite" in line and not out.exists()


def test_byte_order_mark_is_accepted(tmp_path):
    deck, out = tmp_path / "bom.toml", tmp_path / "bom.h5"
    deck.write_bytes(b"\xef\xbb\xbf" + DECK.encode())
    assert qgt(["validate", str(deck)]).returncode == 0
    proc = qgt(["run", str(deck), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr


def test_info_head_quiet_and_incomplete_warning(tmp_path):
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    assert qgt(["run", str(deck), "-o", str(out)]).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_"))}
    piped = subprocess.run(f"{sys.executable} -m qgt_mpi info {out} | head -n 1", shell=True,
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert piped.stdout.count("\n") == 1 and piped.stderr == "", piped.stderr
    with h5py.File(out, "a") as f:
        f.attrs["complete"] = False
    info = qgt(["info", str(out)])
    assert info.returncode == 0 and "warning" in info.stderr and "incomplete" in info.stderr
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["program"] = "other"
    bad = qgt(["info", str(foreign)])
    assert bad.returncode == 2 and "not a qgt_mpi result file" in bad.stderr


@pytest.mark.parametrize("helper", [".lock", ".partial"])
def test_planted_symlink_at_helper_name_is_refused(tmp_path, helper):
    """A symlink planted at OUT.lock or OUT.partial: the lock truncated its target."""
    deck, out = _deck(tmp_path), tmp_path / "out.h5"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    Path(f"{out}{helper}").symlink_to(victim)
    line = _refused(qgt(["run", str(deck), "-o", str(out)]))
    assert "symbolic link" in line, line
    assert victim.read_text() == "precious" and not out.exists()


def test_output_naming_an_input_file_is_refused_even_with_overwrite(tmp_path):
    """`run --overwrite -o` naming the run's own model file destroyed the input."""
    from qgt_mpi.models import haldane
    from qgt_mpi.models.modelfile import save_model

    model = tmp_path / "m.h5"
    save_model(haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1), str(model))
    before = model.read_bytes()
    deck = tmp_path / "deck.toml"
    deck.write_text(deck_text(table("model", kind="model_file", file="m.h5"), kgrid_table(4),
                              sweep_table(delta=[0.05])))
    for target in (model, tmp_path / "alias.h5"):
        if target != model:
            target.symlink_to(model)
        line = _refused(qgt(["run", str(deck), "-o", str(target), "--overwrite"]))
        assert "is an input of the run" in line, line
    line = _refused(qgt(["model", "save", str(deck), "-o", str(model), "--overwrite"]))
    assert "is an input of the run" in line, line
    assert model.read_bytes() == before


def test_save_model_and_result_save_keep_existing_files(tmp_path):
    """save_model and Result.save overwrote anything; now only with overwrite=True."""
    import numpy as np
    from mpi4py import MPI

    import qgt_mpi as q
    from qgt_mpi.io.checks import InputError
    from qgt_mpi.parallel import CollectiveError

    model = q.models.haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1)
    path = tmp_path / "x.h5"
    path.write_bytes(b"precious")
    with pytest.raises(InputError, match="overwrite=True"):
        q.save_model(model, str(path))
    assert path.read_bytes() == b"precious"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    Path(f"{path}.partial").symlink_to(victim)
    res = q.compute(model, (4, 4), [1.0], [0.0], [0.05], comm=MPI.COMM_SELF)
    with pytest.raises(CollectiveError, match="symbolic link"):
        res.save(str(path))
    Path(f"{path}.partial").unlink()
    with pytest.raises(CollectiveError, match="overwrite=True"):
        res.save(str(path))
    assert path.read_bytes() == b"precious" and victim.read_text() == "keep"
    res.save(str(path), overwrite=True)
    q.save_model(model, str(tmp_path / "m.h5"))
    q.save_model(model, str(tmp_path / "m.h5"), overwrite=True)
    assert np.array_equal(q.load(str(path)).chern, res.chern)
    assert not list(tmp_path.glob("*.tmp"))


def test_figures_never_write_through_a_planted_symlink(tmp_path):
    """plot's figures are written under a temporary name and renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qgt_mpi.plot.style import save

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "x.png").symlink_to(victim)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    paths = save(fig, str(figs), "x")
    assert victim.read_text() == "precious"
    assert not (figs / "x.png").is_symlink() and (figs / "x.png").stat().st_size > 0
    assert sorted(p.name for p in figs.iterdir()) == ["x.pdf", "x.png"] and len(paths) == 2
