"""Deck section ``[bands]``: band structure along a path through the Brillouin zone.

Contract
--------
``[bands]`` holds two keys (docs/input.md, "Band structure along a path"):

- ``path``: a string of at least two points separated by spaces, each a named point
  (``G``/``Γ``, ``K``, ``K'``, ``M``, ``X``, ``Y``, ``S``) or reduced coordinates ``f1,f2``
  (k = f1 b1 + f2 b2, fractions such as ``1/3`` allowed; qgt_mpi.models.kpath); two consecutive
  points may not be the same token (a segment of zero length);
- ``points``: the total number N of k-points along the path, an integer in
  [number of corners, ``POINTS_MAX``], default ``POINTS_DEFAULT``; they are distributed over
  the segments by length, every corner being one of them (qgt_mpi.models.kpath.sample_path).

Which names exist depends on the lattice (K on hexagonal lattices, X/Y/S on others) and on
the model (its own ``high_symmetry_points``); that is checked once the model is built
(qgt_mpi.run.bandpath.resolve_path), with the same one-line :class:`InputError`. Local: no MPI.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial

from qgt_mpi.io.checks import InputError, Table, integer, string
from qgt_mpi.models.kpath import check_token, tokens

POINTS_DEFAULT = 120
POINTS_MAX = 10_000  # each point is one eigensolve (a factorisation for windowed solvers)
BANDS_KEYS = {"path", "points"}


@dataclass(frozen=True)
class BandsSpec:
    """``[bands]``: the path text as written and the total number of points along it."""

    path: str
    points: int = POINTS_DEFAULT

    @property
    def tokens(self) -> list[str]:
        """The points of the path as written (named points or ``f1,f2``)."""
        return tokens(self.path)


def _path(key: str, value: object) -> str:
    """A path text: at least two valid points, no zero-length segment (InputError)."""
    text = string(key, value)
    points = tokens(text)
    if len(points) < 2:
        raise InputError(key, value, 'must name at least two points, e.g. "G K M G" or '
                         '"0,0 1/2,0 1/3,1/3"')
    for token in points:
        try:
            check_token(token)
        except ValueError:
            raise InputError(key, value, f"point {token!r} is neither a named point (G/Γ, K, "
                             "K', M, X, Y, S) nor reduced coordinates 'f1,f2' (e.g. 1/3,1/3)"
                             ) from None
    for a, b in itertools.pairwise(points):
        if a == b:
            raise InputError(key, value, f"two consecutive points are both {a!r} (a segment of "
                             "zero length)")
    return text


def parse_bands(top: Table) -> BandsSpec | None:
    """Read the optional ``[bands]`` section (None without it). Local.

    Parameters
    ----------
    top : the deck's top-level table (records ``bands.points`` when it is defaulted).

    Raises
    ------
    InputError
        For an unknown key, a missing or malformed ``path``, or ``points`` not an integer in
        [number of corners of the path, POINTS_MAX].
    """
    if "bands" not in top.data:
        return None
    t = top.sub("bands", BANDS_KEYS)
    path = t.get("path", _path, what=' (a string such as "G K M G")')
    corners = len(tokens(path))
    points = t.get("points", partial(integer, low=2, high=POINTS_MAX), POINTS_DEFAULT)
    if points < corners:
        raise InputError(t.key("points"), points, f"must be >= {corners}, the number of points "
                         "named in bands.path (every corner is a point of the path)")
    return BandsSpec(path=path, points=points)
