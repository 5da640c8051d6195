"""Benchmark suite runner: every benchmark of bench/ at one preset size, one JSON file per run.

Runs the benchmarks listed in :data:`BENCHMARKS`, each as its own process
(``bench/<script> --suite quick|full --json FILE``, so that peak memory and failures stay
per benchmark), and writes one JSON file,
``bench/results/<UTC date>-<commit>[-dirty]-<suite>.json``, and a copy as
``bench/results/latest.json``, with

* the git commit, whether the tree was dirty (and which files), and the source that was
  measured (below);
* the machine: host name, CPU model (/proc/cpuinfo), logical cores, memory, OS, Python,
  NumPy, SciPy, h5py, mpi4py, PETSc/SLEPc (petsc4py/slepc4py) and OpenMPI versions, the load
  average before and after;
* per benchmark: the command, its wall time, exit status, printed tables, and its record
  (bench/_common.py ``write_record``): parameters and per case the wall times of every
  repetition (with min and median), peak memory where the script measures it, and the
  derived figures docs/performance.md quotes.

Why: the tables of docs/performance.md are regenerated from this file by bench/report.py
(``make bench`` does both), so every published number names the commit, the machine and the
run it comes from, and a later run on the same machine shows what changed.

Source measured (``--source``): the package is copied into a temporary directory before the
first benchmark and put first on ``PYTHONPATH`` of every process (``qgt-mpi`` included), so
that edits made to the working tree while the suite runs (it takes minutes) do not mix two
versions of the code. ``worktree`` (default) copies ``src/qgt_mpi`` as it is (the JSON
records ``git diff --stat`` of src and a hash of the diff); ``head`` takes the committed
``HEAD`` (``git archive``), which is what the commit in the JSON names exactly.

Every process gets one BLAS/OpenMP thread (``OMP_NUM_THREADS`` and friends set to 1 unless
already set; the JSON records them), as ``qgt-mpi`` pins them for its ranks.

Presets: ``--quick`` (≈ 3 minutes on 2 cores) and the default full size (≈ 25–40 minutes on
2 shared cores; each script's docstring lists its sizes). Nothing asserts a time.

Usage::

    .venv/bin/python bench/run.py [--quick] [--only kernels qgt ...] [--source worktree|head]
                                  [--results-dir bench/results] [--no-latest]
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# name → (script and arguments before --suite, timeout of the full preset in s)
BENCHMARKS: dict[str, tuple[list[str], int]] = {
    "kernels": (["bench_kernels.py"], 600),
    "qgt": (["bench_qgt.py"], 1800),
    "scaling": (["scaling.py"], 1800),
    "scale": (["bench_scale.py"], 3600),
    "sparse": (["bench_sparse.py"], 5400),
    "wannier": (["bench_wannier.py"], 1200),
    "tbg_build": (["bench_tbg.py"], 1200),
    "atomistic": (["bench_atomistic.py", "suite"], 3600),
    "ranks": (["bench_ranks.py"], 1800),
}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
VERSION_PROBE = """
import json, sys
import qgt_mpi  # points petsc4py/slepc4py at the complex build
import h5py, mpi4py, numpy, scipy
from mpi4py import MPI
out = {"python": sys.version.split()[0], "numpy": numpy.__version__,
       "scipy": scipy.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
       "h5py_mpi": h5py.get_config().mpi, "mpi4py": mpi4py.__version__,
       "mpi_library": MPI.Get_library_version().splitlines()[0].strip()}
try:
    from petsc4py import PETSc
    from slepc4py import SLEPc
    out["petsc"] = ".".join(map(str, PETSc.Sys.getVersion()))
    out["petsc_scalar"] = str(PETSc.ScalarType.__name__)
    out["slepc"] = ".".join(map(str, SLEPc.Sys.getVersion()))
except Exception as exc:  # report, do not fail the suite
    out["petsc"] = f"unavailable ({exc})"
