"""Helpers shared by the qgt_mpi benchmark scripts: decks, ``mpirun`` runs, result parsing.

Also the suite's common pieces (bench/run.py): ``--suite``/``--json`` options, and the JSON
record of a benchmark (per case: parameters, wall time of every repetition with min and
median, peak memory, derived figures) that bench/report.py turns into the tables of
docs/performance.md. Nothing here asserts a time; the scripts only print what they measure.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
QGT = VENV_BIN / "qgt-mpi"
TIME_BIN = "/usr/bin/time"
KPASS_PHASES = ("solve", "geometry", "deposit")

# Models of the benchmark (energies in meV, phase in rad).
MODELS = {
    "flat": {"kind": "haldane", "t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": math.pi / 2,
             "flatten": {"gap": 0.5, "range": "inf"}},
    "dispersive": {"kind": "haldane", "t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": math.pi / 2},
}


def mpi_env() -> dict[str, str]:
    """Environment for ``mpirun`` as root with oversubscription allowed.

    Returns
    -------
    dict
        A copy of ``os.environ`` with the OpenMPI variables set.
    """
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    return env


def toml_value(value: object) -> str:
    """Format a Python value as a TOML value (numbers, strings, lists, inline tables).

    Parameters
    ----------
    value : object
        bool, int, float, str, list/tuple or dict.

    Returns
    -------
    str
        The TOML text of ``value``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot format {value!r} as TOML")


