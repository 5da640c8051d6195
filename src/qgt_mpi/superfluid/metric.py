"""Integrated quantum metric of one band and its minimum over orbital positions (theory §5, §6).

G_ij = ∫ g_ij d²k/(2π)² = (1/(N_k A_c)) Σ_k g_ij(k) (theory §1, §5) is summed over a block of the
k-grid on every rank and reduced. Orbital positions τ_a enter through the Bloch convention of
theory §1, so moving orbitals keeps the hopping list and changes only τ. Under τ_a → τ_a + δ_a the
Bloch vector becomes u_a → e^{−ik·δ_a} u_a and T_ij(k) = <∂_i u − iδ_i u|(1 − P)|∂_j u − iδ_j u>,
which is exactly quadratic in δ; x-shifts enter only G_xx and y-shifts only G_yy. Minimising
Tr G over the shifts of all but one orbital (a common shift changes nothing) therefore gives
one well-defined *minimal metric* (theory §6), found with scipy.optimize (BFGS, central-difference
gradient, exact for a quadratic). Every rank runs the optimizer on identical reduced values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI
from scipy.optimize import minimize

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.geometry.chern import plaquette_flux
from qgt_mpi.models.flatten import FlattenedModel
from qgt_mpi.models.lattice import TightBinding, kgrid_points
from qgt_mpi.parallel import agreed_sum, allreduce_array, block_range, broadcast
from qgt_mpi.parallel.errors import agreed_local, fail_point
from qgt_mpi.solvers.dense import DenseSolver

_CHUNK = 4096  # k-points per batch
_STEP = 1e-3  # central-difference step for the gradient [a]; exact for a quadratic objective


@dataclass(frozen=True)
class BandScan:
    """Reduced facts of one band on the k-grid (identical on every rank)."""

    metric: np.ndarray  # (2, 2) ∫ g_ij d²k/(2π)², dimensionless
    chern: int  # link-variable Chern number (theory §5)
    e_min: float  # meV
    e_max: float  # meV
    gap: float  # meV: smallest direct gap to the other bands (inf for a single band)


def shifted_model(model, shift: np.ndarray):
    """The same hopping list with orbital positions τ_a + shift_a (theory §1).

    TightBinding is rebuilt with shifted ``positions``; a FlattenedModel shifts its parent and
    is flattened again (its eigenvectors, hence its metric, follow the parent's gauge).
    """
    shift = np.asarray(shift, dtype=float).reshape(-1, 2)
    if isinstance(model, TightBinding):
        return TightBinding(model.lattice, model.positions + shift, model.R, model.a,
                            model.b, model.t, dict(model.info))
    if isinstance(model, FlattenedModel):
        return FlattenedModel(shifted_model(model.parent, shift), model.targets, model.gap_tol)
    raise TypeError(f"cannot move the orbitals of a {type(model).__name__} "
                    "(minimal metric needs a TightBinding or FlattenedModel)")


def _local_metric(model, band: int, kgrid: tuple[int, int], slab: tuple[int, int]):
    """Σ_k g(k) [xx, yy, xy] of ``band`` and its energy extremes/gap over the slab. Local."""
    n1, n2 = kgrid
    sums, ext = np.zeros(3), np.array([np.inf, -np.inf, np.inf])
    for c0 in range(slab[0], slab[1], _CHUNK):
        k = kgrid_points(model.reciprocal, n1, n2, c0, min(c0 + _CHUNK, slab[1]))
        eig = DenseSolver().solve(model, k)
        sums += band_geometry(eig)[1][:, band].sum(axis=0)
        energy = eig.energies
        others = np.delete(energy, band, axis=1) - energy[:, band, None]
        gap = np.abs(others).min() if others.size else np.inf
        ext = np.array([min(ext[0], energy[:, band].min()), max(ext[1], energy[:, band].max()),
                        min(ext[2], gap)])
    return sums, ext


def _as_tensor(xx_yy_xy: np.ndarray) -> np.ndarray:
    """[xx, yy, xy] → symmetric (2, 2)."""
    xx, yy, xy = xx_yy_xy
    return np.array([[xx, xy], [xy, yy]])


def scan_from_geometry(geometry: dict, band: int) -> BandScan:
    """BandScan of a window band from a k-pass's reduced geometry (theory §5, windowed solves).

    The metric integral includes the out-of-window part; the gap is the smallest direct gap
    to the neighbouring window bands and to the bands outside the window.
    """
    g = geometry["metric_integral"][band]
    gaps = list(geometry["min_gap"][max(band - 1, 0) : band + 1])
    below, above = geometry["window_edges"]
    e_min, e_max = float(geometry["band_min"][band]), float(geometry["band_max"][band])
    gaps += [e_min - below, above - e_max]
    return BandScan(metric=_as_tensor(np.asarray(g)), chern=int(geometry["chern_groups"][band]),
                    e_min=e_min, e_max=e_max, gap=float(min(gaps)))


def metric_integral(comm: MPI.Comm, model, band: int, kgrid: tuple[int, int]) -> np.ndarray:
    """G_ij = ∫ g_ij d²k/(2π)² of ``band`` (theory §5), (2, 2). Collective over ``comm``."""
    n1, n2 = kgrid
    slab = block_range(n1 * n2, comm.size, comm.rank)
    local = agreed_local(comm, lambda: _local_metric(model, band, kgrid, slab)[0])
    sums = agreed_sum(comm, local)
    return _as_tensor(sums / (n1 * n2 * model.cell_area))


def scan_band(comm: MPI.Comm, model, band: int, kgrid: tuple[int, int]) -> BandScan:
    """Ordinary metric integral, Chern number, extent and isolation of ``band``. Collective."""
    n1, n2 = kgrid
    slab = block_range(n1 * n2, comm.size, comm.rank)

    def local():
        fail_point(comm, "superfluid")
        flux = plaquette_flux(model, DenseSolver(), n1, n2, *slab, [(band, band + 1)]).sum()
        return (*_local_metric(model, band, kgrid, slab), flux)

    sums, ext, flux = agreed_local(comm, local)  # agree before the reductions
    sums, flux = agreed_sum(comm, sums), agreed_sum(comm, np.array([flux]))
    ext = allreduce_array(comm, ext * np.array([1.0, -1.0, 1.0]), MPI.MIN) * [1.0, -1.0, 1.0]
    return BandScan(metric=_as_tensor(sums / (n1 * n2 * model.cell_area)),
                    chern=int(np.rint(flux[0] / (2 * np.pi))), e_min=float(ext[0]),
                    e_max=float(ext[1]), gap=float(ext[2]))


def minimal_metric(comm: MPI.Comm, model, band: int, kgrid: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Orbital shifts minimising Tr ∫ g d²k/(2π)² and the metric there (theory §6).

    Orbital 0 stays put; the 2(norb − 1) shifts of the others are the variables. Collective
    over ``comm``: every rank evaluates its k-block, the sums are agreed bit-identically
    (:func:`agreed_sum`), so the deterministic BFGS iterations coincide on all ranks.

    Returns
    -------
    shift : (norb, 2) Cartesian shifts [a] (row 0 is zero).
    metric : (2, 2) minimal metric integral.
    """
    norb = model.norb

    def full(x: np.ndarray) -> np.ndarray:
        return np.vstack([np.zeros((1, 2)), np.reshape(x, (norb - 1, 2))])

    def trace(x: np.ndarray) -> float:
        return float(np.trace(metric_integral(comm, shifted_model(model, full(x)), band, kgrid)))

    def gradient(x: np.ndarray) -> np.ndarray:
        eye = np.eye(x.size) * _STEP
        return np.array([(trace(x + e) - trace(x - e)) / (2 * _STEP) for e in eye])

    if norb == 1:
        return np.zeros((1, 2)), metric_integral(comm, model, band, kgrid)
    res = minimize(trace, np.zeros(2 * (norb - 1)), jac=gradient, method="BFGS",
                   options={"gtol": 1e-11, "maxiter": 200})
    x = broadcast(comm, np.asarray(res.x))
    shift = full(x)
    return shift, metric_integral(comm, shifted_model(model, shift), band, kgrid)
