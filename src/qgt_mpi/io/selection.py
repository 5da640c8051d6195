"""Selection of sweep points by value (``--mu``, ``--delta``, ``--temperature``). Serial.

Shared by ``qgt-mpi info`` and ``qgt-mpi plot``: a requested value picks the nearest point of
the sweep (temperature and δ nearest in log), and the caller states the actual value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Selection:
    """Requested values of each sweep axis (None: the caller's default)."""

    temperature: list[float] | None = None
    mu: list[float] | None = None
    delta: list[float] | None = None


def nearest(values: np.ndarray, targets: list[float], log: bool = False) -> list[int]:
    """Indices of the points of ``values`` nearest each target (duplicates removed)."""
    out: list[int] = []
    for t in targets:
        if log and (t <= 0 or np.any(values <= 0)):
            raise ValueError(f"{t}: log-spaced axes need positive values")
        d = np.abs(np.log(values / t)) if log else np.abs(values - t)
        i = int(np.argmin(d))
        if i not in out:
            out.append(i)
    return out


def delta_entries(delta: np.ndarray, targets: list[float]) -> list[int]:
    """δ entries (rows of (n_delta, n_bands)) nearest each target: smallest max_n |ln(δ_n/t)|.

    An entry with the same δ for all bands wins over a mixed one at equal distance.
    """
    out: list[int] = []
    for t in targets:
        if t <= 0:
            raise ValueError(f"delta {t}: must be > 0 meV")
        i = int(np.argmin(np.max(np.abs(np.log(np.atleast_2d(delta) / t)), axis=1)))
        if i not in out:
            out.append(i)
    return out
