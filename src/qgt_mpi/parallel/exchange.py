"""Point-to-point exchange of per-rank arrays in one collective step (k-pass link corners).

The k-pass (kpass.py) hands each rank the eigenvectors other blocks of the same round own
at its plaquette corners (geometry/corners.py says which), instead of solving them again.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def exchange(comm: MPI.Comm, outgoing: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Send ``outgoing[dest]`` to each rank ``dest``; returns {source: array}. Collective.

    Every rank calls it, with an empty dict if it sends nothing; arrays travel as pickled
    objects (one all-to-all), so shapes and dtypes need not agree between pairs.
    """
    sends = [outgoing.get(dest) for dest in range(comm.size)]
    received = comm.alltoall(sends)
    return {src: arr for src, arr in enumerate(received) if arr is not None}
