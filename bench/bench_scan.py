"""A tMoTe₂ twist-angle scan: 30 separate ``qgt-mpi run`` jobs against one ``qgt_mpi.scan`` job.

The scan of issue 20 (item 4): the deck inputs/tmote2_chern.toml (Wang 2024 set, valley K,
3 shells = 74 bands, a fixed-filling sweep of the top band: 10 fillings × 2 temperatures)
on a 24 × 24 grid at ``--angles`` twist angles spread over 3.0°…4.8° (30 by default), on
``--ranks`` ranks (2). Two ways, each timed as the whole process (``mpirun`` included):

* ``runs``: one ``mpirun -n R python -m qgt_mpi run deck`` per angle, the deck with
  ``model.theta`` set (what a shell loop over decks does); prints the timing table of the
  first run (phases, from the result file);
* ``scan``: one ``mpirun -n R python bench/_scan_worker.py`` calling ``qgt_mpi.scan`` over
  ``model.theta`` (src/qgt_mpi/param_scan.py: the angles dealt to the ranks, one result file per
  angle as the runs write). The worker prints its per-rank compute seconds and the top two
  bands' Chern numbers at every angle.

Besides the wall time, the CPU seconds of all child processes (``getrusage``: the ranks,
mpirun) are stored: on the shared machine the wall time depends on the other jobs, the CPU
time much less. The source measured is this tree's (``PYTHONPATH=<repo>/src``) or
``--src DIR`` (e.g. another checkout's ``src``, to measure the code before a change; ``scan``
needs ``qgt_mpi.scan``).
The load average before and after each mode is printed and stored: the machine's 2 cores
are shared.

Usage::

    .venv/bin/python bench/bench_scan.py [runs] [scan] [--angles 30] [--ranks 2]
                                         [--src DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, case_record, format_table, mpi_env, read_timing, write_record

DECK = REPO / "inputs" / "tmote2_chern.toml"
GRID = 24
SRC = [REPO / "src"]  # the package measured (--src)


def angles(count: int) -> np.ndarray:
    """``count`` twist angles (degrees) evenly over 3.0°…4.8° (3.9° the centre)."""
    return np.round(np.linspace(3.0, 4.8, count), 4)


def deck_for(theta: float, out: Path) -> str:
    """The tMoTe₂ deck at ``theta`` on the 24 × 24 grid, writing ``out``, no band path."""
    text = DECK.read_text().split("[bands]")[0] + f'[output]\nfile = "{out}"\nkresolved = false\n'
    text = re.sub(r"(?m)^theta = .*$", f"theta = {theta!r}", text)
    return re.sub(r"(?m)^size = .*$", f"size = [{GRID}, {GRID}]", text)


def env() -> dict[str, str]:
    """mpirun environment with the measured package (``--src``) first on PYTHONPATH."""
    out = mpi_env()
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC[0]),
                                                      out.get("PYTHONPATH", "")]))
    return out


def run_separately(thetas: np.ndarray, ranks: int, tmp: Path) -> tuple[float, dict]:
    """Wall time of one ``mpirun ... qgt_mpi run`` per angle; the first run's phase table."""
    t0, first = time.perf_counter(), {}
    for i, theta in enumerate(thetas):
        out = tmp / f"run_{i:02d}.h5"
        deck = tmp / f"run_{i:02d}.toml"
        deck.write_text(deck_for(float(theta), out))
        cmd = ["mpirun", "-n", str(ranks), sys.executable, "-m", "qgt_mpi", "run", str(deck),
               "-o", str(out)]
        proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"run {i} failed:\n{proc.stderr[-2000:]}")
        if i == 0:
            first = {k: v.tolist() for k, v in read_timing(out).items()}
    return time.perf_counter() - t0, first


def run_scan(thetas: np.ndarray, ranks: int, tmp: Path) -> tuple[float, str]:
    """Wall time of one ``mpirun`` of bench/_scan_worker.py over all angles; its output."""
    cmd = ["mpirun", "-n", str(ranks), sys.executable, str(REPO / "bench" / "_scan_worker.py"),
           str(tmp), str(GRID), *(repr(float(t)) for t in thetas)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"scan failed:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


HEADER = ["mode", "wall [s]", "per angle [s]", "CPU all ranks [s]", "load 1-min before/after"]


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modes", nargs="*", default=["runs", "scan"], choices=["runs", "scan"])
    ap.add_argument("--angles", type=int, default=30)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--src", type=Path, default=REPO / "src")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    SRC[0] = a.src.resolve()
    thetas = angles(a.angles)
    cases, rows = [], []
    for mode in a.modes:
        load0, cpu0 = os.getloadavg(), _children_cpu()
        with tempfile.TemporaryDirectory() as tmp:
            if mode == "runs":
                wall, extra = run_separately(thetas, a.ranks, Path(tmp))
                detail = {"first_run_phases_s": extra}
            else:
                wall, text = run_scan(thetas, a.ranks, Path(tmp))
                print(text, flush=True)
                detail = {"worker_output": text}
        load1, cpu = os.getloadavg(), _children_cpu() - cpu0
        rows.append([mode, f"{wall:.1f}", f"{wall / len(thetas):.2f}", f"{cpu:.1f}",
                     f"{load0[0]:.2f} / {load1[0]:.2f}"])
        cases.append(case_record(mode, {"angles": len(thetas), "grid": GRID,
                                        "ranks": a.ranks, "src": str(SRC[0])}, [wall], None,
                                 cpu_s=cpu, load_before=load0, load_after=load1, **detail))
        print(format_table(HEADER, rows[-1:]), flush=True)
    print(format_table(HEADER, rows))
    write_record(a.json, "scan", None, {"deck": str(DECK.relative_to(REPO)), "grid": GRID,
                                        "thetas": thetas.tolist(), "ranks": a.ranks}, cases)


if __name__ == "__main__":
    main()
