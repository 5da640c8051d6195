"""Domain decomposition and reductions over a communicator."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def block_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """Balanced contiguous block ``[start, stop)`` of ``n`` items owned by ``rank``.

    The first ``n % size`` ranks get one item more; ranks beyond ``n`` get an empty block,
    so every rank count works (also more ranks than k-points). Local, no communication.
    """
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def allreduce_array(comm: MPI.Comm, array: np.ndarray, op: MPI.Op = MPI.SUM) -> np.ndarray:
    """Element-wise reduction of a numpy array over ``comm``; returns a new array.

    Collective over ``comm``; every rank must pass an array of the same shape and dtype.
    """
    send = np.ascontiguousarray(array)
    recv = np.empty_like(send)
    comm.Allreduce(send, recv, op=op)
    return recv


def allreduce_sum(comm: MPI.Comm, value: float) -> float:
    """Sum of a scalar over ``comm``. Collective."""
    return comm.allreduce(value, op=MPI.SUM)


def allreduce_max(comm: MPI.Comm, value: float) -> float:
    """Maximum of a scalar over ``comm``. Collective."""
    return comm.allreduce(value, op=MPI.MAX)


def allreduce_min(comm: MPI.Comm, value: float) -> float:
    """Minimum of a scalar over ``comm``. Collective."""
    return comm.allreduce(value, op=MPI.MIN)
