"""Read on one rank, broadcast once: large model tables reach every rank without re-reading.

``root_call`` runs a reader on rank 0 and broadcasts its result, a dict of numpy arrays and
small picklable values; arrays go by buffer ``Bcast`` (no pickled copy), so a rank holds one
copy of the table. A reader error is broadcast too and raised on every rank.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
from mpi4py import MPI


def prepare(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with every array contiguous in native byte order (local, on ``root``).

    Arrays read from HDF5 attributes carry an explicit byte order (dtype ``'<d'``), which
    MPI's buffer typemap does not know (it raised ``KeyError: '<d'`` inside the broadcast on
    rank 0 while the other ranks waited); object arrays cannot go by buffer and are refused.
    Call it where an error can still be broadcast (:func:`root_call` does).
    """
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"{key}: an object array cannot be broadcast by buffer")
            value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("="))
        out[key] = value
    return out


def broadcast_arrays(comm: MPI.Comm, payload: dict[str, Any] | None, root: int = 0
                     ) -> dict[str, Any]:
    """``payload`` from ``root`` on every rank; ndarray values by buffer broadcast. Collective.

    ``payload`` matters on ``root`` only (None elsewhere); its arrays must have passed
    :func:`prepare` (they are sent as raw bytes).
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
        if buf.size:  # as bytes: any fixed-size dtype, no typemap lookup
            comm.Bcast([buf.reshape(-1).view(np.uint8), MPI.BYTE], root=root)
        out[key] = buf
    return out


def _sendable(exc: Exception) -> Exception:
    """``exc`` if it pickles (and unpickles), else a RuntimeError with its one-line text: an
    exception that cannot be broadcast would fail on the root only and leave the other
    ranks waiting in the broadcast."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        text = str(exc).splitlines()[0] if str(exc) else ""
        return RuntimeError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    return exc


def root_call(comm: MPI.Comm, func: Callable[[], dict[str, Any]], root: int = 0
              ) -> dict[str, Any]:
    """Call ``func`` on ``root`` only and broadcast its dict result or its error. Collective.

    Every rank must call it. Exceptions of ``func`` must be picklable; the same exception
    is raised on every rank.
    """
    result, error = None, None
    if comm.rank == root:
        try:
            result = prepare(func())
            pickle.dumps({k: v for k, v in result.items() if not isinstance(v, np.ndarray)})
        except Exception as exc:  # broadcast, then raised everywhere
            error = _sendable(exc)
    error = comm.bcast(error, root=root)
    if error is not None:
        raise error
    return broadcast_arrays(comm, result, root)
