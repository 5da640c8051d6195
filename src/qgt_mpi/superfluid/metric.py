"""Integrated quantum metric of one band and its minimum over orbital positions (theory §5, §6).

G_ij = ∫ g_ij d²k/(2π)² = (1/(N_k A_c)) Σ_k g_ij(k) (theory §1, §5) is summed over a block of the
k-grid on every rank and reduced. Orbital positions τ_a enter through the Bloch convention of
theory §1, so moving orbitals keeps the hopping list and changes only τ. Under τ_a → τ_a + δ_a the
Bloch vector becomes u_a → e^{−ik·δ_a} u_a and T_ij(k) = <∂_i u − iδ_i u|(1 − P)|∂_j u − iδ_j u>,
which is exactly quadratic in δ; x-shifts enter only G_xx and y-shifts only G_yy. Minimising
Tr G over the shifts of all but one orbital (a common shift changes nothing) therefore gives
one well-defined *minimal metric* (theory §6).

The quadratic is known in closed form from the band alone. With y_i = (1 − P)|∂_i u> (P the
band's projector) and w_a = |u_a|², T_ij = <y_i|y_j> and, per k,

    g'_ij = g_ij + Σ_a (δ_aj c_ia + δ_ai c_ja) + Σ_a δ_ai δ_aj w_a − (Σ_a δ_ai w_a)(Σ_b δ_bj w_b),

c_ia = Im(conj(y_ia) u_a): one pass over the grid gives the coefficients, and one linear
solve (:func:`minimal_metric`) the minimum. y_i = Σ_{m≠n} |u_m> v^i_mn/(ε_n − ε_m) over the
bands a solver returns (theory §1); for a solver window (theory §5) the part outside it,
Q|∂_i u> = −(H − ε_n)⁻¹ Q ∂_iH|u> with Q = 1 − P_W, is added from one sparse LU per k-point of
the bordered matrix [[H − ε_n, U], [U†, 0]] (U the window vectors), which is invertible when
the window is an isolated band group. So the minimal metric of a window band needs its
window vectors, one more window solve per k-point and that LU, never all bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from scipy.sparse.linalg import splu

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.geometry.chern import plaquette_flux
from qgt_mpi.models.flatten import FlattenedModel
from qgt_mpi.models.lattice import TightBinding, kgrid_points
from qgt_mpi.models.sparse import as_sparse
from qgt_mpi.parallel import agreed_sum, allgather_rows, allreduce_array, block_range
from qgt_mpi.parallel.errors import agreed_local, fail_point
from qgt_mpi.solvers.dense import DenseSolver

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel
    from qgt_mpi.solvers.base import Eigensolver

_CHUNK = 4096  # k-points per batch
_WINDOW_CHUNK = 64  # k-points per windowed solve (vectors of a batch are kept in memory)
_RCOND = 1e-12  # shift directions that change Tr G by less than this (relative) are not moved


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


@dataclass(frozen=True)
class ShiftForm:
    """The integrated metric of one band as a quadratic in orbital shifts (module docstring).

    Sums over the k-grid, identical on every rank; divided by ``norm`` = N_k A_c they are
    integrals ∫ d²k/(2π)² (theory §1).
    """

    g0: np.ndarray  # (3,) Σ_k g [xx, yy, xy] at the model's positions
    c: np.ndarray  # (2, norb) Σ_k Im(conj(y_ia) u_a)
    weight: np.ndarray  # (norb,) Σ_k w_a
    root: np.ndarray  # (r, norb) with rootᵀ root = Σ_k w wᵀ (the weights themselves, or M's root)
    norm: float

    def metric(self, shift: np.ndarray) -> np.ndarray:
        """(2, 2) ∫ g d²k/(2π)² with orbital a moved by ``shift[a]`` (norb, 2) [a]."""
        lin = self.c @ shift  # (i, j): Σ_a c_ia δ_aj
        quad = (shift.T * self.weight) @ shift - (self.root @ shift).T @ (self.root @ shift)
        g0 = np.array([[self.g0[0], self.g0[2]], [self.g0[2], self.g0[1]]])
        return (g0 + lin + lin.T + quad) / self.norm


def _band_terms(model, eig, band: int, k: np.ndarray, windowed: bool):
    """y_i of ``band`` at a batch of k → (Σ_k g [xx, yy, xy], Σ_k c (2, norb), w (nk, norb)).

    Local (a pool root's share of a windowed solve). Raises ValueError when ``band`` meets
    another returned band (its metric is then not defined).
    """
    u = eig.vectors[:, :, band]  # (nk, norb)
    diff = eig.energies[:, band, None] - eig.energies  # ε_n − ε_m, (nk, nb)
    diff[:, band] = np.inf
    scale = max(float(np.abs(eig.energies).max()), 1.0)
    if np.abs(diff).min() <= 1e-12 * scale:
        raise ValueError(f"superfluid band {band} is degenerate with another band on the "
                         "k-grid: its own metric is not defined")
    coef = eig.velocities[:, :, :, band] / diff[None]  # <m|∂_i n> = v^i_mn / (ε_n − ε_m)
    y = np.einsum("kam,ikm->ika", eig.vectors, coef)  # (2, nk, norb)
    if windowed:
        y += _outside(model, eig, band, k)
    g = np.array([np.vdot(y[0], y[0]).real, np.vdot(y[1], y[1]).real,
                  np.vdot(y[0], y[1]).real])
    c = np.imag(y.conj() * u[None]).sum(axis=1)
    return g, c, np.abs(u) ** 2


def _outside(model, eig, band: int, k: np.ndarray) -> np.ndarray:
    """Q|∂_i u_n> outside a window (theory §5, eq. 5.2), (2, nk, norb). Local.

    One sparse LU per k-point of [[H − ε_n, U], [U†, 0]]: its solution x has U†x = 0 and
    (H − ε_n) x = −Q ∂_iH|u_n>, i.e. x = Q|∂_i u_n>.
    """
    sparse = as_sparse(model)
    norb, nb = eig.vectors.shape[1:]
    out = np.empty((2, len(k), norb), complex)
    for j, kk in enumerate(k):
        h, dhx, dhy = sparse.csr(kk)
        vecs, un, en = eig.vectors[j], eig.vectors[j, :, band], eig.energies[j, band]
        rhs = np.stack([dhx @ un, dhy @ un], axis=1)
        rhs -= vecs @ (vecs.conj().T @ rhs)
        border = sp.csr_matrix(vecs)
        mat = sp.bmat([[h - en * sp.identity(norb, format="csr"), border],
                       [border.conj().T, None]], format="csc")
        sol = splu(mat).solve(np.vstack([-rhs, np.zeros((nb, 2), complex)]))
        out[:, j] = sol[:norb].T
    return out


def shift_form(comm: MPI.Comm, model: BlochModel, band: int, kgrid: tuple[int, int],
               solver: Eigensolver | None = None, across: MPI.Comm | None = None) -> ShiftForm:
    """Coefficients of the metric of ``band`` in orbital shifts (module docstring). Collective.

    Parameters
    ----------
    comm : every rank of the run.
    model : any BlochModel (dense or sparse).
    band : band index: of all bands (dense), or of the window of ``solver``.
    kgrid : (N1, N2).
    solver : None for all bands (dense, one rank per k-point), or the run's windowed solver
        (its pool communicator solves each k-point together; a FlatBands wrapper is looked
        through, since its geometry is the unflattened one).
    across : the ranks with the same position in every pool (parallel/pools.py); None when
        every rank is its own pool.
    """
    n1, n2 = kgrid
    nk, norb = n1 * n2, model.norb
    windowed = solver is not None
    if solver is not None:
        solver = solver.core  # FlatBands: its geometry is the unflattened one
        group = across if across is not None else comm
        slab, deposit = block_range(nk, group.size, group.rank), solver.comm.rank == 0
    else:
        solver = DenseSolver()
        slab, deposit = block_range(nk, comm.size, comm.rank), True
    by_moment = norb <= nk  # Σ_k w wᵀ (norb²) or the weights themselves (nk × norb)

    def local():
        fail_point(comm, "superfluid")
        g, c, weight = np.zeros(3), np.zeros((2, norb)), np.zeros(norb)
        moment, rows = np.zeros((norb, norb) if by_moment else (0, 0)), []
        step = _WINDOW_CHUNK if windowed else max(1, min(_CHUNK, (1 << 22) // norb**2))
        for c0 in range(slab[0], slab[1], step):
            k = kgrid_points(model.reciprocal, n1, n2, c0, min(c0 + step, slab[1]))
            eig = solver.solve(model, k)
            if not deposit:
                continue
            dg, dc, w = _band_terms(model, eig, band, k, windowed)
            g, c, weight = g + dg, c + dc, weight + w.sum(axis=0)
            if by_moment:
                moment += w.T @ w
            else:
                rows.append(w)
        rows = np.concatenate(rows) if rows else np.zeros((0, norb))
        return g, c, weight, moment, rows

    g, c, weight, moment, rows = agreed_local(comm, local)
    g, c, weight = agreed_sum(comm, g), agreed_sum(comm, c), agreed_sum(comm, weight)
    if by_moment:
        lam, vec = np.linalg.eigh(agreed_sum(comm, moment))
        root = np.sqrt(np.clip(lam, 0.0, None))[:, None] * vec.T
    else:
        root = allgather_rows(comm, rows)
    return ShiftForm(g0=g, c=c, weight=weight, root=root, norm=nk * model.cell_area)


def minimise(form: ShiftForm) -> tuple[np.ndarray, np.ndarray]:
    """Orbital shifts minimising Tr of ``form``'s metric, and the metric there. Local.

    Tr G is minimised separately over the x- and y-shifts (x-shifts enter only G_xx): each is
    min_d 2 c·d + dᵀ K d with K = diag(W) − Σ_k w wᵀ (positive semi-definite; K·1 = 0, a
    common shift). Orbitals without weight on the band are not moved, one orbital of largest
    weight is held fixed, and with D = diag(W), S = root D^{-1/2} the rest solve
    D^{1/2}(1 − SᵀS)D^{1/2} d = −c through the SVD of S, directions with 1 − s² below
    ``_RCOND`` left unmoved. The shifts are returned relative to orbital 0.
    """
    weight = form.weight
    free = weight > _RCOND * weight.max()
    free[int(np.argmax(weight))] = False
    shift = np.zeros((weight.size, 2))
    if free.any():
        inv_sqrt = 1.0 / np.sqrt(weight[free])
        _, s, vt = np.linalg.svd(form.root[:, free] * inv_sqrt, full_matrices=False)
        keep = 1.0 - s**2 > _RCOND
        rhs = -form.c[:, free].T * inv_sqrt[:, None]  # (nfree, 2)
        proj = vt[~keep] @ rhs
        solved = rhs + vt[keep].T @ ((s[keep] ** 2 / (1.0 - s[keep] ** 2))[:, None]
                                     * (vt[keep] @ rhs)) - vt[~keep].T @ proj
        shift[free] = solved * inv_sqrt[:, None]
    shift -= shift[0]
    return shift, form.metric(shift)


def minimal_metric(comm: MPI.Comm, model: BlochModel, band: int, kgrid: tuple[int, int],
                   solver: Eigensolver | None = None,
                   across: MPI.Comm | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Orbital shifts minimising Tr ∫ g d²k/(2π)² and the metric there (theory §6).

    Collective over ``comm``; the same on every rank. ``solver``, ``across``: a run's
    windowed solver and its pool layout (:func:`shift_form`); None solves all bands densely.

    Returns
    -------
    shift : (norb, 2) Cartesian shifts [a] (row 0 is zero).
    metric : (2, 2) minimal metric integral.
    """
    return minimise(shift_form(comm, model, band, kgrid, solver, across))
