"""The end of a run: geometry reductions and the sweep evaluated into the result file.

Kept apart from driver.py: the evaluation is streamed (transport/stream.py) into the
partial result file (io/sweep_file.py) unit by unit; every checkpoint interval and on a
stop signal it writes a checkpoint that marks the whole k-pass and the finished units as
done (restart.py), so the rerun (also after ``kill -9``) goes straight to the units still
missing.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from mpi4py import MPI

from qgt_mpi.io.deck import RunConfig
from qgt_mpi.io.sweep_file import FileSink
from qgt_mpi.kpass import EXIT_INTERRUPTED, KPass
from qgt_mpi.parallel import CollectiveError, collective
from qgt_mpi.parallel.signals import StopFlag
from qgt_mpi.restart import Checkpointer


def streamed_finish(comm: MPI.Comm, config: RunConfig, job: KPass, output: str,
                    log: logging.Logger, saver: Checkpointer, stop: StopFlag):
    """Geometry, then the sweep evaluated in units streamed into the partial result file.

    Collective. A stop signal checkpoints the finished units (the partial file keeps their
    data) and raises status 3; any other failure removes the partial file. Returns
    ``({}, geometry)``: the observables are in the file, not in memory.
    """
    with collective(comm):
        geometry = job.geometry.finish(comm, job.nk, job.model.cell_area)
    sums = job.sums
    shape = (sums.mu.size, len(sums.delta), sums.temperature.size)
    resumed = sums.sweep_done is not None and bool(np.any(sums.sweep_done))
    with collective(comm, OSError):
        sink = FileSink(comm, output, shape, resumed)
    if resumed and not sink.resumed:
        sums.sweep_done[:] = False  # partial file gone: evaluate everything again

    def on_stop(units: list[int]) -> None:  # on a signal, and every checkpoint interval
        sink.flush()
        sums.sweep_done[units] = True
        saver.done[:] = True  # the k-pass is complete (its last blocks may be unsaved)
        saver.save(comm, job, sorted(job.kfields))  # with their k-resolved fields

    try:
        sums.finish(comm, job.nk * job.model.cell_area, config.degeneracy, sink, log,
                    config.run.progress_percent, stop, on_stop, saver.due)
    except CollectiveError as exc:
        sink.close()
        if exc.status != EXIT_INTERRUPTED:
            if comm.rank == 0 and os.path.exists(sink.path):
                os.remove(sink.path)
        raise
    sink.close()
    return {}, geometry
