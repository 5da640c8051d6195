"""Shared pytest set-up for serial runs and for ``mpirun -n N python -m pytest -m mpi``.

- ``comm`` is ``MPI.COMM_WORLD`` (tests and cli.py are the only code that touch it);
- tests not marked ``mpi`` are skipped when the world has more than one rank;
- under mpirun only rank 0 prints pytest's report; other ranks print one line per failure;
- a per-test faulthandler timeout kills a hung rank (with tracebacks), so mpirun ends.
"""

from __future__ import annotations

import faulthandler
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import _threads  # noqa: F401  (one BLAS thread per rank, as the CLI does; before numpy)

import qgt_mpi  # noqa: F401  (sets H5PY_ALWAYS_USE_MPI, PETSC_DIR before h5py/petsc4py)

# isort: split
import pytest
from mpi4py import MPI
from mpi_util import remove_shared, shared_tmpdir

# Seconds one test may take before its rank dumps all tracebacks and exits (hang guard).
HANG_SECONDS = float(os.environ.get("QGT_TEST_HANG_SECONDS", "600"))

_hang_stream: TextIO | None = None


class _RankFailures:
    """On ranks > 0, replaces pytest's terminal report by one line per failure."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def _report(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            why = crash.message.splitlines()[0] if crash is not None else ""
            sys.__stderr__.write(f"[rank {self.rank}] FAILED {report.nodeid} {why}\n")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._report(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._report(report)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Silence ranks > 0 and open the stream the hang guard writes to."""
    global _hang_stream
    # A copy of the real stderr: during a test fd 2 is captured and would be lost on exit.
    _hang_stream = open(os.dup(sys.__stderr__.fileno()), "w")
    rank = MPI.COMM_WORLD.rank
    if rank > 0:
        config.option.verbose = -2
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)
        config.pluginmanager.register(_RankFailures(rank), "qgt-rank-failures")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the hang-guard stream."""
    global _hang_stream
    if _hang_stream is not None:
        _hang_stream.close()
        _hang_stream = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests not marked ``mpi`` when running on more than one rank."""
    size = MPI.COMM_WORLD.size
    if size == 1:
        return
    skip = pytest.mark.skip(reason=f"serial test (not marked mpi) skipped on {size} ranks")
    for item in items:
        if item.get_closest_marker("mpi") is None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Dump every thread's traceback and exit if one test runs longer than HANG_SECONDS."""
    if HANG_SECONDS > 0 and _hang_stream is not None:
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=_hang_stream)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
    else:
        yield


@pytest.fixture(scope="session")
def comm() -> MPI.Comm:
    """The world communicator (every rank runs every collected test)."""
    return MPI.COMM_WORLD


@pytest.fixture
def tmp_path_shared(
    comm: MPI.Comm, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A fresh directory with the same path on every rank (collective).

    Made under ``$QGT_SHARED_TMPDIR`` (CTest sets it to ``build/pytest-shared``, a
    directory every node sees) and removed afterwards; without it, under rank 0's pytest
    temporary directory (enough on one node).
    """
    name = re.sub(r"\W", "_", request.node.name)[:40] + "-"
    base = os.environ.get("QGT_SHARED_TMPDIR")
    if base:
        path = shared_tmpdir(comm, base, name)
        yield path
        remove_shared(comm, path)
    else:
        root = tmp_path_factory.getbasetemp() if comm.rank == 0 else Path()
        path = shared_tmpdir(comm, root, name)
        yield path
        comm.Barrier()
