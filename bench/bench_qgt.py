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

Usage::

    .venv/bin/python bench/bench_qgt.py [--quick] [--np 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from _common import (
    MODELS,
    format_table,
    kpass_seconds,
    occupied_bins,
    read_timing,
    run_qgt,
    sweep_points,
    write_deck,
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
    return p


def cases(quick: bool) -> list[tuple[str, int, str]]:
    """(model, grid N, sweep name) combinations to run.

    Parameters
    ----------
    quick : bool
        Only the 100² grid and the 281-μ sweep.

    Returns
    -------
    list of tuple
        Cases in run order.
    """
    if quick:
        return [(m, 100, "1T x 281mu") for m in MODELS]
    return list(itertools.product(MODELS, GRIDS, SWEEPS))


def run_case(tmp: Path, model: str, size: int, sweep: str, nprocs: int) -> list[str]:
    """Run one case and format its table row.

    Parameters
    ----------
    tmp : Path
        Directory for the deck and the result file.
    model, size, sweep : str, int, str
        Keys of ``MODELS``, grid size N, key of ``SWEEPS``.
    nprocs : int
        MPI ranks.

    Returns
    -------
    list of str
        Table cells.
    """
    name = f"{model}_{size}_{sweep.replace(' ', '')}_{nprocs}"
    deck, out = write_deck(tmp, name, model=MODELS[model], size=size, sweep=SWEEPS[sweep])
    rec = run_qgt(deck, out, nprocs)
    if rec.returncode != 0:
        tail = rec.stderr.strip().splitlines()[-1:] or ["?"]
        return [model, f"{size}^2", sweep, str(nprocs), "FAILED", tail[0][:60], *[""] * 5]
    timing = read_timing(out)
    nk = size * size
    rate = nk / (nprocs * kpass_seconds(timing))
    evaluate = float(timing["reduce+evaluate"][2])
    return [model, f"{size}^2", sweep, str(nprocs), str(nk), f"{rate:,.0f}",
            str(sweep_points(out)), str(occupied_bins(out)), f"{evaluate:.2f}",
            f"{rec.wall:.2f}", f"{rec.peak_kb / 1024:.0f}"]


def main() -> None:
    """Run the cases and print one table."""
    args = _parser().parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="qgt-bench-") as tmp:
        for (model, size, sweep), nprocs in itertools.product(cases(args.quick), args.np):
            rows.append(run_case(Path(tmp), model, size, sweep, nprocs))
            print("  done:", " ".join(rows[-1][:4]), flush=True)
    print()
    print(format_table(HEADER, rows))
    print("\nkpts/s/rank = N_k / (ranks x mean k-pass); k-pass = solve+geometry+deposit;")
    print("eval = reduce+evaluate phase (max over ranks); cells = occupied energy cells;")
    print("wall = whole mpirun process; peak = max over ranks of /usr/bin/time %M.")


if __name__ == "__main__":
    main()
