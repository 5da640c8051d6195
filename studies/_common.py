"""Helpers shared by the studies that run ``qgt-mpi`` as a process (tbg_transport, tbg_superfluid).

Nothing is measured here: this module only locates the console script of the venv that runs
the study, gives ``mpirun`` the OpenMPI variables a root account needs, and formats TOML
values for the input decks the studies write (the benchmarks have their own copy in
bench/_common.py, so that either folder runs without the other).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QGT = Path(sys.executable).parent / "qgt-mpi"


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
