"""MPI helpers for the tests: collective assertions and a directory shared by all ranks.

Every function here is collective over ``comm``: all ranks must call it, in the same
order, with the same arguments (except ``ok``/``msg`` in :func:`assert_all`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mpi4py import MPI

T = TypeVar("T")


def assert_all(comm: MPI.Comm, ok: bool, msg: str) -> None:
    """Fail on every rank if ``ok`` is false on any rank.

    Collective over ``comm``. The message raised everywhere is the one from the lowest
    failing rank, prefixed with the failing ranks, so each rank's report says the same.
    A plain ``assert`` failing on one rank only would leave the others waiting in the
    next collective call.
    """
    failed = comm.allgather(not ok)
    if not any(failed):
        return
    ranks = [r for r, bad in enumerate(failed) if bad]
    first_msg = comm.bcast(msg if comm.rank == ranks[0] else None, root=ranks[0])
    raise AssertionError(f"[rank(s) {ranks} of {comm.size}] {first_msg}")


def on_root(comm: MPI.Comm, make: Callable[[], T]) -> T:
    """Run ``make()`` on rank 0 and broadcast its result, or its exception, to all ranks.

    Collective over ``comm``; an exception on rank 0 is re-raised on every rank instead
    of leaving the others blocked in the broadcast.
    """
    result: T | None = None
    error: str | None = None
    if comm.rank == 0:
        try:
            result = make()
        except Exception as exc:  # re-raised below, on every rank
            error = f"rank 0: {type(exc).__name__}: {exc}"
    result, error = comm.bcast((result, error), root=0)
    if error is not None:
        raise RuntimeError(error)
    return result  # type: ignore[return-value]


def shared_tmpdir(comm: MPI.Comm, base: Path | str, prefix: str) -> Path:
    """Create a fresh directory under ``base`` on rank 0; return its path on every rank.

    Collective over ``comm``. ``base`` must be visible to all ranks (on several nodes:
    a shared file system, not /tmp).
    """

    def make() -> str:
        os.makedirs(base, exist_ok=True)
        return tempfile.mkdtemp(prefix=prefix, dir=base)

    path = Path(on_root(comm, make))
    comm.Barrier()
    return path


def remove_shared(comm: MPI.Comm, path: Path) -> None:
    """Remove ``path`` on rank 0 once every rank is done with it. Collective over ``comm``."""
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)
