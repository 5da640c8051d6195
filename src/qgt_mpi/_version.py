"""The version of qgt_mpi — the one definition (pyproject.toml reads it) — and the source commit.

``source_commit`` names the git commit of the code that ran (with ``-dirty`` when the work
tree had uncommitted changes), for the provenance of every result file; ``"unknown"`` when
the package is not a git checkout (an installed wheel). CHANGELOG.md records the changes.
"""

from __future__ import annotations

import functools
import os
import subprocess

__version__ = "0.3.0"


@functools.cache
def source_commit() -> str:
    """``git describe``-style commit of the package's source tree, or "unknown". Local.

    Called on rank 0 only by the writers (results.provenance broadcasts it).
    """
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty.strip() else "") if commit else "unknown"
