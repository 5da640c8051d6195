"""Issue 9 benchmark: transport at materials scale (eV bands, many bands, huge sweeps).

Every case is a deck run as a whole ``mpirun -n NP qgt-mpi run`` process, and the same deck
through ``qgt-mpi dry-run --np NP`` (its predicted time and memory per rank are printed
beside the measurement). Printed: occupied energy cells, reduce+evaluate time, wall time,
CPU seconds of all ranks (user + system of the child processes: the load-independent
figure), peak RSS of the largest rank, and the dry-run's estimates.

Cases:

``table``: issue 9's table of cases (before its change), now:
   random 16-band model, 48² grid, 281 μ × 1 T and × 16 T; random 32-band, 48², 281 μ × 1 T;
   Haldane t1 = 2700 meV, 24², one sweep point (1 K, δ = 0.01 meV).
``ev`` (1): Haldane t1 = 2700 meV, t2 = 0.1 t1, 200² grid, 281 μ spanning the bands, T = 1 K,
   δ = 0.01 meV, and the same deck with t1 = 1 meV.
``bands`` (2): random Wannier-like models with 16/32/64 bands (:func:`random_model`, written
   as qgt_mpi model files, ``kind = "model_file"``), 100² grid, 281 μ × 50 T, δ = 1 meV.
``sweep`` (3): flattened Haldane, 200² grid, 10⁴ T × 10³ μ (``--n-temperature`` scales T).
``peer`` (4): the qgt_mpi side of the WannierBerri comparison (docs/performance.md §3).

Why: issue 9's goals (eV-wide bands in bounded memory, many bands and huge sweeps in tens of
seconds, ≥ 10× WannierBerri) are stated per case; this script re-measures them and checks the
dry-run's estimates against the measured run (docs/performance.md §10).

Suite presets (bench/run.py): ``quick`` = cases ``table`` (the one-point eV deck only), ``ev``,
``bands`` (16 bands only), ``sweep`` with 200 temperatures, ``peer``, 2 repetitions;
``full`` = every case at its issue size (10⁴ temperatures), 3 repetitions. Every repetition's
wall and CPU time is kept; cells, evaluation and peak memory come from the fastest one.

Usage::

    .venv/bin/python bench/bench_scale.py [--np 2] [--cases table ev bands sweep peer]
                                          [--n-temperature N] [--repeat 1]
                                          [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    MODELS,
    QGT,
    add_suite_options,
    case_record,
    format_table,
    mpi_env,
    read_timing,
    run_qgt,
    write_deck,
    write_record,
)

HALDANE_EV = {"kind": "haldane", "t1": 2700.0, "t2": 270.0, "mass": 0.0, "phi": 1.5707963}
HALDANE_MEV = {"kind": "haldane", "t1": 1.0, "t2": 0.1, "mass": 0.0, "phi": 1.5707963}


def random_model(norb: int, seed: int = 0):
    """Random 'Wannier-like' model: norb orbitals, hoppings to R ∈ {0, ±a1, ±a2, ±(a1−a2)}.

    On-site energies spread over ±1.5 eV, hoppings ~ 150 meV / R-shell: bands of a few
    hundred meV that overlap and cross (a dense multi-band spectrum like a Wannier model).
    """
    from qgt_mpi.models import TightBinding

    rng = np.random.default_rng(seed)
    lattice = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    pos = rng.uniform(0, 1, (norb, 2)) @ lattice
    shells = [(1, 0), (0, 1), (1, -1)]
    onsite = rng.uniform(-1500, 1500, norb)
    h0 = 60 * (rng.normal(size=(norb, norb)) + 1j * rng.normal(size=(norb, norb)))
    rows = [((0, 0), (h0 + h0.conj().T) / 2 + np.diag(onsite))]
    for r in shells:
        hr = 150 / np.sqrt(norb) * (rng.normal(size=(norb, norb))
                                    + 1j * rng.normal(size=(norb, norb)))
        rows += [(r, hr), ((-r[0], -r[1]), hr.conj().T)]
    a_idx, b_idx = np.meshgrid(np.arange(norb), np.arange(norb), indexing="ij")
    big_r = np.concatenate([np.tile(r, (norb * norb, 1)) for r, _ in rows])
    t = np.concatenate([h.ravel() for _, h in rows])
    a = np.tile(a_idx.ravel(), len(rows))
    b = np.tile(b_idx.ravel(), len(rows))
    return TightBinding(lattice, pos, big_r, a, b, t, {"kind": f"random{norb}"})


def _model_file(tmp: Path, norb: int) -> dict:
    """The random model of ``norb`` bands saved as a qgt_mpi model file; its [model] table."""
    from qgt_mpi.models.modelfile import save_model

    path = tmp / f"model_random{norb}.h5"
    if not path.exists():
        save_model(random_model(norb), str(path))
    return {"kind": "model_file", "file": str(path)}


def _cpu() -> float:
    """CPU seconds (user + system) of finished child processes and their descendants."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _dry_run(deck: Path, nprocs: int) -> tuple[str, str]:
    """(estimated seconds per run, estimated MiB per rank) from ``qgt-mpi dry-run``."""
    proc = subprocess.run([str(QGT), "dry-run", str(deck), "--np", str(nprocs)],
                          env=mpi_env(), capture_output=True, text=True, check=False)
    time_ = re.search(r"= ([0-9.]+) s per run", proc.stdout)
    mem = re.search(r"memory\s+~([0-9.]+) MiB", proc.stdout)
    return (time_.group(1) if time_ else "?"), (mem.group(1) if mem else "?")


