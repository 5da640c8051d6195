"""The job templates in jobs/: syntax, their launch line under mpirun, the restart logic.

Serial tests (not marked ``mpi``); no SLURM needed. Each template marks its one launch line
with ``# qgt-launch``; the test runs that line with ``srun`` replaced by
``mpirun --quiet -n 2`` and ``python`` by this interpreter, on a tiny deck, and checks a
complete result file. The SLURM templates' dry mode (``QGT_JOB_DRYRUN=1``: srun is
mpirun, sbatch and scontrol only echo) runs the whole script, including the stop signal,
the checkpoint and the bounded resubmission.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from decks import deck_text, kgrid_table, sweep_table, table
from runner import REPO, clean_env

JOBS = REPO / "jobs"
TEMPLATES = sorted(p for p in JOBS.iterdir() if p.suffix in (".sbatch", ".sh"))
SBATCH = [p for p in TEMPLATES if p.suffix == ".sbatch"]
MARK = "# qgt-launch"


def _ids(paths: list[Path]) -> list[str]:
    """Test ids: the template file names."""
    return [p.name for p in paths]


def _deck(directory: Path, n: int = 24, chunk: int = 64, name: str = "tiny") -> Path:
    """Write a small input deck; returns its path."""
    path = directory / f"{name}.toml"
    path.write_text(deck_text(table("model", kind="haldane", t1=1.0, t2=0.3, mass=0.2),
                              kgrid_table(n), sweep_table([5.0], [-1.0, 0.0], [0.05]),
                              table("run", chunk=chunk)))
    return path


def _complete(path: Path) -> bool:
    """Whether ``path`` is a finished qgt_mpi result file."""
    with h5py.File(path, "r") as f:
        return bool(f.attrs["complete"])


def launch_line(template: Path) -> str:
    """The template's single ``# qgt-launch`` line, without the comment and a trailing &."""
    lines = [ln for ln in template.read_text().splitlines() if ln.rstrip().endswith(MARK)]
    assert len(lines) == 1, f"{template.name}: expected one line ending in {MARK!r}"
    return lines[0].rstrip().removesuffix(MARK).rstrip().removesuffix("&").strip()


def local_command(line: str) -> str:
    """A launch line made runnable here: mpirun on 2 ranks, this interpreter."""
    line = re.sub(r"^srun( --mpi=\S+)?", "mpirun --quiet -n 2", line)
    line = re.sub(r"^(mpirun --quiet -n) \"?\$NP\"?", r"\1 2", line)
    return re.sub(r"(?<=\s)(python|\"\$PYTHON\")(?=\s)", sys.executable, line)


def test_every_template_is_found() -> None:
    """The four templates exist; each has one launch line under mpi4py's -m runner."""
    names = set(_ids(TEMPLATES))
    assert {"single_node.sbatch", "multi_node_pools.sbatch", "sweep_array.sbatch",
            "local_run.sh"} <= names
    for template in TEMPLATES:
        assert "-m mpi4py -m qgt_mpi run" in launch_line(template)


