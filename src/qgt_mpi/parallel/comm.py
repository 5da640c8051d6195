"""Domain decomposition and reductions over a communicator."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from mpi4py import MPI

T = TypeVar("T")


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


def broadcast(comm: MPI.Comm, value: T, root: int = 0) -> T:
    """``value`` from ``root`` on every rank (pickled objects). Collective."""
    return comm.bcast(value, root=root)


def allgather(comm: MPI.Comm, value: T) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank. Collective."""
    return comm.allgather(value)


def allgather_rows(comm: MPI.Comm, local: np.ndarray) -> np.ndarray:
    """Concatenate every rank's row block (axis 0) in rank order, on every rank. Collective.

    Blocks may have different numbers of rows; trailing shapes and dtypes must agree.
    """
    local = np.ascontiguousarray(local)
    if comm.size == 1:
        return local.copy()
    counts = [int(c) for c in comm.allgather(local.size)]
    rows = comm.allgather(local.shape[0])
    out = np.empty((sum(rows), *local.shape[1:]), dtype=local.dtype)
    displs = [sum(counts[:i]) for i in range(len(counts))]
    comm.Allgatherv(local, [out, (counts, displs)])
    return out


UNION_TAG = 7701  # point-to-point tag of allunion's tree (no other message uses it)


def allunion(comm: MPI.Comm, keys: np.ndarray) -> np.ndarray:
    """Sorted union of every rank's sorted, unique int64 ``keys``, on every rank. Collective.

    A binomial-tree merge towards rank 0 (at most log2(P) messages per rank, each no larger
    than the union), then one broadcast: a rank holds a few copies of the union, never the
    P arrays an allgather would put on every rank. Equal to
    ``np.unique(np.concatenate(allgather(comm, keys)))``.
    """
    union = np.ascontiguousarray(keys, dtype=np.int64)
    step = 1
    while step < comm.size:
        if comm.rank % (2 * step):  # send the merged subtree to its parent, done
            comm.send(union, dest=comm.rank - step, tag=UNION_TAG)
            break
        if comm.rank + step < comm.size:
            union = np.union1d(union, comm.recv(source=comm.rank + step, tag=UNION_TAG))
        step *= 2
    n = comm.bcast(union.size if comm.rank == 0 else None, root=0)
    if comm.rank != 0:
        union = np.empty(n, np.int64)
    comm.Bcast(union, root=0)
    return union


def agreed_sum(comm: MPI.Comm, local: np.ndarray) -> np.ndarray:
    """Sum over ranks that is bit-identical on every rank (Allreduce, then root's copy).

    An Allreduce may round differently on different ranks; code that branches on the value
    (an optimiser, a root finder) needs every rank to see the same bits. Collective.
    """
    total = allreduce_array(comm, np.asarray(local, dtype=float))
    comm.Bcast(total, root=0)
    return total


def ranks_on_node(comm: MPI.Comm) -> int:
    """Number of ranks of ``comm`` sharing this rank's node (shared memory). Collective."""
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.size
    finally:
        node.Free()