print(json.dumps(out))
"""


def _git(*args: str) -> str:
    """Output of ``git args`` in the repository ("" on failure)."""
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def git_info() -> dict:
    """Commit, dirty state and the changed paths of the working tree.

    Returns
    -------
    dict
        ``commit``, ``short``, ``subject``, ``dirty`` (any change, staged or not, or an
        untracked file), ``changed`` (``git status --porcelain`` lines, at most 200).
    """
    status = _git("status", "--porcelain", "--untracked-files=normal").splitlines()
    return {"commit": _git("rev-parse", "HEAD"), "short": _git("rev-parse", "--short", "HEAD"),
            "subject": _git("log", "-1", "--format=%s")[:200], "dirty": bool(status),
            "changed": status[:200]}


def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo ("" if not found)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_gib() -> float | None:
    """Total memory (GiB) from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _os_name() -> str:
    """PRETTY_NAME of /etc/os-release, or the platform string."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def machine_info(env: dict[str, str]) -> dict:
    """Host, CPU, cores, memory, OS and the versions of the numerical stack.

    Parameters
    ----------
    env : dict
        Environment of the benchmark processes (the versions are those they import).

    Returns
    -------
    dict
        Machine description stored in the JSON.
    """
    probe = subprocess.run([sys.executable, "-c", VERSION_PROBE], env=env, capture_output=True,
                           text=True, check=False)
    try:
        versions = json.loads(probe.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        versions = {"error": probe.stderr[-500:]}
    mpirun = subprocess.run(["mpirun", "--version"], capture_output=True, text=True,
                            check=False)
    threads = {k: env.get(k) for k in THREAD_VARS if k in env}
    return {"hostname": socket.gethostname(), "cpu_model": _cpu_model(),
            "cores": os.cpu_count(), "memory_gib": _mem_gib(), "os": _os_name(),
            "kernel": platform.release(), "openmpi": (mpirun.stdout.splitlines() or [""])[0],
            "thread_env": threads, **versions}


def snapshot_source(mode: str, into: Path) -> dict:
    """Copy the package to ``into/src`` (module docstring); describe what was copied.

    Parameters
    ----------
    mode : str
        "worktree" or "head".
    into : Path
        Temporary directory; ``into/src`` goes first on ``PYTHONPATH``.

    Returns
    -------
    dict
        ``mode``, and for "worktree" the ``git diff --stat`` of src against HEAD, its sha256
        and the untracked files under src.
    """
    src = into / "src"
    src.mkdir(parents=True)
    info: dict = {"mode": mode, "path": str(src)}
    if mode == "head":
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD", "src/qgt_mpi"],
                                 capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    else:
        shutil.copytree(REPO / "src" / "qgt_mpi", src / "qgt_mpi",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        diff = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--", "src"],
                              capture_output=True, check=False).stdout
        info.update(diff_stat=_git("diff", "--stat", "HEAD", "--", "src").splitlines()[-40:],
                    diff_sha256=hashlib.sha256(diff).hexdigest(),
                    untracked=_git("ls-files", "--others", "--exclude-standard",
                                   "src").splitlines())
    compileall.compile_dir(str(src), quiet=1)  # no per-run byte-compilation cost
    return info


def run_benchmark(name: str, suite: str, env: dict[str, str], workdir: Path) -> dict:
    """Run one benchmark process and collect its record.

    Parameters
    ----------
    name : str
        Key of :data:`BENCHMARKS`.
    suite : str
        "quick" or "full".
    env : dict
        Environment (``PYTHONPATH`` of the snapshot, OpenMPI variables).
    workdir : Path
        Where the record file is written.

    Returns
    -------
    dict
        ``command``, ``seconds``, ``returncode``, ``stdout``, ``stderr_tail`` and
        ``record`` (the script's JSON, or None when it failed before writing one).
    """
    script, timeout = BENCHMARKS[name]
    out = workdir / f"{name}.json"
    cmd = [sys.executable, str(HERE / script[0]), *script[1:], "--suite", suite,
           "--json", str(out)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=False)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout, stderr = -1, _text(exc.stdout), _text(exc.stderr) + "\nTIMEOUT"
    seconds = time.perf_counter() - t0
    record = json.loads(out.read_text()) if out.exists() else None
    shown = [*(Path(c).name for c in cmd[:2]), *cmd[2:-1], "FILE"]  # no temporary path
    return {"command": " ".join(shown),
            "seconds": seconds, "returncode": code, "stdout": stdout[-20000:],
            "stderr_tail": stderr[-3000:] if code else "", "record": record}


def _text(data: bytes | str | None) -> str:
    """Captured output of a timed-out process as text."""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="quick preset (≈ 3 min on 2 cores)")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=None,
                   help="run only these benchmarks")
    p.add_argument("--source", choices=("worktree", "head"), default="worktree",
                   help="measure a copy of the working tree's package or of HEAD")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-latest", action="store_true",
                   help="do not replace results/latest.json")
    return p


def main() -> int:
    """Run the suite, write the JSON files; exit status 1 if a benchmark failed."""
    args = _parser().parse_args()
    suite = "quick" if args.quick else "full"
    names = args.only or list(BENCHMARKS)
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    git = git_info()
    with tempfile.TemporaryDirectory(prefix="qgt-bench-run-") as tmp:
        tmp_path = Path(tmp)
        source = snapshot_source(args.source, tmp_path / "snapshot")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [source["path"], *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1")
        for var in THREAD_VARS:  # one BLAS/OpenMP thread per process, as `qgt-mpi` pins
            env.setdefault(var, "1")
        machine = machine_info(env)
        print(f"qgt_mpi benchmark suite ({suite}) at {git['short']}"
              f"{' (dirty tree)' if git['dirty'] else ''}, source {args.source}; "
              f"{machine['hostname']}, {machine['cores']} cores, {machine['cpu_model']}",
              flush=True)
        benchmarks = {}
        for name in names:
            print(f"  {name} ...", end=" ", flush=True)
            res = run_benchmark(name, suite, env, tmp_path)
            benchmarks[name] = res
            status = "ok" if res["returncode"] == 0 else f"FAILED ({res['returncode']})"
            print(f"{res['seconds']:.1f} s {status}", flush=True)
            if res["returncode"]:
                print(res["stderr_tail"][-1500:], file=sys.stderr)
    result = {"schema": 1, "suite": suite, "date": started.isoformat(timespec="seconds"),
              "git": git, "source": {k: v for k, v in source.items() if k != "path"},
              "machine": machine, "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "seconds": time.perf_counter() - t0,
              "benchmarks": benchmarks}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = (f"{started:%Y%m%d-%H%M%S}-{git['short'] or 'nogit'}"
            f"{'-dirty' if git['dirty'] else ''}-{suite}")
    path = args.results_dir / f"{stem}.json"
    text = json.dumps(result, indent=1)
    path.write_text(text + "\n")
    if not args.no_latest:
        (args.results_dir / "latest.json").write_text(text + "\n")
    print(f"suite: {result['seconds']:.0f} s; wrote {path}"
          f"{'' if args.no_latest else ' and latest.json'}")
    return int(any(b["returncode"] for b in benchmarks.values()))


if __name__ == "__main__":
    sys.exit(main())