@pytest.mark.subprocess
@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_bash_syntax(template: Path) -> None:
    """``bash -n`` accepts every template."""
    proc = subprocess.run(["bash", "-n", str(template)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("template", SBATCH, ids=_ids(SBATCH))
def test_sbatch_conventions(template: Path) -> None:
    """Placeholders, one thread per rank, the early signal and the srun launch."""
    text = template.read_text()
    for needle in ("--account=ACCOUNT", "--partition=PARTITION", "--time=", "EDIT",
                   "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1",
                   "#SBATCH --signal=B:USR1@120", "trap ", "QGT_RESUBMIT", "MAX_RESUBMITS"):
        assert needle in text, f"{template.name}: missing {needle!r}"
    assert launch_line(template).startswith(
        'srun --mpi="$SRUN_MPI" python -m mpi4py -m qgt_mpi run "$DECK"')
    assert "SRUN_MPI=${SRUN_MPI:-pmix}" in text  # stock SLURM's MpiDefault is none


@pytest.mark.subprocess
@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_launch_line_runs(template: Path, tmp_path: Path) -> None:
    """The launch line, under mpirun on 2 ranks, writes a complete result file."""
    deck, out = _deck(tmp_path), tmp_path / "out" / "tiny.h5"
    out.parent.mkdir()
    variables = {"DECK": deck, "OUTPUT": out, "CHECKPOINT_INTERVAL": 300, "POOLS": 2, "NP": 2,
                 "PYTHON": sys.executable}
    script = "".join(f"{k}='{v}'\n" for k, v in variables.items())
    script += 'set -- --checkpoint-interval 300\n' + local_command(launch_line(template))
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=300, env=clean_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _complete(out)


def _dry_env(**extra: str) -> dict[str, str]:
    """Environment of a dry-mode job script: venv first on PATH, SLURM faked."""
    env = clean_env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(QGT_JOB_DRYRUN="1", QGT_JOB_DRYRUN_NP="2", CHECKPOINT_INTERVAL="300", **extra)
    return env


def _job(template: Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    """Run a whole SLURM template in dry mode to the end."""
    return subprocess.run(["bash", str(template)], capture_output=True, text=True,
                          timeout=300, env=_dry_env(**extra), cwd=cwd)


@pytest.mark.subprocess
def test_sweep_array_picks_the_ith_deck(tmp_path: Path) -> None:
    """Array task i runs the i-th deck of the list file; one result per deck."""
    decks = [_deck(tmp_path, n=12 + 4 * i, name=f"deck{i}") for i in range(3)]
    listing = tmp_path / "decks.txt"
    listing.write_text("# the sweep\n" + "\n".join(str(d) for d in decks) + "\n\n")
    template = JOBS / "sweep_array.sbatch"
    for task in (2, 0):
        proc = _job(template, tmp_path, DECK_LIST=str(listing), OUTDIR=str(tmp_path / "res"),
                    SLURM_ARRAY_TASK_ID=str(task))
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "res").glob("*.h5")) == ["deck0.h5", "deck2.h5"]
    proc = _job(template, tmp_path, DECK_LIST=str(listing), SLURM_ARRAY_TASK_ID="3")
    assert proc.returncode == 2 and "only 3 deck(s)" in proc.stderr


def _stop_when_running(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Send the early-warning USR1 to the job script once the k-pass has started."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        line = proc.stdout.readline()
        if "k-pass" in line and "%" in line:
            proc.send_signal(signal.SIGUSR1)
            return
    pytest.fail(f"the k-pass never started (output {out})")


@pytest.mark.subprocess
def test_stop_checkpoint_resubmit_resume(tmp_path: Path) -> None:
    """USR1 → checkpoint, status 3, one (echoed) sbatch; the rerun resumes; bounded."""
    deck, out = _deck(tmp_path, n=1200, chunk=256), tmp_path / "big.h5"
    template = JOBS / "single_node.sbatch"
    env = _dry_env(DECK=str(deck), OUTPUT=str(out))
    proc = subprocess.Popen(["bash", str(template)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    _stop_when_running(proc, out)
    stdout = proc.communicate(timeout=300)[0]
    assert proc.returncode == 3, stdout[-3000:]
    assert f"DRYRUN: sbatch --export=ALL,QGT_RESUBMIT=1 {template}" in stdout
    assert Path(f"{out}.checkpoint.h5").exists() and not out.exists()
    again = _job(template, tmp_path, DECK=str(deck), OUTPUT=str(out), QGT_RESUBMIT="1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from checkpoint" in again.stdout + again.stderr and _complete(out)
    assert not Path(f"{out}.checkpoint.h5").exists()


@pytest.mark.subprocess
def test_resubmission_is_bounded(tmp_path: Path) -> None:
    """With QGT_RESUBMIT at MAX_RESUBMITS a stopped job does not resubmit (status 1)."""
    script = (f"source <(sed -n '/^resubmit()/,/^}}/p' {JOBS / 'single_node.sbatch'})\n"
              "sbatch() { echo SUBMITTED; }\n"
              "QGT_RESUBMIT=2 MAX_RESUBMITS=2 RESUBMIT_WITH=sbatch resubmit; echo rc=$?\n"
              "QGT_RESUBMIT=1 MAX_RESUBMITS=2 RESUBMIT_WITH=sbatch resubmit; echo rc=$?\n")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.stdout.split() == ["rc=1", "SUBMITTED", "rc=0"], proc.stdout + proc.stderr


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_case_arms_are_the_exit_statuses(template: Path) -> None:
    """The templates branch on qgt-mpi's exit statuses, defined once in qgt_mpi.status:
    EXIT_INTERRUPTED resubmits (SLURM) or names the checkpoint (local), EXIT_OK and EXIT_INPUT
    are reported, anything else is a failure."""
    from qgt_mpi import status

    text = template.read_text()
    arms = {int(m.group(1)): m.group(2) for m in
            re.finditer(r"^\s+(\d+)\) (.*?)(?:;;|$)", text, flags=re.M)}
    assert set(arms) == {status.EXIT_OK, status.EXIT_INPUT, status.EXIT_INTERRUPTED}, arms
    stopped = "resubmit" if template.suffix == ".sbatch" else "checkpoint"
    assert stopped in arms[status.EXIT_INTERRUPTED]
    assert "input error" in arms[status.EXIT_INPUT]
