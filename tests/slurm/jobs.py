"""Every template of jobs/ submitted to a real (private, one-node) SLURM.

Run by tests/slurm/run.sh, which starts the cluster and exports SLURM_CONF; usage:
``python tests/slurm/jobs.py WORKDIR``. Each template is copied and its EDIT lines edited
the way jobs/README.md tells a user (account, partition, 2 ranks per node, time), then
submitted with ``sbatch``; results are compared with a serial run of the same deck outside
SLURM (1e-12, tests/helpers.assert_same_results).

What is real and what is provoked (jobs/README.md, "Tested under SLURM"):

- single node, array sweep (3 decks, one task each), pools template on one node (POOLS=2):
  plain submissions, srun --mpi=pmix under MpiDefault=none;
- time-out, resubmission: the job has ``--time=1`` and ``--signal=B:USR1@59``, so slurmctld's
  own time-limit check (every 30 s) sends USR1 to the batch shell while the k-pass runs (a
  test hook, QGT_TEST_BLOCK_SLEEP, keeps a small grid in its k-pass for 40 s); the template
  forwards TERM to the step, the ranks checkpoint and exit 3, the script resubmits itself
  with sbatch. The test then raises the new job's limit (``scontrol update TimeLimit``) so
  it is not stopped a second time, and checks that it resumed and equals the reference;
- time-out, ``--requeue``: the same USR1 sent by ``scancel --batch --signal=USR1`` as soon as
  the k-pass runs (the early signal's path without waiting for the 30 s check); the script
  runs ``scontrol requeue`` and the requeued job (same id, SLURM_RESTART_COUNT=1) resumes;
- time-out without ``--signal`` (only with ``QGT_SLURM_PART=time-limit``: CTest
  ``slurm-time-limit``, label slurm_long, not in ``make test``): at the limit SLURM sends TERM
  to every process of the job and KILL ``KillWait`` (10 s) later; the ranks checkpoint in
  between (job state TIMEOUT), and a job submitted again by hand resumes and equals the
  reference.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

from decks import deck_text, kgrid_table, sweep_table, table  # noqa: E402
from helpers import TRANSPORT_KEYS, assert_same_results  # noqa: E402

WORK = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO / "build" / "slurm" / "work"
T0 = time.monotonic()


def log(msg: str) -> None:
    """One line of the test's own log, with seconds since the start."""
    print(f"[slurm {time.monotonic() - T0:5.1f} s] {msg}", flush=True)


def env(**extra: str) -> dict[str, str]:
    """The submitting shell's environment: this interpreter's bin first on PATH (sbatch
    exports it to the job, so ``python`` in the templates is this one)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_"))}
    e["PATH"] = f"{Path(sys.executable).parent}:{e.get('PATH', '')}"
    e.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return e


def deck(name: str, n: int, chunk: int, mu: tuple[float, ...] = (-1.0, 0.0)) -> Path:
    """A small Haldane deck WORK/NAME.toml (k-resolved output off)."""
    path = WORK / f"{name}.toml"
    path.write_text(deck_text(table("model", kind="haldane", t1=1.0, t2=0.3, mass=0.2),
                              kgrid_table(n), sweep_table([5.0], list(mu), [0.05]),
                              table("output", kresolved=False), table("run", chunk=chunk)))
    return path


def edited(template: str, name: str, **changes: str) -> Path:
    """A copy of jobs/TEMPLATE with its EDIT lines set for this cluster (2 cores, partition
    debug); ``changes`` maps an #SBATCH option to its new value ('' removes nothing, an
    option not in the file is added)."""
    text = (REPO / "jobs" / template).read_text()
    opts = {"account": "qgt", "partition": "debug", "ntasks-per-node": "2", "time": "3",
            "job-name": name, **changes}
    for key, value in opts.items():
        line = f"#SBATCH --{key}={value}" if value else f"#SBATCH --{key}"
        text, n = re.subn(rf"^#SBATCH --{key}(=\S*)?", line, text, flags=re.M)
        if not n:
            text = text.replace("#SBATCH --cpus-per-task=1", f"#SBATCH --cpus-per-task=1\n{line}")
    path = WORK / f"{name}.sbatch"
    path.write_text(text)
    return path


def sbatch(script: Path, *args: str, **extra: str) -> int:
    """Submit; returns the job id."""
    proc = subprocess.run(["sbatch", "--parsable", *args, str(script)], capture_output=True,
                          text=True, env=env(**extra), cwd=WORK, check=False)
    assert proc.returncode == 0, f"sbatch {script.name}: {proc.stderr}"
    return int(proc.stdout.strip().split(";")[0])


def job(jid: int | str) -> dict[str, str]:
    """``scontrol show job`` as a dict (JobState, ExitCode, Restarts, ...)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", str(jid)], capture_output=True,
                         text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out.splitlines()[0]))


