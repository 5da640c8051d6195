"""End-to-end benchmark of ``qgt-mpi run``: k-point rate, sweep size, wall time, memory.

For the flattened Haldane model of ``inputs/haldane_flat.toml`` and the dispersive Haldane
model (t1 = 1, t2 = 0.3, M = 0.2, φ = π/2 meV; the WannierBerri comparison model), on growing
k-grids and sweeps, each case is written as a temporary TOML deck and run as a whole
``mpirun -n N`` process, every rank wrapped in ``/usr/bin/time -f %M``. Printed per case:

* k-points/s/rank = N_k / (ranks × k-pass), k-pass = solve + geometry + deposit phases of
  ``/timing/seconds`` (mean over ranks);
* the sweep points evaluated and the time of the ``reduce+evaluate`` phase;
* the occupied energy cells (what the sweep cost scales with, see transport/lattice.py);
* the wall time of the whole ``mpirun`` process and the peak RSS of the largest rank.

Why: this is what a user of the CLI pays per run, start-up included; the k-point rate and the
evaluation time separate the two costs the sweep design is about (docs/performance.md §1).

Suite presets (bench/run.py): ``quick`` = the 100² grid, sweeps ``1T x 281mu`` and
``121T x 2mu``, 1 and 2 ranks, 2 repetitions; ``full`` = 100², 200², 400², all three sweeps,
1 and 2 ranks, 3 repetitions. Every case keeps the wall time of each repetition; the rate and
evaluation time are those of the fastest k-pass and evaluation.

Usage::

    .venv/bin/python bench/bench_qgt.py [--quick] [--np 1 2] [--repeat 1]
                                        [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from _common import (
    MODELS,
    add_suite_options,
    case_record,
    format_table,
    kpass_seconds,
    occupied_bins,
    read_timing,
    run_qgt,
    sweep_points,
    write_deck,
    write_record,
)

MU_WIDE = {"start": -4.0, "stop": 4.0, "num": 281}
SWEEPS = {
    "1T x 281mu": {"temperature": [10.0], "mu": MU_WIDE, "delta": [0.05]},
    "121T x 2mu": {"temperature": {"start": 0.1, "stop": 30.0, "num": 121, "spacing": "log"},
                   "mu": [-0.25, 0.0], "delta": [0.01]},
    "281mu x 4delta": {"temperature": [10.0], "mu": MU_WIDE,
                       "delta": [0.01, 0.02, 0.05, 0.1]},
}
GRIDS = (100, 200, 400)
HEADER = ["model", "grid", "sweep", "np", "N_k", "kpts/s/rank", "pts", "cells",
          "eval [s]", "wall [s]", "peak MiB/rank"]


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small subset (< 1 min)")
    p.add_argument("--np", type=int, nargs="+", default=[1, 2], help="MPI ranks to use")
    p.add_argument("--repeat", type=int, default=1, help="runs per case")
    add_suite_options(p)
    return p


def cases(quick: bool, suite: str | None = None) -> list[tuple[str, int, str]]:
    """(model, grid N, sweep name) combinations to run.

    Parameters
    ----------
    quick : bool
        Only the 100² grid and the 281-μ sweep.
    suite : str, optional
        Preset of bench/run.py (module docstring); overrides ``quick``.

    Returns
    -------
    list of tuple
        Cases in run order.
    """
    if suite == "quick":
        return list(itertools.product(MODELS, (100,), ("1T x 281mu", "121T x 2mu")))
    if quick:
        return [(m, 100, "1T x 281mu") for m in MODELS]
    return list(itertools.product(MODELS, GRIDS, SWEEPS))


def run_case(tmp: Path, model: str, size: int, sweep: str, nprocs: int, repeat: int = 1,
             records: list[dict] | None = None) -> list[str]:
    """Run one case ``repeat`` times and format its table row.

    Parameters
    ----------
    tmp : Path
        Directory for the deck and the result file.
    model, size, sweep : str, int, str
        Keys of ``MODELS``, grid size N, key of ``SWEEPS``.
    nprocs : int
        MPI ranks.
    repeat : int
        Runs of the case.
    records : list, optional
        Where to append the case as a :func:`_common.case_record`.

    Returns
    -------
    list of str
        Table cells (fastest wall time, fastest k-pass and evaluation, largest peak).
    """
    name = f"{model}_{size}_{sweep.replace(' ', '')}_{nprocs}"
    deck, out = write_deck(tmp, name, model=MODELS[model], size=size, sweep=SWEEPS[sweep])
    walls, kpass, evals, peaks = [], [], [], []
    for _ in range(repeat):
        rec = run_qgt(deck, out, nprocs)
        if rec.returncode != 0:
            tail = rec.stderr.strip().splitlines()[-20:] or ["?"]
            if records is not None:
                records.append(case_record(name, {"model": model}, None,
                                           error="\n".join(tail)))
            return [model, f"{size}^2", sweep, str(nprocs), "FAILED", tail[-1][:60], *[""] * 5]
        timing = read_timing(out)
        walls.append(rec.wall)
        kpass.append(kpass_seconds(timing))
        evals.append(float(timing["reduce+evaluate"][2]))
        peaks.append(rec.peak_kb / 1024)
    nk = size * size
    rate = nk / (nprocs * min(kpass))
    points, cells = sweep_points(out), occupied_bins(out)
    if records is not None:
        records.append(case_record(
            f"{model} {size}^2 {sweep} np={nprocs}",
            {"model": model, "grid": size, "sweep": sweep, "np": nprocs, "N_k": nk},
            walls, max(peaks), kpts_per_s_per_rank=rate, kpass_s=kpass, eval_s=evals,
            eval_min_s=min(evals), sweep_points=points, cells=cells))
    return [model, f"{size}^2", sweep, str(nprocs), str(nk), f"{rate:,.0f}",
            str(points), str(cells), f"{min(evals):.2f}", f"{min(walls):.2f}",
            f"{max(peaks):.0f}"]


def main() -> None:
    """Run the cases and print one table."""
    args = _parser().parse_args()
    if args.suite:
        args.np, args.repeat = [1, 2], {"quick": 2, "full": 3}[args.suite]
    rows: list[list[str]] = []
    records: list[dict] = []
    todo = itertools.product(cases(args.quick, args.suite), args.np)
    with tempfile.TemporaryDirectory(prefix="qgt-bench-") as tmp:
        for (model, size, sweep), nprocs in todo:
            rows.append(run_case(Path(tmp), model, size, sweep, nprocs, args.repeat, records))
            print("  done:", " ".join(rows[-1][:4]), flush=True)
    print()
    print(format_table(HEADER, rows))
    print("\nkpts/s/rank = N_k / (ranks x mean k-pass); k-pass = solve+geometry+deposit;")
    print("eval = reduce+evaluate phase (max over ranks); cells = occupied energy cells;")
    print("wall = whole mpirun process; peak = max over ranks of /usr/bin/time %M.")
    write_record(args.json, "qgt", args.suite,
                 {"np": args.np, "repeat": args.repeat, "sweeps": SWEEPS, "models": MODELS},
                 records)


if __name__ == "__main__":
    main()