def _row(tmp: Path, name: str, model: dict, size: int, sweep: dict, label: str, nprocs: int,
         chunk: int | None = None, case: str = "", repeat: int = 1,
         records: list[dict] | None = None) -> list[str]:
    """One deck: measured runs (``repeat`` of them) and the dry-run prediction."""
    deck, out = write_deck(tmp, name, model=model, size=size, sweep=sweep)
    if chunk:
        deck.write_text(deck.read_text() + f"\n[run]\nchunk = {chunk}\n")
    est_t, est_m = _dry_run(deck, nprocs)
    walls, cpus, evals, peaks, cells = [], [], [], [], -1
    for _ in range(repeat):
        c0 = _cpu()
        rec = run_qgt(deck, out, nprocs)
        cpus.append(_cpu() - c0)
        if rec.returncode:
            if records is not None:
                records.append(case_record(name, {"case": case}, None,
                                           error=rec.stderr[-2000:]))
            return [name, str(size), label, "FAILED", rec.stderr[-200:], "", "", "", "", ""]
        import h5py

        with h5py.File(out, "r") as f:
            cells = int(f["transport"].attrs.get("cells", -1))
        evals.append(float(read_timing(out)["reduce+evaluate"][2]))
        walls.append(rec.wall)
        peaks.append(rec.peak_kb / 1024)
        out.unlink()
    if records is not None:
        records.append(case_record(
            name, {"case": case, "grid": size, "sweep": label, "np": nprocs, "chunk": chunk,
                   "model": model.get("kind"),
                   "norb": int(name[6:].split("_")[0]) if name.startswith("random") else 2},
            walls, max(peaks), cells=cells, eval_s=evals, eval_min_s=min(evals),
            cpu_s=cpus, cpu_min_s=min(cpus), dry_run_s=_float(est_t),
            dry_run_mib=_float(est_m)))
    return [name, str(size), label, str(cells), f"{min(evals):.2f}", f"{min(walls):.1f}",
            f"{min(cpus):.1f}", f"{max(peaks):.0f}", est_t, est_m]


def _float(text: str) -> float | None:
    """``text`` as a number, or None when the dry-run printed none ("?")."""
    try:
        return float(text)
    except ValueError:
        return None


