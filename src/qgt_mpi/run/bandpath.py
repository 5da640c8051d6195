"""Band structure along a path: the ``[bands]`` phase of a run and of ``qgt-mpi bands``.

Contract
--------
The deck's path (io/deck_bands.py) is resolved on the model into N Cartesian k-points with
their arc length s and the corners' tick positions (qgt_mpi.models.kpath). Every point is solved
with the run's own solver, ``solver.solve(model, k, velocities=False)``: all bands ε_n(k)
for the dense solver, the window of ``nev`` bands nearest the target for the SLEPc solver,
which also gives the nearest computed eigenvalue below and above the window
(``Eigenpairs.outside``). The points are cut into contiguous shares, one per solver pool
(``block_range`` over ``comm.size // pool.size`` pools; a pool of one rank for the dense
solver), each pool solves its share in batches and the pool roots' rows are gathered in
pool order, so every rank holds the whole path. A k-point is solved the same way whatever
the rank count (fixed start vectors in the windowed solver), so the result does not depend
on it beyond the round-off of a pool's distributed factorisation (tests/test_bands_path.py).

Output: the ``/bands_path`` group, datasets ``energies`` (N, nbands) [meV], ``k`` (N, 2)
Cartesian, ``distance`` (N,) cumulative |Δk|, ``labels`` and ``label_positions`` (corners),
and for windowed solvers ``window_edges`` (N, 2) [meV]; attributes ``path``, ``points``,
``solver`` (units and long names: io/conventions.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from qgt_mpi.io.checks import InputError
from qgt_mpi.io.deck_bands import BandsSpec
from qgt_mpi.logs import Progress
from qgt_mpi.models.kpath import parse_path, sample_path
from qgt_mpi.parallel import Timers, allgather_rows, block_range, collective
from qgt_mpi.parallel.errors import fail_point
from qgt_mpi.solvers.resolve import eigenbasis

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel
    from qgt_mpi.solvers.base import Eigensolver

BATCH_BYTES = 2**27  # dense solves: 128 MiB of H(k) per batch at most


@dataclass(frozen=True)
class BandPath:
    """A resolved path: corner labels and ticks, the points and their arc length."""

    text: str
    labels: list[str]
    ticks: np.ndarray  # (n_corners,) arc length of each corner
    k: np.ndarray  # (N, 2) Cartesian
    distance: np.ndarray  # (N,) arc length from the first point

    @property
    def points(self) -> int:
        """Number of k-points along the path."""
        return len(self.k)


def resolve_path(spec: BandsSpec | None, model: BlochModel) -> BandPath | None:
    """The path of a ``[bands]`` section on ``model`` (None without one). Local.

    Raises
    ------
    InputError
        ``bands.path``: a named point the lattice or model does not define, or a segment
        of zero length (two corners at the same k).
    """
    if spec is None:
        return None
    try:
        labels, corners = parse_path(spec.path, model.reciprocal, model)
        k, distance, ticks = sample_path(corners, spec.points)
    except ValueError as exc:
        raise InputError("bands.path", spec.path, str(exc)) from None
    for arr in (k, distance, ticks):
        arr.flags.writeable = False
    return BandPath(spec.path, labels, ticks, k, distance)


def _batch(solver: Eigensolver, model: BlochModel, share: int, percent: float,
           chunk: int) -> int:
    """Points per solve call, at most ``chunk``: windowed solves (seconds per point) about
    ``percent`` of the share, so that progress is logged; dense solves as many as fit in
    BATCH_BYTES of Hamiltonians (milliseconds per point: one progress line)."""
    if solver.windowed:
        return max(1, min(chunk, math.ceil(share * percent / 100.0)))
    return max(1, min(chunk, BATCH_BYTES // (16 * model.norb**2)))


def solve_path(comm: MPI.Comm, solver: Eigensolver, model: BlochModel, path: BandPath,
               log: logging.Logger, percent: float = 5.0, chunk: int = 4096
               ) -> dict[str, np.ndarray | None]:
    """Energies (and window edges) at every point of ``path``. Collective over ``comm``.

    Parameters
    ----------
    comm : all ranks of the run; its pools are contiguous blocks of ranks.
    solver : the run's solver; ``solver.comm`` is this rank's pool (COMM_SELF: dense).
    model : the BlochModel the solver was made for.
    path : the resolved path (:func:`resolve_path`, identical on every rank).
    log : progress lines (rank 0 reports for all pools: their shares are balanced).
    percent, chunk : progress step and the largest batch of one solve call.

    Returns
    -------
    dict
        ``energies`` (N, nbands) meV and ``window_edges`` (N, 2) meV or None (solvers
        without a window), identical on every rank.

    Raises
    ------
    CollectiveError
        On every rank when any rank fails (the injected test failure
        ``QGT_TEST_FAIL=bands:RANK`` is agreed before any pool communicates).
    """
    pool = solver.comm
    n_pools, me = comm.size // pool.size, comm.rank // pool.size
    lo, hi = block_range(path.points, n_pools, me)
    nb = solver.bands(model)
    rows = np.full((hi - lo, nb + 2), np.nan)  # energies, then edges below/above
    with collective(comm):
        fail_point(comm, "bands")
    progress = Progress(log, "bands path", path.points, percent, unit="points")
    reported = 0
    step = _batch(solver, model, block_range(path.points, n_pools, 0)[1], percent, chunk)
    with collective(comm):
        for start in range(lo, hi, step):
            stop = min(start + step, hi)
            with eigenbasis(solver):  # eigenvalues, also where a run resolves groups
                eig = solver.solve(model, path.k[start:stop], velocities=False)
            rows[start - lo : stop - lo, :nb] = eig.energies
            if eig.outside is not None:
                rows[start - lo : stop - lo, nb:] = eig.outside
            done = min(path.points - reported, (stop - start) * n_pools)  # rank 0 stands
            reported += done  # for every pool: the shares are balanced
            progress.advance(done)
        if not np.all(np.isfinite(rows[:, :nb])):
            raise FloatingPointError("non-finite band energy on the band path")
    everything = allgather_rows(comm, rows if pool.rank == 0 else rows[:0])
    edges = everything[:, nb:] if solver.windowed else None
    return {"energies": everything[:, :nb], "window_edges": edges}


def path_group(path: BandPath, solved: dict[str, np.ndarray | None], solver: Eigensolver
               ) -> tuple[dict[str, tuple[np.ndarray, dict[str, object]]], dict[str, object]]:
    """``/bands_path`` datasets and attributes from a solved path. Local."""
    energies = solved["energies"]
    if energies is None:
        raise ValueError("a solved path needs its energies")
    edges = solved.get("window_edges")
    data: dict[str, tuple[np.ndarray, dict[str, object]]] = {
        "energies": (energies, {}),
        "k": (np.asarray(path.k), {}),
        "distance": (np.asarray(path.distance), {}),
        "labels": (np.array(path.labels), {}),
        "label_positions": (np.asarray(path.ticks), {}),
    }
    if edges is not None:
        data["window_edges"] = (edges, {})
    attrs: dict[str, object] = {"path": path.text, "points": path.points,
                                "solver": str(solver.name), "nbands": int(energies.shape[1])}
    info = solver.describe()
    for key in ("nev", "target_meV", "flat_energies_meV"):
        if info.get(key) is not None:
            attrs[key] = info[key]
    attrs["method"] = ("each point solved by the run's solver (energies only); points spaced "
                       "by segment length, every corner a point; distance = cumulative "
                       "Cartesian |dk| from the first point")
    return data, attrs


def bands_phase(comm: MPI.Comm, solver: Eigensolver, model: BlochModel,
                path: BandPath | None, log: logging.Logger, timers: Timers,
                percent: float = 5.0, chunk: int = 4096
                ) -> tuple[dict[str, tuple[np.ndarray, dict[str, object]]],
                           dict[str, object]] | None:
    """The band-path phase: log, solve, group. Collective over ``comm``.

    Parameters are those of :func:`solve_path`; ``timers`` gets the phase ``"bands"``.

    Returns
    -------
    tuple or None
        ``(datasets, attributes)`` of ``/bands_path`` (:func:`path_group`), the same on
        every rank; None when ``path`` is None (no ``[bands]`` section).
    """
    if path is None:
        return None
    with timers.phase("bands"):
        window = (f", window of {solver.bands(model)} bands" if solver.windowed else "")
        log.info("band path %s: %d points, solver %s%s", " ".join(path.labels), path.points,
                 solver.name, window)
        solved = solve_path(comm, solver, model, path, log, percent, chunk)
    return path_group(path, solved, solver)
