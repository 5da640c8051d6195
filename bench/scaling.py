"""Strong and weak MPI scaling of ``qgt-mpi run``: wall time, phases, efficiency, imbalance.

Strong scaling (fixed problem, 1–4 ranks):

* ``dispersive 300^2``: Haldane t1 = 1, t2 = 0.3, M = 0.2 meV, φ = π/2 on a 300 × 300 grid,
  281 chemical potentials in [−4, 4] meV, T = 10 K, δ = 0.05 meV, no k-resolved output;
* ``flat 200^2``: the paper deck ``inputs/haldane_flat.toml`` (121 T × 2 μ, k-resolved
  output) on a 200 × 200 grid.

Weak scaling: the dispersive model with a fixed number of k-points per rank (N × N grid,
N = round(sqrt(ranks × per_rank))).

Each case is one temporary deck run as a whole ``mpirun -n P qgt-mpi run`` process. Printed:
the wall time of that process; per phase the mean over ranks of ``/timing/seconds`` and its
load imbalance max/mean; the k-pass (solve + geometry + deposit, slowest rank); parallel
efficiency E = T(1) / (P · T(P)) (strong) or T(1) / T(P) (weak), for the wall time and the
k-pass. The machine's core count is printed: runs with more ranks than cores are
oversubscribed and their efficiency measures time sharing, not the code.

Why: the k-grid is what qgt_mpi distributes; these tables show how much of a run is
k-pass (which the ranks share) and how much is start-up, reduction and evaluation (which they
do not), and feed the per-k-point cost of the 256-rank model (docs/performance.md §4).

Suite presets (bench/run.py): ``quick`` = dispersive 150², paper deck 100², weak scaling
with 10 000 k-points per rank, 1 and 2 ranks, 2 repetitions; ``full`` = dispersive 300²,
paper deck 200², weak 40 000 k-points per rank, 1–4 ranks, 3 repetitions. Every wall time is
kept; phases are those of the fastest repetition.

Usage::

    .venv/bin/python bench/scaling.py [--quick] [--np 1 2 3 4] [--per-rank 40000]
                                      [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import (
    MODELS,
    REPO,
    add_suite_options,
    case_record,
    format_table,
    read_timing,
    run_qgt,
    write_deck,
    write_record,
)

PAPER_DECK = REPO / "inputs" / "haldane_flat.toml"
SWEEP = {"temperature": [10.0], "mu": {"start": -4.0, "stop": 4.0, "num": 281},
         "delta": [0.05]}
KPASS = ("solve", "geometry", "deposit")
SHOWN = ("setup", "solve", "geometry", "deposit", "reduce+evaluate")


@dataclass
class Case:
    """One scaling problem: how to write its deck for a given rank count."""

    name: str
    kind: str  # "dispersive" (generated deck) or "paper" (inputs/haldane_flat.toml)
    size: int  # N of the N × N grid (strong) or k-points per rank (weak)
    weak: bool = False

    def grid(self, ranks: int) -> int:
        """N of the N × N grid run on ``ranks`` ranks."""
        return round(math.sqrt(ranks * self.size)) if self.weak else self.size

    def deck(self, directory: Path, ranks: int) -> tuple[Path, Path]:
        """Write the deck for ``ranks`` ranks; return (deck, result file)."""
        n = self.grid(ranks)
        name = f"{self.name.split()[0]}_{n}_np{ranks}"
        if self.kind == "paper":
            text = re.sub(r"size = \[\d+, \d+\]", f"size = [{n}, {n}]", PAPER_DECK.read_text())
            deck, out = directory / f"{name}.toml", directory / f"{name}.h5"
            deck.write_text(text)
            return deck, out
        return write_deck(directory, name, model=MODELS["dispersive"], size=n, sweep=SWEEP)


@dataclass
class Measure:
    """One run: rank count, grid, wall time and the phase table of its result file."""

    ranks: int
    grid: int
    wall: float
    timing: dict[str, np.ndarray]
    walls: tuple[float, ...] = ()

    @property
    def kpass_max(self) -> float:
        """k-pass time of the slowest rank, bounded by the sum of per-phase maxima (s)."""
        return float(sum(self.timing[p][2] for p in KPASS))

    @property
    def kpass_mean(self) -> float:
        """Mean over ranks of the k-pass time (s)."""
        return float(sum(self.timing[p][1] for p in KPASS))

    def imbalance(self, phase: str) -> float:
        """max/mean over ranks of one phase (1 = perfect balance)."""
        lo_mean_hi = self.timing[phase]
        return float(lo_mean_hi[2] / lo_mean_hi[1]) if lo_mean_hi[1] > 0 else 1.0


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small subset (< 1 min)")
    p.add_argument("--np", type=int, nargs="+", default=[1, 2, 3, 4], help="rank counts")
    p.add_argument("--per-rank", type=int, default=40_000, help="weak scaling k-points/rank")
    p.add_argument("--repeat", type=int, default=2, help="runs per point; the fastest is kept")
    add_suite_options(p)
    return p


def cases(quick: bool, per_rank: int) -> list[Case]:
    """Problems to run (the quick subset shrinks the grids)."""
    if quick:
        return [Case("dispersive 150^2", "dispersive", 150),
                Case("flat 100^2 (paper deck)", "paper", 100),
                Case("weak dispersive", "dispersive", 10_000, weak=True)]
    return [Case("dispersive 300^2", "dispersive", 300),
            Case("flat 200^2 (paper deck)", "paper", 200),
            Case("weak dispersive", "dispersive", per_rank, weak=True)]


def measure(case: Case, ranks: int, directory: Path, repeat: int) -> Measure:
    """Run ``case`` on ``ranks`` ranks ``repeat`` times; keep the fastest wall time."""
    deck, out = case.deck(directory, ranks)
    best, walls = None, []
    for _ in range(repeat):
        rec = run_qgt(deck, out, ranks, measure_memory=False)
        if rec.returncode != 0:
            raise RuntimeError(f"{case.name} on {ranks} ranks failed:\n{rec.stderr[-2000:]}")
        walls.append(rec.wall)
        if best is None or rec.wall < best.wall:
            best = Measure(ranks, case.grid(ranks), rec.wall, read_timing(out))
    best.walls = tuple(walls)
    return best


def efficiency(case: Case, base: Measure, m: Measure, value: str) -> float:
    """Parallel efficiency of ``value`` ("wall" or "kpass_max") relative to 1 rank."""
    t1, tp = getattr(base, value), getattr(m, value)
    return t1 / tp if case.weak else t1 / (m.ranks * tp)


def table(case: Case, runs: list[Measure], cores: int) -> str:
    """Printed table of one case."""
    header = ["np", "grid", "wall [s]", *(f"{p} [s]" for p in SHOWN), "k-pass max [s]",
              "E wall", "E k-pass", "imbal solve", "imbal geom", "imbal deposit", "note"]
    rows = []
    for m in runs:
        rows.append([str(m.ranks), f"{m.grid}^2", f"{m.wall:.2f}",
                     *(f"{m.timing[p][1]:.3f}" for p in SHOWN), f"{m.kpass_max:.3f}",
                     f"{efficiency(case, runs[0], m, 'wall'):.2f}",
                     f"{efficiency(case, runs[0], m, 'kpass_max'):.2f}",
                     *(f"{m.imbalance(p):.2f}" for p in KPASS),
                     "oversubscribed" if m.ranks > cores else ""])
    kind = "weak" if case.weak else "strong"
    return f"{kind} scaling: {case.name}\n" + format_table(header, rows)


def records(case: Case, runs: list[Measure], cores: int, load: tuple[float, float]) -> list[dict]:
    """The runs of one case as :func:`_common.case_record` entries (what the table prints)."""
    out = []
    for m in runs:
        out.append(case_record(
            f"{case.name} np={m.ranks}",
            {"case": case.name, "weak": case.weak, "np": m.ranks, "grid": m.grid,
             "oversubscribed": m.ranks > cores},
            list(m.walls),
            phases_mean_s={p: float(m.timing[p][1]) for p in SHOWN},
            kpass_max_s=m.kpass_max, kpass_mean_s=m.kpass_mean,
            kpts_per_s_per_rank=m.grid ** 2 / (m.ranks * m.kpass_mean),
            e_wall=efficiency(case, runs[0], m, "wall"),
            e_kpass=efficiency(case, runs[0], m, "kpass_max"),
            imbalance={p: m.imbalance(p) for p in KPASS}, load_before_after=load))
    return out


def rates(case: Case, runs: list[Measure]) -> str:
    """k-points per second per rank of the k-pass (mean over ranks)."""
    parts = [f"np={m.ranks}: {m.grid ** 2 / (m.ranks * m.kpass_mean):,.0f}" for m in runs]
    return f"  k-pass rate [k-points/s/rank] ({case.name}): " + ", ".join(parts)


def main() -> None:
    """Run the scaling cases and print one table per case."""
    args = _parser().parse_args()
    if args.suite:
        args.quick = args.suite == "quick"
        args.np = [1, 2] if args.quick else [1, 2, 3, 4]
        args.repeat = 2 if args.quick else 3
        args.per_rank = 40_000
    ranks = sorted(set(args.np if not args.quick else [n for n in args.np if n <= 2]))
    recs: list[dict] = []
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; runs with more than {cores} ranks are oversubscribed "
          f"(ranks share cores: their efficiency is not the code's). repeat={args.repeat}, "
          "fastest wall time kept; phase columns are means over ranks.\n")
    with tempfile.TemporaryDirectory(prefix="qgt-scaling-") as tmp:
        for case in cases(args.quick, args.per_rank):
            load = os.getloadavg()[0]
            runs = [measure(case, n, Path(tmp), args.repeat) for n in ranks]
            recs += records(case, runs, cores, (load, os.getloadavg()[0]))
            print(table(case, runs, cores))
            print(rates(case, runs))
            print(f"  1-min load average before/after: {load:.2f} / {os.getloadavg()[0]:.2f} "
                  "(> 0 before: other processes shared the cores)")
            print(flush=True)
    write_record(args.json, "scaling", args.suite,
                 {"np": ranks, "repeat": args.repeat, "cores": cores, "sweep": SWEEP,
                  "quick": args.quick}, recs)


if __name__ == "__main__":
    main()
