"""The one home of MPI helpers: decomposition, reductions, collective errors, timers.

Every function that communicates takes ``comm`` explicitly; only ``qgt_mpi.cli.main`` (and the
tests) touch ``MPI.COMM_WORLD``.
"""

from qgt_mpi.parallel.comm import (
    agreed_sum,
    allgather,
    allgather_rows,
    allreduce_array,
    allreduce_max,
    allreduce_min,
    allreduce_sum,
    block_range,
    broadcast,
)
from qgt_mpi.parallel.errors import CollectiveError, collective, install_excepthook
from qgt_mpi.parallel.timing import Timers

__all__ = [
    "CollectiveError",
    "Timers",
    "agreed_sum",
    "allgather",
    "allgather_rows",
    "allreduce_array",
    "allreduce_max",
    "allreduce_min",
    "allreduce_sum",
    "block_range",
    "broadcast",
    "collective",
    "install_excepthook",
]
