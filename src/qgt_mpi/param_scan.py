"""Parameter scans in one MPI job: one deck key of a ``[model]`` over many values (docs/api.md).

A scan (e.g. tMoTe₂ twist angles, theory §2.5a) is many independent runs of the same deck
with one model key changed. Run as separate ``qgt-mpi run`` jobs, each pays the start-up
(interpreter, MPI, PETSc imports), the set-up checks and a k-pass split over all ranks,
whose evaluation phase (theory §4: the μ(ν) solves and the sweep) does not shrink with the
rank count. Here the values are dealt to the ranks instead: value i is computed by rank
i mod size, alone (``MPI.COMM_SELF``), through :func:`qgt_mpi.api.compute` — the code path
of ``qgt-mpi run`` — and the results are gathered to every rank. So

* each value's result is the one-rank result, bit for bit, whatever the rank count (a scan
  is rank-count invariant by construction), and
* the only communication is the argument check before the values and, after them, the
  error check and one ``allgather`` of the results; an error on any rank (a bad value, a
  failed solve) is raised on every rank once the others have finished their values, never
  leaving a rank waiting.

Nothing here adds physics: every number of a scan is that of :func:`compute` (theory §4–§5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mpi4py import MPI

from qgt_mpi.api import InputError, Quantity, Result, agree_arguments, compute, deck_model

__all__ = ["Scan", "scan"]

_NOT_SETTINGS = ("pools", "comm")  # compute() keywords a scan fixes itself


class Scan:
    """The results of :func:`scan`: one :class:`~qgt_mpi.api.Result` per value, in order.

    Attributes
    ----------
    key : the scanned ``[model]`` key. values : (n,) the values, in the order given.
    results : list of Result (files are written with ``scan(..., save=...)``; these
        in-memory copies carry no run state and cannot be saved again).
    seconds : (n,) wall time of each value's model build and compute on its rank (s).
    """

    def __init__(self, key: str, values: Sequence, results: list[Result],
                 seconds: np.ndarray) -> None:
        self.key, self.values, self.results = key, np.asarray(values), results
        self.seconds = np.asarray(seconds, dtype=float)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> Result:
        return self.results[i]

    def stack(self, name: str) -> Quantity:
        """Quantity ``name`` of every value stacked along a leading axis named ``key``.

        ``name`` is a Result attribute (``sigma_xy``, ``mu_solved``, ``chern``, ...) or a
        ``geometry``/``bands`` entry (``trace_integral``, ``bandwidth``, ``min_gap``, ...).
        """
        parts = [_lookup(r, name) for r in self.results]
        first = parts[0]
        dims = (self.key, *getattr(first, "dims", ()))
        return Quantity(np.stack([np.asarray(p) for p in parts]), dims,
                        getattr(first, "units", ""), {self.key: self.values})


def _lookup(result: Result, name: str) -> Any:
    """A Result attribute, else its geometry or bands entry (KeyError naming ``name``)."""
    for table in (result.geometry, result.bands):
        if name in table and not hasattr(Result, name):
            return np.asarray(table[name])
    try:
        return getattr(result, name)
    except AttributeError:
        msg = f"{name!r}: not a quantity, geometry or bands entry of the results"
        raise KeyError(msg) from None


def _check(kind: str, key: str, values: Sequence, model: Mapping | None,
           settings: Mapping, save: str | None) -> list:
    """The scan's own arguments (compute() checks the rest); the values as a list."""
    if not isinstance(kind, str) or not isinstance(key, str) or not key:
        raise InputError("key", key, "kind and key must be strings (a [model] key)")
    if key == "kind" or key in (model or {}):
        raise InputError("key", key, "is the scanned key; do not give it in model= as well")
    for name in _NOT_SETTINGS:
        if name in settings:
            raise InputError(name, settings[name], "a scan deals its values to the ranks "
                             "itself (each value on one rank); leave it out")
    values = [v.item() if isinstance(v, np.generic) else v for v in np.ravel(
        np.asarray(values, dtype=object))]
    if not values:
        raise InputError("values", values, "need at least one value")
    if save is not None:
        try:
            save.format(index=0, value=values[0])
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError("save", save, f"must be a format string of {{index}} and "
                             f"{{value}} ({exc})") from None
    return values


def scan(kind: str, key: str, values: Sequence, /, *, model: Mapping | None = None,
         comm: MPI.Comm | None = None, save: str | None = None, overwrite: bool = False,
         **settings: Any) -> Scan:
    """``compute`` of the model ``deck_model(kind, **model, key=value)`` for every value.

    Collective over ``comm`` (None: ``MPI.COMM_WORLD``): every rank passes the same
    arguments and gets the same :class:`Scan`. Value i is built and computed by rank
    i mod ``comm.size`` alone (``MPI.COMM_SELF``; see the module doc), so the results do not
    depend on the rank count.

    Parameters
    ----------
    kind : ``model.kind`` (e.g. "tmd_continuum").
    key, values : the scanned ``[model]`` key (e.g. "theta") and its values.
    model : the other ``[model]`` keys (e.g. ``{"params": "wang2024", "shells": 3}``).
    save : optional file-name pattern with ``{index}`` and ``{value}`` (e.g.
        ``"tmote2_{index:02d}.h5"``): each value's result file, written by its rank as
        ``Result.save`` writes it. overwrite : replace existing files.
    **settings : :func:`compute`'s keywords (``kgrid``, ``temperature``, ``mu``, ``delta``,
        ``degeneracy``, ``filling``, ``filling_bands``, ``solver``, ...), except ``pools``.

    Returns
    -------
    Scan, identical on every rank.

    Raises
    ------
    InputError (or the first failing value's exception) on every rank.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    error: BaseException | None = None
    given, values, text = values, [], None
    try:
        values = _check(kind, key, given, model, settings, save)
        text = repr((kind, key, values, sorted((model or {}).items())))
    except Exception as exc:
        error = exc
    seen = comm.allgather(text)  # every rank, also one whose check failed
    if error is None and None not in seen and len(set(seen)) > 1:
        error = InputError("values", given, "scan is collective: every rank must pass the "
                           "same kind, key, values and model keys")
    agree_arguments(comm, error)
    mine: dict[int, tuple] = {}
    error = None
    for i in range(comm.rank, len(values), comm.size):
        t0 = MPI.Wtime()
        try:
            res = compute(deck_model(kind, **{**(model or {}), key: values[i]}),
                          comm=MPI.COMM_SELF, **settings)
            if save is not None:
                res.save(save.format(index=i, value=values[i]), overwrite)
        except Exception as exc:  # raised on every rank below, after the gather
            error = exc
            break
        mine[i] = (res.transport, res.geometry, res.bands, res.groups, res.info,
                   MPI.Wtime() - t0)
    agree_arguments(comm, error)
    gathered: dict[int, tuple] = {}
    for part in comm.allgather(mine):
        gathered.update(part)
    results = [Result(g[0], g[1], g[2], groups=g[3], info=g[4])
               for g in (gathered[i] for i in range(len(values)))]
    return Scan(key, values, results, np.array([gathered[i][5] for i in range(len(values))]))
