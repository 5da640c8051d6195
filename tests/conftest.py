"""Shared pytest set-up for serial runs and for ``mpirun -n N python -m pytest -m mpi``.

- ``comm`` is ``MPI.COMM_WORLD`` (tests and cli.py are the only code that touch it);
- tests not marked ``mpi`` are skipped when the world has more than one rank;
- under mpirun only rank 0 prints pytest's report; other ranks print one line per failure;
- a per-test faulthandler timeout kills a hung rank (with tracebacks), so mpirun ends;
- a test that launches Python, mpirun or a shell (``runner.qgt``, ``subprocess``) fails unless
  it is marked ``subprocess``, so ``-m "not subprocess"`` (``make check``) is really in-process.
"""

from __future__ import annotations

import faulthandler
import os
import re
import subprocess
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

try:  # Property tests on a shared machine: no per-example deadline, no "too slow" health
    # check (a loaded machine stalls a draw for seconds); a test's own @settings still win.
    from hypothesis import HealthCheck
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile(
        "qgt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    _hypothesis_settings.load_profile(os.environ.get("QGT_HYPOTHESIS_PROFILE", "qgt"))
except ImportError:
    pass

_hang_stream: TextIO | None = None

# Programs whose launch makes a test a `subprocess` test (matplotlib's fc-list and the like
# are not launches of the code under test); a shell (shell=True, bash, sh) always is.
_LAUNCHERS = ("python", "mpirun", "mpiexec", "orterun", "srun")
_SHELLS = ("bash", "sh")
# The test being run when it is not marked `subprocess`; None outside tests.
_unmarked_test: str | None = None


def _launches_code(args: object, shell: bool) -> bool:
    """Whether a Popen command line starts Python, an MPI launcher or a shell."""
    if shell:
        return True
    first = args if isinstance(args, str | bytes | os.PathLike) else next(iter(args), "")
    program = os.fsdecode(first)
    name = os.path.basename(program)
    return program == sys.executable or name in _SHELLS or name.startswith(_LAUNCHERS)


class _MarkedPopen(subprocess.Popen):
    """subprocess.Popen that refuses launches from tests not marked ``subprocess``."""

    def __init__(self, args, *rest, **kwargs) -> None:
        if _unmarked_test is not None and _launches_code(args, kwargs.get("shell", False)):
            raise RuntimeError(
                f"{_unmarked_test} launches {args!r} but is not marked subprocess: add "
                "@pytest.mark.subprocess (make check runs -m 'not subprocess')")
        super().__init__(args, *rest, **kwargs)


subprocess.Popen = _MarkedPopen  # type: ignore[misc]  (subprocess.run looks it up here)


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
    """Dump every thread's traceback and exit if one test runs longer than HANG_SECONDS;
    refuse process launches (set-up of module fixtures included) unless marked subprocess."""
    global _unmarked_test
    _unmarked_test = None if item.get_closest_marker("subprocess") else item.nodeid
    try:
        if HANG_SECONDS > 0 and _hang_stream is not None:
            faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=_hang_stream)
            try:
                yield
            finally:
                faulthandler.cancel_dump_traceback_later()
        else:
            yield
    finally:
        _unmarked_test = None


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