def wait(jid: int | str, states: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED",
                                                     "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"),
         timeout: float = 120, restarts: int = 0) -> dict[str, str]:
    """Wait until the job is in one of ``states`` (with at least ``restarts`` restarts)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        info = job(jid)
        if info["JobState"] in states and int(info.get("Restarts", 0)) >= restarts:
            return info
        time.sleep(0.3)
    raise AssertionError(f"job {jid} still {job(jid)['JobState']} after {timeout} s")


def joblog(pattern: str) -> str:
    """The text of the job logs in WORK matching ``pattern``."""
    return "".join(p.read_text() for p in sorted(WORK.glob(pattern)))


def wait_for(path_glob: str, needle: str, timeout: float = 60) -> None:
    """Wait until a job log matching ``path_glob`` contains ``needle``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if needle in joblog(path_glob):
            return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared in {path_glob}")


def read(path: Path) -> dict:
    """The transport and geometry arrays of a result file (test_restart's selection)."""
    with h5py.File(path, "r") as f:
        assert bool(f.attrs["complete"]), f"{path} is not complete"
        out = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
        out.update({"chern": f["geometry"]["chern"][()],
                    "metric": f["geometry"]["metric_integral"][()]})
    return out


def reference(path: Path) -> Path:
    """A serial run of deck ``path`` outside SLURM (no test hooks); returns its output."""
    out = WORK / "ref" / f"{path.stem}.h5"
    proc = subprocess.run([sys.executable, "-m", "qgt_mpi", "run", str(path), "-o", str(out),
                           "--overwrite"], capture_output=True, text=True,
                          env={k: v for k, v in env().items() if not k.startswith("QGT_TEST")},
                          cwd=WORK, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def same(ref: Path, out: Path, what: str) -> None:
    """``out`` equals the reference to 1e-12; logged."""
    assert_same_results(read(ref), read(out))
    log(f"{what}: {out.name} equals the serial run (1e-12)")


def check(info: dict[str, str], state: str, code: str, what: str) -> None:
    """The job ended in ``state`` with ``ExitCode`` ``code``."""
    assert (info["JobState"], info["ExitCode"]) == (state, code), f"{what}: {info}"


def pmix_probe() -> None:
    """The reason for ``srun --mpi=pmix`` in the templates: under SLURM's default
    ``MpiDefault=none`` a plain srun of mpi4py fails in MPI_Init; with PMIx it works."""
    code = "from mpi4py import MPI; print('size', MPI.COMM_WORLD.Get_size())"
    plain = subprocess.run(["srun", "-n", "2", "python", "-c", code], capture_output=True,
                           text=True, env=env(), cwd=WORK, timeout=120, check=False)
    pmix = subprocess.run(["srun", "--mpi=pmix", "-n", "2", "python", "-c", code],
                          capture_output=True, text=True, env=env(), cwd=WORK, timeout=120,
                          check=False)
    assert pmix.returncode == 0 and pmix.stdout.split().count("2") == 2, pmix.stderr
    if os.environ.get("QGT_SLURM_MPIDEFAULT", "none") == "none":
        assert plain.returncode != 0, plain.stdout
    why = "PMI support" if "PMI support" in plain.stderr else f"status {plain.returncode}"
    log(f"srun without --mpi: fails ({why}); srun --mpi=pmix: 2 ranks")


def time_limit_without_signal() -> None:
    """CTest ``slurm-time-limit`` (label slurm_long, not in ``make test``: about 90 s of
    waiting for a 1-minute limit): the limit itself without ``--signal``."""
    WORK.mkdir(parents=True, exist_ok=True)
    slow = deck("slow", 40, 20)
    refs = {"slow": reference(slow)}
    # The limit itself without --signal: TERM to every process at the limit, KILL KillWait
    # (10 s) later; the ranks must checkpoint in between. Resubmitted by hand (MAX_RESUBMITS=0:
    # the script's own resubmission races the KILL).
    script = edited("single_node.sbatch", "nosignal", time="1")
    script.write_text(re.sub(r"^#SBATCH --signal=.*\n", "", script.read_text(), flags=re.M))
    jid = sbatch(script, DECK=str(slow), OUTPUT="out/nosignal.h5", CHECKPOINT_INTERVAL="600",
                 MAX_RESUBMITS="0", QGT_TEST_BLOCK_SLEEP="2.5")  # a k-pass of 100 s
    info = wait(jid, timeout=240)
    text = joblog(f"qgt_mpi-nosignal-{jid}.log")
    assert info["JobState"] == "TIMEOUT" and "interrupted by SIGTERM" in text, (info, text)
    with h5py.File(WORK / "out/nosignal.h5.checkpoint.h5", "r") as f:
        done = f["done"][()]
    assert 0 < done.sum() < done.size, done
    log(f"no --signal: job {jid} TERMed at the limit after {info.get('RunTime')}, "
        f"checkpointed {int(done.sum())} of {done.size} blocks before KILL")
    jid = sbatch(edited("single_node.sbatch", "nosignal"), DECK=str(slow),
                 OUTPUT="out/nosignal.h5")
    check(wait(jid), "COMPLETED", "0:0", "resubmitted no-signal job")
    assert "resuming from checkpoint" in joblog(f"qgt_mpi-nosignal-{jid}.log")
    same(refs["slow"], WORK / "out/nosignal.h5", f"no --signal: job {jid} resumed")



def main() -> None:
    """Submit every template; raise on the first failure."""
    WORK.mkdir(parents=True, exist_ok=True)
    tiny = deck("tiny", 60, 400)

    # Time-out first: its job sleeps in the k-pass, so the references run meanwhile.
    slow = deck("slow", 40, 20)   # 80 blocks: 40 rounds on 2 ranks, 1 s each with the hook
    script = edited("single_node.sbatch", "timeout", time="1", signal="B:USR1@59")
    first = sbatch(script, DECK=str(slow), OUTPUT="out/slow.h5", CHECKPOINT_INTERVAL="600",
                   QGT_TEST_BLOCK_SLEEP="1.0")
    log(f"time-out: job {first} submitted (--time=1, --signal=B:USR1@59)")
    refs = {p.stem: reference(p) for p in (tiny, slow)}
    sweep = [deck(f"sweep{i}", 30 + 10 * i, 300, mu=(-1.0 - 0.2 * i, -0.5)) for i in range(3)]
    refs.update({p.stem: reference(p) for p in sweep})
    log("serial references written")
    info = wait(first)
    check(info, "FAILED", "3:0", "time-out job")   # exit status 3: checkpoint written
    text = joblog(f"qgt_mpi-timeout-{first}.log")
    assert "stop signal received" in text and "resubmission 1 of at most" in text, text
    assert Path(WORK / "out/slow.h5.checkpoint.h5").exists()
    log(f"time-out: job {first} got USR1 from the time limit after "
        f"{info.get('RunTime')}, checkpointed, exit 3, resubmitted itself")
    again = int(subprocess.run(["squeue", "-h", "-n", "timeout", "-o", "%i"], capture_output=True,
                               text=True, check=True).stdout.split()[0])
    subprocess.run(["scontrol", "update", f"JobId={again}", "TimeLimit=5"], check=True)
    info = wait(again)
    check(info, "COMPLETED", "0:0", "resubmitted job")
    text = joblog(f"qgt_mpi-timeout-{again}.log")
    assert "resuming from checkpoint" in text, text
    assert not Path(WORK / "out/slow.h5.checkpoint.h5").exists()
    same(refs["slow"], WORK / "out/slow.h5", f"time-out: job {again} (QGT_RESUBMIT=1) resumed")

    # Requeue variant: the same signal sent at once, scontrol requeue, the same job id again.
    script = edited("single_node.sbatch", "requeue", requeue="")
    jid = sbatch(script, DECK=str(slow), OUTPUT="out/requeue.h5", RESUBMIT_WITH="requeue",
                 QGT_TEST_BLOCK_SLEEP="0.25")
    wait_for(f"qgt_mpi-requeue-{jid}.log", "k-pass")
    subprocess.run(["scancel", "--batch", "--signal=USR1", str(jid)], check=True)
    info = wait(jid, states=("COMPLETED", "FAILED", "CANCELLED"), restarts=1)
    text = joblog(f"qgt_mpi-requeue-{jid}.log")
    check(info, "COMPLETED", "0:0", f"requeued job {text[-3000:]}")
    assert "resubmission 1 of at most" in text and "resuming from checkpoint" in text, text
    same(refs["slow"], WORK / "out/requeue.h5", f"requeue: job {jid} (Restarts=1) resumed")

    # Single node.
    jid = sbatch(edited("single_node.sbatch", "single"), DECK=str(tiny), OUTPUT="out/tiny.h5")
    check(wait(jid), "COMPLETED", "0:0", "single_node")
    same(refs["tiny"], WORK / "out/tiny.h5", f"single_node: job {jid}")

    # Pools on one node: 2 pools of 1 rank.
    jid = sbatch(edited("multi_node_pools.sbatch", "pools", nodes="1"), DECK=str(tiny),
                 OUTPUT="out/pools.h5", POOLS="2")
    check(wait(jid), "COMPLETED", "0:0", "multi_node_pools")
    same(refs["tiny"], WORK / "out/pools.h5", f"multi_node_pools: job {jid}, 2 pools")

    # Array sweep over a list of 3 decks.
    (WORK / "decks.txt").write_text("# sweep\n" + "\n".join(str(p) for p in sweep) + "\n")
    jid = sbatch(edited("sweep_array.sbatch", "sweep", array="0-2"),
                 DECK_LIST=str(WORK / "decks.txt"), OUTDIR=str(WORK / "out/sweep"))
    for task in range(3):
        check(wait(f"{jid}_{task}"), "COMPLETED", "0:0", f"sweep_array task {task}")
        same(refs[f"sweep{task}"], WORK / f"out/sweep/sweep{task}.h5",
             f"sweep_array: task {jid}_{task}")
    pmix_probe()
    log("every template ran under SLURM")


if __name__ == "__main__":
    if os.environ.get("QGT_SLURM_PART") == "time-limit":
        time_limit_without_signal()
    else:
        main()
