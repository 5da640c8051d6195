"""Read on one rank, broadcast once: large model tables reach every rank without re-reading.

``root_call`` runs a reader on rank 0 and broadcasts its result, a dict of numpy arrays and
small picklable values; arrays go by buffer ``Bcast`` (no pickled copy), so a rank holds one
copy of the table. A reader error is broadcast too and raised on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from mpi4py import MPI


def broadcast_arrays(comm: MPI.Comm, payload: dict[str, Any] | None, root: int = 0
                     ) -> dict[str, Any]:
    """``payload`` from ``root`` on every rank; ndarray values by buffer broadcast. Collective.

    ``payload`` matters on ``root`` only (None elsewhere).
    """
    meta = None
    if payload is not None and comm.rank == root:
        meta = {k: (("array", v.shape, v.dtype.str) if isinstance(v, np.ndarray) else ("obj", v))
                for k, v in payload.items()}
    meta = comm.bcast(meta, root=root)
    out: dict[str, Any] = {}
    for key, (tag, *rest) in meta.items():
        if tag == "obj":
            out[key] = rest[0]
            continue
        shape, dtype = rest
        buf = (np.ascontiguousarray(payload[key]) if payload is not None and comm.rank == root
               else np.empty(shape, dtype=np.dtype(dtype)))
        if buf.size:
            comm.Bcast(buf, root=root)
        out[key] = buf
    return out


def root_call(comm: MPI.Comm, func: Callable[[], dict[str, Any]], root: int = 0
              ) -> dict[str, Any]:
    """Call ``func`` on ``root`` only and broadcast its dict result or its error. Collective.

    Every rank must call it. Exceptions of ``func`` must be picklable; the same exception
    is raised on every rank.
    """
    result, error = None, None
    if comm.rank == root:
        try:
            result = func()
        except Exception as exc:  # broadcast, then raised everywhere
            error = exc
    error = comm.bcast(error, root=root)
    if error is not None:
        raise error
    return broadcast_arrays(comm, result, root)
