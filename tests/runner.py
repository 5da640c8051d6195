"""Run the real ``qgt-mpi`` command under ``mpirun`` from a serial test (subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The dispersive Haldane model the CLI-level tests share (deck syntax, docs/input.md).
HALDANE_MODEL = """[model]
kind = "haldane"
t1 = 1.0
t2 = 0.3
mass = 0.2
phi = 1.1
"""

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMP_NUM_THREADS": "1",
}


def _clean_env() -> dict[str, str]:
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
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**_clean_env(), **extra}, cwd=cwd or REPO)
