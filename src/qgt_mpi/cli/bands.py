"""``qgt-mpi bands DECK [-o OUT] [--overwrite] [--pools P]``: only the band path of a deck.

Contract
--------
The deck's ``[bands]`` path (io/deck_bands.py) is solved exactly as the extra phase of a
run does it (qgt_mpi.run.bandpath: the deck's own solver, dense or windowed, distributed over
the ranks and pools), without the k-grid pass, the sweep or the geometry. The result file
has the provenance root attributes, ``/model``, ``/bands_path`` and ``/timing``; it is
written collectively under ``OUT.partial`` and renamed when whole, after the same output
safety checks and lock as ``run`` (io/output_guard.py). The default output is the deck's
``[output] file`` with ``_bands`` added to its stem, so it never replaces the run's result.

Failures follow the rule of every phase: an input error (no ``[bands]`` section, a point
the lattice does not define, a bad solver window) stops every rank with one line and exit
status 2 before anything is computed; a failure on one rank during the solve stops all
ranks with one message (status 1) and leaves no file.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from mpi4py import MPI

from qgt_mpi.io import writer
from qgt_mpi.io.checks import MISSING, InputError
from qgt_mpi.io.deck import RunConfig
from qgt_mpi.io.output_guard import guard, input_paths
from qgt_mpi.parallel import Timers, broadcast, collective
from qgt_mpi.parallel.pools import make_pools
from qgt_mpi.parallel.timing import format_table
from qgt_mpi.run.bandpath import bands_phase, resolve_path
from qgt_mpi.run.blocks import DENSE_BLOCK_K
from qgt_mpi.run.results import _model_attrs, provenance
from qgt_mpi.run.setup import prepare

PHASES = ["setup", "bands"]


def default_output(config: RunConfig) -> str:
    """``[output] file`` with ``_bands`` before the extension (``results/x_bands.h5``)."""
    root, ext = os.path.splitext(config.output.file)
    return f"{root}_bands{ext or '.h5'}"


def run_bands(comm: MPI.Comm, config: RunConfig, output: str, log: logging.Logger,
              pools: int = 1, *, overwrite: bool = False, output_key: str = "-o") -> None:
    """Solve the deck's band path and write ``output``. Collective over ``comm``.

    Parameters
    ----------
    comm : all ranks (the CLI passes COMM_WORLD).
    config : the parsed deck; its ``[bands]`` section is required.
    output : result file; checked and locked like ``run``'s (``overwrite`` to replace).
    log : the package logger (rank 0 at INFO).
    pools : solver pools (must divide the ranks; used by windowed solvers).
    output_key : how the output was named in the errors (``-o`` or ``output.file``).

    Raises
    ------
    CollectiveError
        On every rank: status 2 for input errors (also a deck without ``[bands]``), 1 for
        failures of the solve or the write (no result file is left).
    """
    lock = None
    try:
        with collective(comm):
            if config.bands is None:
                raise InputError("bands", MISSING, "qgt-mpi bands needs a [bands] section "
                                 '(path = "G K M G", points = 120; docs/input.md)')
            lock = guard(comm, output, config.source, overwrite, output_key,
                             input_paths(config))
        _locked(comm, config, output, log, pools)
    finally:
        if lock is not None:
            lock.release()


def _locked(comm: MPI.Comm, config: RunConfig, output: str, log: logging.Logger,
            pools: int) -> None:
    """Set-up, path, file (see :func:`run_bands`). Collective."""
    timers = Timers()
    with timers.phase("setup"):
        layout = make_pools(comm, pools)
        model, solver, _delta = prepare(comm, config, output, layout.pool)
        with collective(comm):
            path = resolve_path(config.bands, model)
    log.info("qgt_mpi bands: %s", config.title)
    log.info("model %s, %d orbitals, %d rank(s) in %d pool(s)",
             model.describe().get("kind", "?"), model.norb, comm.size, pools)
    phase = bands_phase(comm, solver, model, path, log, timers, config.run.progress_percent,
                        config.run.chunk or DENSE_BLOCK_K)
    if phase is None:  # no path: run_bands refuses a deck without [bands] before this
        raise InputError("bands", MISSING, "qgt-mpi bands needs a [bands] section")
    data, attrs = phase
    timing = timers.reduce(comm, PHASES)
    log.info("timing per phase over %d rank(s):\n%s", comm.size, format_table(PHASES, timing))
    result = writer.ResultFile(
        attrs=provenance(comm, config, broadcast(comm, timers.elapsed())),
        groups={"model": {}, "bands_path": data,
                "timing": {"phases": (np.array(PHASES), {}), "seconds": (timing, {})}},
        group_attrs={"model": _model_attrs(model, config), "bands_path": attrs})
    with collective(comm):
        try:
            writer.write(comm, output, result)
        except BaseException:
            if comm.rank == 0 and os.path.exists(writer.partial_name(output)):
                os.remove(writer.partial_name(output))
            raise
    log.info("band path written to %s (%.2f s)", os.path.abspath(output), timers.elapsed())