def deck_text(model: dict, size: int, sweep: dict, output: str, title: str) -> str:
    """Text of an input deck (docs/input.md) without k-resolved output.

    Parameters
    ----------
    model : dict
        ``[model]`` keys; an optional ``flatten`` dict becomes ``[model.flatten]``.
    size : int
        N for an N × N k-grid.
    sweep : dict
        ``temperature``, ``mu`` and ``delta`` axes (lists or generator tables).
    output : str
        Result file path.
    title : str
        Deck title.

    Returns
    -------
    str
        TOML text.
    """
    lines = [f"title = {toml_value(title)}", "", "[model]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in model.items() if k != "flatten"]
    if "flatten" in model:
        lines += ["", "[model.flatten]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in model["flatten"].items()]
    lines += ["", "[kgrid]", f"size = [{size}, {size}]", "", "[sweep]"]
    lines += [f"{k} = {toml_value(sweep[k])}" for k in ("temperature", "mu", "delta")]
    lines += ["", "[output]", f"file = {toml_value(output)}", "kresolved = false", ""]
    return "\n".join(lines)


def write_deck(directory: Path, name: str, **kwargs) -> tuple[Path, Path]:
    """Write ``<name>.toml`` into ``directory``; return (deck path, result path).

    Parameters
    ----------
    directory : Path
        Temporary directory.
    name : str
        Stem of the deck and of its result file.
    **kwargs
        ``model``, ``size`` and ``sweep`` for :func:`deck_text`.

    Returns
    -------
    tuple of Path
        The deck and the result file it names.
    """
    out = directory / f"{name}.h5"
    deck = directory / f"{name}.toml"
    deck.write_text(deck_text(output=str(out), title=name, **kwargs))
    return deck, out


@dataclass
class RunRecord:
    """Whole-process measurements of one ``mpirun`` of ``qgt-mpi run``."""

    wall: float
    peak_kb: int
    returncode: int
    stderr: str


def run_qgt(deck: Path, out: Path, nprocs: int, measure_memory: bool = True) -> RunRecord:
    """Run ``mpirun -n nprocs [time -f] qgt-mpi run deck -o out`` and time the whole process.

    Parameters
    ----------
    deck, out : Path
        Input deck and result file.
    nprocs : int
        MPI ranks.
    measure_memory : bool
        Wrap each rank in ``/usr/bin/time -f`` to get its peak resident set size.

    Returns
    -------
    RunRecord
        Wall time (s) of the whole ``mpirun``, max peak RSS over ranks (kB; 0 if not
        measured), exit status and captured stderr.
    """
    out.unlink(missing_ok=True)  # a repetition replaces the previous result
    prefix = out.with_suffix(".maxrss")
    # Each rank writes its own file: stderr forwarding may drop lines at mpirun exit.
    wrap = ["sh", "-c", f'exec {TIME_BIN} -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"',
            str(prefix)] if measure_memory else []
    cmd = ["mpirun", "-n", str(nprocs), *wrap, str(QGT), "run", str(deck), "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    peaks = []
    for rank in range(nprocs if measure_memory else 0):
        found = re.findall(r"^(\d+)\s*$", _read(Path(f"{prefix}.{rank}")), re.M)
        peaks += [int(found[-1])] if found else []
    return RunRecord(wall, max(peaks, default=0), proc.returncode, proc.stderr)


def _read(path: Path) -> str:
    """Text of ``path``, or "" if it does not exist."""
    return path.read_text() if path.exists() else ""


def read_timing(path: Path) -> dict[str, np.ndarray]:
    """Phase timings of a result file.

    Parameters
    ----------
    path : Path
        qgt_mpi HDF5 result file.

    Returns
    -------
    dict
        phase name → array (min, mean, max) over ranks in seconds.
    """
    with h5py.File(path, "r") as f:
        names = [p.decode() if isinstance(p, bytes) else str(p) for p in f["timing/phases"][()]]
        secs = f["timing/seconds"][()]
    return dict(zip(names, secs, strict=True))


def kpass_seconds(timing: dict[str, np.ndarray]) -> float:
    """k-pass time per rank: mean over ranks of solve + geometry + deposit (s)."""
    return float(sum(timing[p][1] for p in KPASS_PHASES))


def occupied_bins(path: Path) -> int:
    """Energy cells of the run's cell tree (``/transport`` attribute ``cells``).

    Parameters
    ----------
    path : result file.

    Returns
    -------
    int
        Occupied cells of every level (what the evaluation cost scales with, together
        with the sweep points; see transport/lattice.py).
    """
    with h5py.File(path, "r") as f:
        return int(f["transport"].attrs["cells"])


def sweep_points(path: Path) -> int:
    """Number of (μ, δ, T) points in a result file."""
    with h5py.File(path, "r") as f:
        return int(f["transport/sigma_xy"].size)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Right-aligned plain-text table (first column left-aligned).

    Parameters
    ----------
    header : list of str
        Column titles.
    rows : list of list of str
        Cells, already formatted.

    Returns
    -------
    str
        The table with a rule under the header.
    """
    cols = [header, *rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# --- benchmark suite (bench/run.py): presets and JSON records --------------------------------

SUITES = ("quick", "full")


def add_suite_options(parser) -> None:
    """Add ``--suite {quick,full}`` and ``--json PATH`` to a benchmark's argument parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The script's parser. ``--suite`` selects the preset sizes bench/run.py uses (and
        overrides the script's own size options); ``--json`` writes the measurements as one
        record (:func:`write_record`) besides printing the tables.
    """
    parser.add_argument("--suite", choices=SUITES, default=None,
                        help="preset sizes of the benchmark suite (bench/run.py)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the measurements as JSON (bench/run.py reads it)")


def summary(times: list[float]) -> dict:
    """Repetitions of one timing: every value, the minimum and the median (s).

    Parameters
    ----------
    times : list of float
        One value per repetition.

    Returns
    -------
    dict
        ``runs``, ``min``, ``median``, ``n``.
    """
    values = [float(t) for t in times]
    return {"runs": values, "min": min(values) if values else None,
            "median": float(np.median(values)) if values else None, "n": len(values)}


def case_record(label: str, parameters: dict, wall: list[float] | None = None,
                peak_mib: float | None = None, **derived) -> dict:
    """One benchmark case as stored in the suite's JSON.

    Parameters
    ----------
    label : str
        Short name of the case (unique within its benchmark).
    parameters : dict
        What defines the case (model, grid, sweep, ranks, sizes).
    wall : list of float, optional
        Wall times of the repetitions (s); stored as :func:`summary`.
    peak_mib : float, optional
        Peak resident set size of the largest process or rank (MiB), where measured.
    **derived
        The figures the docs quote (rates, phase times, ratios), JSON-serialisable.

    Returns
    -------
    dict
        ``label``, ``parameters``, ``wall_s``, ``peak_mib``, ``derived``.
    """
    return {"label": label, "parameters": parameters,
            "wall_s": summary(wall) if wall is not None else None,
            "peak_mib": None if peak_mib is None else float(peak_mib), "derived": derived}


def write_record(path: Path | None, name: str, suite: str | None, parameters: dict,
                 cases: list[dict], **extra) -> None:
    """Write one benchmark's measurements as JSON (nothing when ``path`` is None).

    Parameters
    ----------
    path : Path or None
        Output file (``--json``).
    name : str
        Benchmark name (the key bench/report.py looks up).
    suite : str or None
        The preset that chose the sizes, or None for sizes given on the command line.
    parameters : dict
        Settings common to every case.
    cases : list of dict
        :func:`case_record` entries.
    **extra
        Further results of the benchmark as a whole (fits, crossovers, load averages).
    """
    if path is None:
        return
    record = {"name": name, "suite": suite, "parameters": parameters, "cases": cases,
              "load_average": os.getloadavg(), **extra}
    path.write_text(json.dumps(record, indent=1, default=_jsonable))


def _jsonable(value: object) -> object:
    """NumPy scalars and arrays as plain Python for ``json.dumps``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
