"""Valley-resolved Chern numbers and quantum metric of a window of bands (theory §5.8).

The window is first rotated into its valley-resolved band basis (geometry/valley_basis.py:
the eigenvectors of the valley operator projected on the window, then H inside each valley
part): valley −1 bands 0 … n−1, then valley +1 bands n … 2n−1, each by energy.

Topology (theory §5, theory §5.1): determinant link Chern numbers of each valley group and of
each band, through ``chern.plaquette_flux`` (corners solved at the UNWRAPPED k + G, so the
valley basis there is the continuation D_G† U w: V_W(k + G) = V_W(k)). Metric (theory §5.8):
for a group with orthonormal basis W, D²(k, k + Δ) = N − ‖W(k)† W(k + Δ)‖_F² =
Δ·g(k + Δ/2)·Δ + O(Δ⁴) with g_ij = ½ Tr ∂_iP ∂_jP the group (projector) metric; links along
b1/N1, b2/N2 and their sum fix the three components of Σ_k g, so the integrated metric has a
relative error O(Δ²).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np
from mpi4py import MPI

from qgt_mpi.geometry.chern import plaquette_flux
from qgt_mpi.geometry.valley_basis import NOT_SEPARATED, RUNNING_MINIMA, ValleyBasis, ValleyOperator
from qgt_mpi.models.lattice import reduced_indices
from qgt_mpi.parallel import (
    allreduce_array,
    allreduce_max,
    allreduce_min,
    block_range,
    collective,
)
from qgt_mpi.solvers.base import Eigensolver

if TYPE_CHECKING:
    from collections.abc import Callable

    from qgt_mpi.models.protocols import BlochModel, ValleyModel

__all__ = ["NOT_SEPARATED", "ValleyBasis", "ValleyGeometry", "ValleyOperator", "valley_geometry",
           "valley_plaquettes", "window_geometry"]


def _groups(nb: int) -> list[tuple[int, int]]:
    """Flux groups: valley −1, valley +1, each band, the whole window."""
    half = nb // 2
    return [(0, half), (half, nb)] + [(b, b + 1) for b in range(nb)] + [(0, nb)]


def valley_plaquettes(model: BlochModel, basis: ValleyBasis, n1: int, n2: int, start: int, stop: int
                      ) -> dict[str, np.ndarray]:
    """Fluxes and link distances of the owned plaquettes [start, stop); collective over the
    basis solver's pool (every pool rank calls it with the same arguments).

    Returns ``flux`` (nplaq, ngroups) for the groups of :func:`_groups` and ``distance``
    (3, 3): Σ_owned D² for groups (valley −1, valley +1, window) × links (b1/N1, b2/N2, sum),
    each link starting at the plaquette's own corner (i, j), so the grid's links are
    counted once.
    """
    nb = basis.window[1] - basis.window[0]
    half, groups = nb // 2, _groups(nb)
    flux = plaquette_flux(model, basis, n1, n2, start, stop, groups)
    i, j = reduced_indices(n1, n2, start, stop)
    distance = np.zeros((3, 3))
    if i.size == 0:
        return {"flux": flux, "distance": distance}
    red = [np.column_stack([i + a, j + b]) / [n1, n2] for a, b in ((0, 0), (1, 0), (0, 1),
                                                                   (1, 1))]
    vec = [basis.solve(model, r @ model.reciprocal).vectors for r in red]
    for g, (lo, hi) in enumerate(((0, half), (half, nb), (0, nb))):
        for d in range(3):
            overlap = vec[0][..., lo:hi].conj().swapaxes(-1, -2) @ vec[d + 1][..., lo:hi]
            distance[g, d] = float(np.sum((hi - lo) - np.sum(np.abs(overlap) ** 2, (1, 2))))
    return {"flux": flux, "distance": distance}


class ValleyGeometry(TypedDict):
    """What :func:`valley_geometry` returns (see there)."""

    chern: np.ndarray
    max_flux: np.ndarray
    metric: np.ndarray
    trace: np.ndarray
    min_abs_valley: float
    valley_gap: float
    band_gap_minus: float
    band_gap_plus: float
    mixing: float


def valley_geometry(across: MPI.Comm, model: BlochModel, basis: ValleyBasis, n1: int, n2: int,
                    progress: Callable[[int], None] | None = None) -> ValleyGeometry:
    """Valley Chern numbers and integrated metric on the N1×N2 grid (theory §5.8).

    Collective over ``across`` (one rank per pool, every pool the same arguments) and over
    each pool (the basis solver). Plaquettes are split over ``across``; an error on any
    rank (valleys that do not separate) becomes one CollectiveError on every rank.

    Returns
    -------
    dict with ``chern`` (ngroups,) flux sums / 2π for (valley −1, valley +1, each band,
    window); ``max_flux`` (ngroups,) largest |plaquette flux| (π means unresolved);
    ``metric`` (3, 3) ∫ g d²k/(2π)² [xx, yy, xy] and ``trace`` (3,) (1/2π)∫ Tr g d²k for
    (valley −1, valley +1, window) [dimensionless]; the running extremes of ``basis.stats``.

    The owned plaquettes are done one grid row at a time (corners solved once: the basis
    caches them), and ``progress`` (if given) is called with the number of plaquettes done
    after each row, so a long phase reports; the sums do not depend on this split beyond
    rounding order.
    """
    start, stop = block_range(n1 * n2, across.size, across.rank)
    parts: list[dict[str, np.ndarray]] = []
    with collective(across):
        for lo in range(start, stop, max(n1, 1)) if stop > start else [start]:
            hi = min(stop, lo + max(n1, 1))
            parts.append(valley_plaquettes(model, basis, n1, n2, lo, hi))
            if progress is not None:
                progress(hi - lo)
    local = {"flux": np.concatenate([p["flux"] for p in parts]),
             "distance": np.sum([p["distance"] for p in parts], axis=0)}
    flux = local["flux"]
    chern = allreduce_array(across, flux.sum(axis=0)) / (2 * np.pi)
    max_flux = allreduce_array(across, np.abs(flux).max(axis=0, initial=0.0), op=MPI.MAX)
    sums = allreduce_array(across, local["distance"])
    low = {name: allreduce_min(across, basis.stats[name]) for name in RUNNING_MINIMA}
    metric = _metric_from_links(model, n1, n2, sums)
    return ValleyGeometry(chern=chern, max_flux=max_flux, metric=metric,
                          trace=2 * np.pi * (metric[:, 0] + metric[:, 1]),
                          min_abs_valley=low["min_abs_valley"], valley_gap=low["valley_gap"],
                          band_gap_minus=low["band_gap_minus"],
                          band_gap_plus=low["band_gap_plus"],
                          mixing=allreduce_max(across, basis.stats["mixing"]))


def window_geometry(across: MPI.Comm, model: ValleyModel, solver: Eigensolver,
                    grid: tuple[int, int], progress: Callable[[int], None] | None = None
                    ) -> ValleyGeometry:
    """:func:`valley_geometry` of a run's whole solver window (``[solver] valley = true``).

    One ValleyBasis per pool on the run's solver (its pool communicator); plaquettes split
    over ``across`` (the ranks with the same position in every pool, parallel/pools.py).
    Collective over all ranks of the run. Raises CollectiveError (on every rank) starting
    with NOT_SEPARATED where the window does not split into two valleys.
    """
    basis = ValleyBasis(solver, model.valley, (0, solver.bands(model)))
    return valley_geometry(across, model, basis, *grid, progress=progress)


def _metric_from_links(model: BlochModel, n1: int, n2: int, sums: np.ndarray) -> np.ndarray:
    """∫ g d²k/(2π)² [xx, yy, xy] per group from Σ_k D² along the three link directions.

    Σ_k D²_μ = d_μ·(Σ_k g)·d_μ with d_μ = b1/N1, b2/N2, b1/N1 + b2/N2 (theory §5.8); the
    3×3 system gives Σ_k g, and ∫ g d²k/(2π)² = Σ_k g · A_BZ/(N_k (2π)²).
    """
    d1, d2 = model.reciprocal[0] / n1, model.reciprocal[1] / n2
    steps = np.stack([d1, d2, d1 + d2])
    design = np.column_stack([steps[:, 0] ** 2, steps[:, 1] ** 2, 2 * steps[:, 0] * steps[:, 1]])
    summed = np.linalg.solve(design, sums.T).T  # (ngroup, 3): Σ_k g
    area = abs(np.linalg.det(model.reciprocal))
    return summed * area / (n1 * n2 * (2 * np.pi) ** 2)
