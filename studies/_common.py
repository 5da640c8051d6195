"""Helpers shared by the studies that run ``qgt-mpi`` as a process (tbg_transport, tbg_superfluid).

Nothing is measured here: this module locates the console script of the venv that runs the
study and re-exports the two helpers of bench/_common.py that the studies need (``mpi_env``:
the OpenMPI variables a root account needs; ``toml_value``: TOML values for the decks the
studies write), so there is one copy of each.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QGT = Path(sys.executable).parent / "qgt-mpi"

# bench/_common.py under its own name (this module is also called _common; bench/ is not a
# package)
_spec = importlib.util.spec_from_file_location("bench_common", REPO / "bench" / "_common.py")
assert _spec is not None and _spec.loader is not None
_bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_common"] = _bench  # dataclasses look their module up there
_spec.loader.exec_module(_bench)
mpi_env, toml_value = _bench.mpi_env, _bench.toml_value

__all__ = ["QGT", "REPO", "mpi_env", "toml_value"]
