"""Rank 0 against the other ranks, and start-up, at 2 … 32 ranks of ``qgt-mpi run``.

One small dense deck (the paper deck ``inputs/haldane_flat.toml``: flattened Haldane
model, 121 T × 2 μ, k-resolved output, on a 48 × 48 grid) is run as a whole
``mpirun -n P python -m qgt_mpi run`` for each P. Printed, from the run's own timers
(``/timing/rank0_seconds`` and ``/timing/rank0_peak_memory`` of the result file, and the
``write`` row of the rank-0 table the run logs after its write):

* **rank 0 vs the others**: per phase (set-up, k-pass, reduction + evaluation, write) the
  wall time and the peak resident memory (VmHWM) at the phase's end of rank 0, and the
  maximum over the other ranks. Rank 0 does the extra work of reading the deck, estimating
  memory, writing checkpoints and the reduced data; this table shows whether any of it
  grows with P.
* **start-up**: per P the steps before the set-up — ``launch+exit`` (the ``mpirun`` wall
  time minus rank 0's timed lifetime: spawning P interpreters, MPI_Finalize, exit),
  ``interpreter`` (process start to ``main()``: Python, site, ``import qgt_mpi``),
  ``mpi_init`` (``import mpi4py.MPI``), ``imports`` (numpy, h5py, the run's modules),
  ``deck`` (read, parse, check; waits for rank 0) and ``setup`` (model, solver, memory
  estimate) — rank 0 and the slowest other rank; and once, serially, ``python -X
  importtime`` of mpi4py.MPI, numpy, h5py, petsc4py.PETSc and slepc4py.SLEPc (cumulative
  import time of each).

Why: issue 22 asks that rank 0 does not grow with the number of ranks and what start-up
costs a run; docs/performance.md "Rank 0 and start-up at 2-32 ranks" quotes these tables.
On a machine with fewer cores than ranks the runs are oversubscribed: times then measure
time sharing (and the load of other work, recorded), not the code; memory is not affected.

Suite presets (bench/run.py): ``quick`` = 2, 4, 8 ranks, 1 repetition; ``full`` = 2, 4, 8,
16, 32 ranks, 2 repetitions (the fastest is shown). Without ``--json`` the record goes to
``bench/results/<UTC date>-ranks.json``.

Usage::

    .venv/bin/python bench/bench_ranks.py [--np 2 4 8 16 32] [--grid 48] [--repeat 2]
                                          [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from _common import REPO, add_suite_options, case_record, format_table, mpi_env, write_record

PAPER_DECK = REPO / "inputs" / "haldane_flat.toml"
RESULTS = REPO / "bench" / "results"
SHOWN = ("setup", "k-pass", "reduce+evaluate", "write")
STARTUP = ("interpreter", "mpi_init", "imports", "deck", "setup")
IMPORTS = ("mpi4py.MPI", "numpy", "h5py", "petsc4py.PETSc", "slepc4py.SLEPc")
PRESETS = {"quick": ((2, 4, 8), 1), "full": ((2, 4, 8, 16, 32), 2)}


def write_deck(directory: Path, grid: int) -> Path:
    """The paper deck on a ``grid`` × ``grid`` k-grid, written into ``directory``. Local.

    Parameters
    ----------
    directory : Path
        Temporary directory.
    grid : int
        N of the N × N grid.

    Returns
    -------
    Path
        The deck.
    """
    text = PAPER_DECK.read_text().replace("size = [96, 96]", f"size = [{grid}, {grid}]")
    deck = directory / "ranks.toml"
    deck.write_text(text)
    return deck


def run_once(deck: Path, out: Path, nprocs: int) -> dict:
    """One ``mpirun -n nprocs python -m qgt_mpi run deck -o out``; its measurements. Local.

    Parameters
    ----------
    deck, out : Path
        Input deck and result file (replaced).
    nprocs : int
        MPI ranks.

    Returns
    -------
    dict
        ``wall`` (s, whole mpirun), ``load`` (1-min load average before), ``phases``
        (names), ``seconds`` and ``peak`` ((phase, (rank 0, max others, mean others)) of
        the result file, with the logged ``write`` row appended), ``lifetime`` (s, rank
        0's start-up steps, run and write: the mpirun wall time minus this is the launch
        of the ranks and their exit, MPI_Finalize included).
    """
    out.unlink(missing_ok=True)
    env = {**mpi_env(), "OMPI_MCA_mpi_yield_when_idle": "1"}
    cmd = ["mpirun", "--quiet", "-n", str(nprocs), sys.executable, "-m", "qgt_mpi", "run",
           str(deck), "-o", str(out)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    with h5py.File(out, "r") as f:
        names = [p.decode() for p in f["timing/phases"][()]]
        seconds, peak = f["timing/rank0_seconds"][()], f["timing/rank0_peak_memory"][()]
        run_wall = float(f.attrs["wall_time_s_before_write"])
    write = _logged_row(proc.stdout + proc.stderr, "write")
    names.append("write")
    seconds = np.vstack([seconds, write[:3]])
    peak = np.vstack([peak, write[3:]])
    before = [names.index(p) for p in ("interpreter", "mpi_init", "imports", "deck")]
    lifetime = float(seconds[before, 0].sum()) + run_wall + float(write[0])  # rank 0's
    return {"wall": wall, "load": load, "phases": names, "seconds": seconds, "peak": peak,
            "lifetime": lifetime}


def _logged_row(text: str, phase: str) -> np.ndarray:
    """The row ``phase`` of the rank-0 table a run logs (6 numbers; NaN for "-"). Local."""
    for line in text.splitlines():
        cells = line.split()
        if len(cells) == 7 and cells[0] == phase:
            return np.array([np.nan if c == "-" else float(c) for c in cells[1:]])
    raise RuntimeError(f"no {phase!r} row in the run's rank-0 table")


def import_times() -> dict[str, float]:
    """Cumulative import time (s) of each of :data:`IMPORTS` in a fresh serial interpreter,
    from ``python -X importtime`` (mpi4py.MPI includes MPI_Init of a singleton). Local.

    Returns
    -------
    dict
        module → seconds (in the order imported; later modules reuse what earlier ones
        loaded, e.g. numpy for h5py).
    """
    code = "; ".join(f"import {m}" for m in IMPORTS)
    env = {**mpi_env(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           f"import qgt_mpi; {code}"], env=env, capture_output=True,
                          text=True, check=True)
    out = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s*\d+\s*\|\s*(\d+)\s*\|\s?(\S.*)$", line)
        if m and m.group(2).strip() in IMPORTS and not m.group(2).startswith(" "):
            out[m.group(2).strip()] = int(m.group(1)) / 1e6
    return out


def _cell(value: float, digits: int) -> str:
    """A number, or "-" when it is NaN. Local."""
    return "-" if not np.isfinite(value) else f"{value:.{digits}f}"


def rank0_table(results: dict[int, dict]) -> str:
    """Per P and phase: rank 0's time and peak memory against the max over the others.
    Local."""
    header = ["ranks", "load"] + [f"{p} r0/max [s]" for p in SHOWN] + \
        [f"{p} r0/max [MiB]" for p in SHOWN]
    rows = []
    for p, r in sorted(results.items()):
        idx = [r["phases"].index(name) for name in SHOWN]
        rows.append([str(p), f"{r['load']:.1f}"]
                    + [f"{_cell(r['seconds'][i, 0], 2)}/{_cell(r['seconds'][i, 1], 2)}"
                       for i in idx]
                    + [f"{_cell(r['peak'][i, 0], 1)}/{_cell(r['peak'][i, 1], 1)}"
                       for i in idx])
    return format_table(header, rows)


def startup_table(results: dict[int, dict]) -> str:
    """Per P: mpirun wall, launch, and each start-up step (rank 0 / slowest other). Local."""
    header = ["ranks", "mpirun wall [s]", "launch+exit [s]"] + [f"{s} r0/max [s]" for s in STARTUP]
    rows = []
    for p, r in sorted(results.items()):
        idx = [r["phases"].index(name) for name in STARTUP]
        rows.append([str(p), f"{r['wall']:.1f}", f"{max(r['wall'] - r['lifetime'], 0.0):.1f}"]
                    + [f"{_cell(r['seconds'][i, 0], 2)}/{_cell(r['seconds'][i, 1], 2)}"
                       for i in idx])
    return format_table(header, rows)


def main() -> None:
    """Run the rank counts, print both tables and the import times, write the JSON. Local
    (each run is its own mpirun)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--np", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    parser.add_argument("--grid", type=int, default=48, help="N of the N x N k-grid")
    parser.add_argument("--repeat", type=int, default=2, help="runs per rank count")
    add_suite_options(parser)
    args = parser.parse_args()
    if args.suite:
        args.np, args.repeat = PRESETS[args.suite]
    print(f"machine: {os.cpu_count()} logical cores; ranks beyond that are oversubscribed; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    imports = import_times()
    print("serial import times [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in imports.items()),
          flush=True)
    results: dict[int, dict] = {}
    cases = []
    with tempfile.TemporaryDirectory(prefix="qgt-bench-ranks-") as tmp:
        deck = write_deck(Path(tmp), args.grid)
        for p in args.np:
            runs = [run_once(deck, Path(tmp) / f"ranks{p}.h5", p) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["wall"])
            results[p] = best
            walls = ", ".join(f"{r['wall']:.1f}" for r in runs)
            print(f"{p} ranks: wall {walls} s", flush=True)
            cases.append(case_record(
                f"{p} ranks", {"ranks": p, "grid": args.grid, "deck": str(PAPER_DECK)},
                [r["wall"] for r in runs], float(np.nanmax(best["peak"])),
                phases=best["phases"], rank0_seconds=best["seconds"],
                rank0_peak_mib=best["peak"], load_before=best["load"],
                launch_s=max(best["wall"] - best["lifetime"], 0.0)))
    print("\nrank 0 / max over the other ranks, per phase (time; peak memory at its end)")
    print(rank0_table(results))
    print("\nstart-up per run (rank 0 / max over the other ranks)")
    print(startup_table(results), flush=True)
    path = args.json or RESULTS / f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-ranks.json"
    write_record(path, "ranks", args.suite, {"grid": args.grid, "ranks": args.np,
                                             "repeat": args.repeat, "cores": os.cpu_count()},
                 cases, import_seconds=imports)
    print(f"\nrecord: {path}")


if __name__ == "__main__":
    main()
