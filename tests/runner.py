"""Run the real ``qgt-mpi`` command under ``mpirun`` from a serial test (subprocess).

Every test that uses this module launches processes: mark it ``@pytest.mark.subprocess``
(conftest.py refuses the launch otherwise).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMP_NUM_THREADS": "1",
}


def clean_env() -> dict[str, str]:
    """Environment for a child mpirun: drop the parent's singleton-MPI variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_COMM_WORLD", "OMPI_MCA_ess", "PMIX_", "OMPI_FILE"))}
    env.update(MPI_ENV)
    return env


def qgt(args: list[str], np: int = 0, timeout: float = 300,
        cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    """Run ``python -m qgt_mpi ARGS``, under ``mpirun -n np`` when np > 0.

    ``env``: extra environment variables (exported to every rank with ``-x``).
    """
    cmd = [sys.executable, "-m", "qgt_mpi", *args]
    extra = env or {}
    if np:
        exports = [x for name in extra for x in ("-x", name)]
        cmd = ["mpirun", "--quiet", "-n", str(np), *exports, *cmd]  # no banner on exit 2
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**clean_env(), **extra}, cwd=cwd or REPO)
    proc.stderr = without_launcher_noise(proc.stderr)
    return proc


# Open MPI 4.1's libevent in mpirun sometimes prints this while the ranks exit (seen once in
# CI on a "one line" test); it is the launcher's, not qgt-mpi's, and nothing can suppress it.
_LAUNCHER_NOISE = re.compile(r"^\[warn\] Epoll (MOD|ADD|DEL)\(\d+\) on fd \d+ failed\..*$")


def without_launcher_noise(text: str) -> str:
    """``text`` without the lines of :data:`_LAUNCHER_NOISE` (mpirun's libevent warnings)."""
    return "".join(ln for ln in text.splitlines(keepends=True)
                   if not _LAUNCHER_NOISE.match(ln.rstrip("\n")))


def start(args: list[str], np: int) -> subprocess.Popen:
    """Start ``mpirun -n np python -m qgt_mpi ARGS`` without waiting; stdout and stderr
    come merged, line by line, from ``.stdout`` (for tests that signal a running job)."""
    cmd = ["mpirun", "--quiet", "-n", str(np), sys.executable, "-m", "qgt_mpi", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=clean_env(), cwd=REPO)


def rank_pids(marker: str) -> list[int]:
    """PIDs of the python rank processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if cmd and b"python" in Path(cmd[0].decode()).name.encode() and any(
                marker.encode() in c for c in cmd):
            pids.append(int(entry.name))
    return sorted(pids)


def run_deck(directory: Path, name: str, text: str, np: int = 2, timeout: float = 300
             ) -> tuple[Path, subprocess.CompletedProcess]:
    """Write ``text`` to DIRECTORY/NAME.toml and run it into NAME.h5 (``qgt-mpi run``, under
    ``mpirun -n np`` when np > 0); asserts exit status 0; returns (output path, process)."""
    deck, out = directory / f"{name}.toml", directory / f"{name}.h5"
    deck.write_text(text)
    proc = qgt(["run", str(deck), "-o", str(out)], np=np, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out, proc
