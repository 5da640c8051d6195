"""The k-pass: solve every owned k-point once, in batches, and feed all accumulators.

Per batch: H(k), eigenpairs and band velocities (solver), per-band curvature and metric,
pair products and plaquette fluxes (geometry), transport weights deposited into energy bins
(transport). Nothing here communicates, so a failure on one rank cannot hang the others;
the caller agrees on errors after the loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from qgt_mpi.geometry.bands import band_geometry, degenerate_pairs, pair_products
from qgt_mpi.geometry.chern import plaquette_flux
from qgt_mpi.geometry.summary import GeometrySummary
from qgt_mpi.logs import Progress
from qgt_mpi.models.lattice import kgrid_points, reduced_indices
from qgt_mpi.parallel import Timers
from qgt_mpi.transport.accumulate import TransportSums


@dataclass
class KPass:
    """Inputs and accumulators of one rank's share of the k-grid."""

    model: object
    solver: object
    grid: tuple[int, int]
    slab: tuple[int, int]
    groups: list[tuple[int, int]]
    sums: TransportSums
    geometry: GeometrySummary
    kresolved: bool
    kfields: dict[str, list[np.ndarray]] = field(default_factory=dict)


def link_groups(nbands: int) -> list[tuple[int, int]]:
    """Band groups for link Chern numbers: each band, then each set of bands below a gap."""
    singles = [(n, n + 1) for n in range(nbands)]
    prefixes = [(0, n) for n in range(2, nbands)]
    return singles + prefixes


def run_kpass(job: KPass, chunk: int, timers: Timers, log: logging.Logger,
              percent: float) -> None:
    """Process the rank's slab in batches of ``chunk`` k-points. Local, no communication."""
    start, stop = job.slab
    progress = Progress(log, "k-pass", stop - start, percent)
    for c0 in range(start, stop, chunk):
        c1 = min(c0 + chunk, stop)
        _batch(job, c0, c1, timers)
        progress.advance(c1 - c0)


def _batch(job: KPass, c0: int, c1: int, timers: Timers) -> None:
    """One batch of k-points [c0, c1) through solve → geometry → transport deposit."""
    n1, n2 = job.grid
    with timers.phase("solve"):
        k = kgrid_points(job.model.reciprocal, n1, n2, c0, c1)
        eig = job.solver.solve(job.model, k)
    with timers.phase("geometry"):
        curvature, metric = band_geometry(eig)
        products = pair_products(eig.velocities)
        flux = plaquette_flux(job.model, job.solver, n1, n2, c0, c1, job.groups)
        skipped = degenerate_pairs(eig.energies)
    _check_finite(eig.energies, curvature, metric, products["N_xy"])
    with timers.phase("deposit"):
        job.sums.add(eig.energies, products)
    job.geometry.add(eig.energies, curvature, metric, flux, skipped)
    if job.kresolved:
        i, j = reduced_indices(n1, n2, c0, c1)
        frac = np.column_stack([i / n1, j / n2])
        for key, value in (("k_frac", frac), ("k_cart", k), ("energies", eig.energies),
                           ("berry_curvature", curvature), ("metric", metric)):
            job.kfields.setdefault(key, []).append(value)


def _check_finite(*arrays: np.ndarray) -> None:
    """Raise FloatingPointError if any array holds NaN or inf."""
    for arr in arrays:
        if not np.all(np.isfinite(arr)):
            raise FloatingPointError("non-finite value in the k-pass (eigenpairs or geometry)")


def stacked_kfields(job: KPass) -> dict[str, np.ndarray]:
    """Concatenate the rank's k-resolved batches (empty arrays of the right shape if none)."""
    nb = job.model.nbands
    empty = {"k_frac": (0, 2), "k_cart": (0, 2), "energies": (0, nb),
             "berry_curvature": (0, nb), "metric": (0, nb, 3)}
    return {key: np.concatenate(job.kfields[key]) if job.kfields.get(key) else np.zeros(shape)
            for key, shape in empty.items()}