def _cases(tmp: Path, args) -> tuple[list[list[str]], list[dict]]:
    """All requested rows, and their records."""
    rows, recs, npr, rep = [], [], args.np, args.repeat
    one_t = {"temperature": [1.0], "delta": [1.0], "mu": {"start": -1500.0, "stop": 1500.0,
                                                          "num": 281}}

    def row(*a, **kw) -> None:
        rows.append(_row(tmp, *a, repeat=rep, records=recs, **kw))

    if "table" in args.cases:
        for norb, nt in ((16, 1), (16, 16), (32, 1)) if not args.one_point_only else ():
            sweep = {**one_t, "temperature": {"start": 1.0, "stop": 300.0, "num": nt}
                     if nt > 1 else [1.0]}
            row(f"random{norb}_{nt}T", _model_file(tmp, norb), 48, sweep, f"281mu x {nt}T",
                npr, min(4096, 2**21 // norb**2), case="table")
        row("haldane_t1=2700_24", HALDANE_EV, 24,
            {"temperature": [1.0], "delta": [0.01], "mu": [0.0]}, "1 point", npr, case="table")
    if "ev" in args.cases:
        for name, model, case in (("haldane_t1=2700", HALDANE_EV, "1"),
                                  ("haldane_t1=1", HALDANE_MEV, "1'")):
            t1 = model["t1"]
            sweep = {"temperature": [1.0], "delta": [0.01],
                     "mu": {"start": -3.1 * t1, "stop": 3.1 * t1, "num": 281}}
            row(name, model, 200, sweep, "281mu x 1T", npr, case=case)
    if "bands" in args.cases:
        for norb in args.bands:
            sweep = {**one_t, "temperature": {"start": 1.0, "stop": 300.0, "num": 50}}
            row(f"random{norb}", _model_file(tmp, norb), 100, sweep, "281mu x 50T", npr,
                min(4096, 2**21 // norb**2), case="2")
    if "peer" in args.cases:  # qgt_mpi side of the WannierBerri comparison (§3)
        sweep = {"temperature": [10.0], "delta": [0.05],
                 "mu": {"start": -4.0, "stop": 4.0, "num": 281}}
        row("peer_dispersive", MODELS["dispersive"], 400, sweep, "281mu x 1T", npr, case="4")
    if "sweep" in args.cases:
        nt = args.n_temperature
        sweep = {"temperature": {"start": 0.1, "stop": 30.0, "num": nt},
                 "mu": {"start": -0.5, "stop": 0.5, "num": 1000}, "delta": [0.01]}
        row("flat", MODELS["flat"], 200, sweep, f"1000mu x {nt}T", npr, case="3")
    return rows, recs


SUITE = {"quick": {"cases": ["table", "ev", "bands", "sweep", "peer"], "bands": [16],
                   "n_temperature": 200, "repeat": 2, "one_point_only": True},
         "full": {"cases": ["table", "ev", "bands", "sweep", "peer"], "bands": [16, 32, 64],
                  "n_temperature": 10_000, "repeat": 3, "one_point_only": False}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--np", type=int, default=2)
    p.add_argument("--cases", nargs="+", default=["table", "ev", "bands", "sweep", "peer"])
    p.add_argument("--n-temperature", type=int, default=10_000)
    p.add_argument("--bands", type=int, nargs="+", default=[16, 32, 64],
                   help="band counts of case 2")
    p.add_argument("--repeat", type=int, default=1, help="runs per deck")
    p.add_argument("--one-point-only", action="store_true",
                   help="table: only the one-point eV deck")
    add_suite_options(p)
    args = p.parse_args()
    for key, value in SUITE.get(args.suite, {}).items():
        setattr(args, key, value)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        rows, recs = _cases(Path(tmp_name), args)
    print(f"load average before: {load:.1f}, after: {os.getloadavg()[0]:.1f}")
    write_record(args.json, "scale", args.suite,
                 {"np": args.np, "repeat": args.repeat, "cases": args.cases,
                  "n_temperature": args.n_temperature, "bands": args.bands}, recs)
    print(format_table(["case", "grid", "sweep", "cells", "eval [s]", "wall [s]", "cpu [s]",
                        "peak MiB/rank", "dry-run s", "dry-run MiB"], rows))


if __name__ == "__main__":
    main()
