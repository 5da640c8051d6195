"""Link-variable (Fukui–Hatsugai–Suzuki) Chern numbers of band groups (theory §5).

A group (lo, hi) is bands lo..hi−1; links are U_μ(k) = det[V(k)† V(k + μ)] / |det|, V the
(norb, hi − lo) eigenvector block. Each plaquette's flux lies in (−π, π], so the grid sum is
2π times an integer.

Sign (theory §1): Ω = −2 Im T_xy = ∂_x A_y − ∂_y A_x with A = i<u|∇u>. A link is
<u(k)|u(k + δ)> ≈ 1 − i A·δ, so arg(U1 U2 U3 U4) = −∮A·dk = −∫Ω d²k around a counter-clockwise
loop. The loop (i, j) → (i+1, j) → (i+1, j+1) → (i, j+1) is counter-clockwise when
b1 × b2 > 0, hence flux = −sign(b1 × b2) arg(U1 U2 U3 U4) ≈ Ω ΔA (checked in the tests).

Which bands touch is known only after the whole grid is seen (theory §5.7), so the k-pass also
accumulates the fluxes of every contiguous group of 2..GROUP_MAX bands
(:func:`touching_candidates`); ``geometry/summary.py`` keeps those of the groups found touching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from qgt_mpi.geometry.corners import bloch_periodic, shifted_vectors, wrapped_corners
from qgt_mpi.models.lattice import reduced_indices

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel
    from qgt_mpi.solvers.base import Eigensolver

# flat indices (m,) and eigenvectors (m, norb, nb) of points solved elsewhere (another block)
Extra = tuple[np.ndarray, np.ndarray]

PLAQUETTE_BYTES = 1 << 26  # corner vectors gathered per batch of plaquettes (64 MiB)
GROUP_MAX = 4  # largest touching group with group numbers (§5.7; 8: +50 % CPU at 64 bands)
_CORNERS = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])  # counter-clockwise in (i, j)


def touching_candidates(nbands: int) -> list[tuple[int, int]]:
    """Every contiguous group (lo, hi) of 2..min(nbands, GROUP_MAX) bands (theory §5.7).

    The k-pass accumulates their link fluxes and group geometry; after the pass the groups
    of bands found touching are picked from them (``GeometrySummary.finish``).
    """
    top = min(nbands, GROUP_MAX)
    return [(lo, lo + size) for size in range(2, top + 1) for lo in range(nbands - size + 1)]


def _corner_vectors(model: BlochModel, solver: Eigensolver, n1: int, n2: int, i: np.ndarray,
                    j: np.ndarray, known: np.ndarray | None = None, wrap: bool = True,
                    extra: Extra | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors at the distinct unwrapped corners of plaquettes (i, j) and, for each of the
    4 corners of each plaquette, the row of that corner; ((ncorner, norb, nb), (4, nplaq)).

    Corners are solved at UNWRAPPED reduced coordinates (i + 1 may equal N1). In the Bloch
    convention of theory §1, H(k + G) = D_G† H(k) D_G with D_G = diag(e^{iG·τ_a}), so the state
    solved at k + G is the continuation D_G† u(k) of the smooth family across the zone
    boundary, and boundary links are overlaps of nearby states like all others. Reusing the
    vectors of the wrapped point k would drop D_G, which is not a gauge phase, and give
    boundary plaquettes O(1) wrong fluxes whenever orbitals sit off the origin.
    Each distinct corner is solved once; ``known`` (the eigenvectors of the plaquettes' own
    corner points (i, j), already solved by the caller) and ``extra`` (base-grid flat indices
    and eigenvectors of other points, from other blocks) are reused, which is safe because
    every plaquette's flux is invariant under a unitary change within any corner's group.
    With ``wrap`` (and a model that obeys the Bloch relation, geometry/corners.py), a corner
    k + G whose wrapped point k has known vectors takes D_G† u(k) instead of a solve.
    """
    ci = (i[None, :] + _CORNERS[:, 0, None]).ravel()
    cj = (j[None, :] + _CORNERS[:, 1, None]).ravel()
    keys, inverse = np.unique(ci * (n2 + 1) + cj, return_inverse=True)
    index = inverse.reshape(4, i.size)
    if known is None:
        solved = solver.solve(model, _cartesian(model, keys, n1, n2), velocities=False)
        return solved.vectors, index
    src_keys, extra_vecs = i * (n2 + 1) + j, None
    if extra is not None and extra[0].size:
        flat, extra_vecs = extra
        src_keys = np.concatenate([src_keys, flat // n2 * (n2 + 1) + flat % n2])
    mine = known  # (narrowed: not None)

    def fetch(pos: np.ndarray) -> np.ndarray:  # rows of known, then of extra (no joined copy)
        own = pos < mine.shape[0]
        out = np.empty((pos.size, *mine.shape[1:]), dtype=complex)
        out[own] = mine[pos[own]]
        if extra_vecs is not None:
            out[~own] = extra_vecs[pos[~own] - mine.shape[0]]
        return out

    vectors = np.empty((keys.size, *known.shape[1:]), dtype=complex)
    direct = np.flatnonzero(np.isin(src_keys, keys))
    vectors[np.searchsorted(keys, src_keys[direct])] = fetch(direct)
    missing = ~np.isin(keys, src_keys)
    if wrap and missing.any() and bloch_periodic(model):
        which, pos, shift = wrapped_corners(keys, n1, n2, src_keys, missing)
        vectors[which] = shifted_vectors(model, fetch(pos), shift)
        missing[which] = False
    if missing.any():
        k = _cartesian(model, keys[missing], n1, n2)
        vectors[missing] = solver.solve(model, k, velocities=False).vectors
    return vectors, index


def _cartesian(model: BlochModel, keys: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Cartesian k of unwrapped corner keys ci (N2 + 1) + cj."""
    ui, uj = keys // (n2 + 1), keys % (n2 + 1)
    return np.outer(ui / n1, model.reciprocal[0]) + np.outer(uj / n2, model.reciprocal[1])


def _unimodular(z: np.ndarray) -> np.ndarray:
    """z/|z|; NaN where z = 0 (no overlap, e.g. bands of two valleys crossing): the flux is
    then undefined and the band is reported as touching (theory §5.7), without a warning."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return z / np.abs(z)


def _by_size(groups: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups of equal size: (their columns, their band indices (n, size)), one per size."""
    lo = np.array([g[0] for g in groups], dtype=int)
    size = np.array([g[1] - g[0] for g in groups], dtype=int)
    return [(np.flatnonzero(size == s), lo[size == s, None] + np.arange(s))
            for s in np.unique(size)]


def _links(overlap: np.ndarray, sizes: list[tuple[np.ndarray, np.ndarray]], ngroups: int
           ) -> np.ndarray:
    """Unimodular link U = det(group block of ``overlap``)/|det|; (nplaq, ngroups) complex.

    One batched determinant per group size (a single band: its diagonal element). Equal to
    the per-group links of :func:`plaquette_flux` up to rounding (numpy's vectorised |z|).
    """
    links = np.empty((overlap.shape[0], ngroups), complex)
    for cols, bands in sizes:
        if bands.shape[1] == 1:
            sub = overlap[:, bands[:, 0], bands[:, 0]]
        else:
            sub = np.linalg.det(overlap[:, bands[:, :, None], bands[:, None, :]])
        links[:, cols] = _unimodular(sub)
    return links


def plaquette_flux(model: BlochModel, solver: Eigensolver, n1: int, n2: int, start: int,
                   stop: int, groups: list[tuple[int, int]], known: np.ndarray | None = None,
                   wrap: bool = True, extra: Extra | None = None,
                   candidates: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Berry flux through each owned plaquette for each band group;
    (stop − start, ngroups + ncandidates).

    Parameters
    ----------
    model, solver : BlochModel and a solver with ``solve(model, k, velocities)``.
    n1, n2 : grid size; plaquette (i, j) has corners (i, j), (i+1, j), (i+1, j+1), (i, j+1)
        in reduced coordinates (i/N1, j/N2).
    start, stop : owned flat-index range of the row-major grid (may be empty).
    groups : band ranges (lo, hi), bands lo..hi−1.
    known : optional (stop − start, norb, nb) eigenvectors of the owned points, reused.
    wrap : take corners across the zone boundary from known points (geometry/corners.py).
    extra : optional (flat indices (m,), eigenvectors (m, norb, nb)) of points of the base
        grid outside [start, stop) (another block's, exchanged by the k-pass), reused.
    candidates : more groups (lo, hi), the touching candidates of theory §5.7
        (:func:`touching_candidates`); their links are batched by group size and their
        columns follow those of ``groups`` (whose arithmetic is unchanged, bit for bit).

    Notes
    -----
    Local only; C_g = Σ flux / 2π after the caller's sum over ranks. The link of a group is
    det of the group's block of the full overlap V(k)† V(k + μ), computed once per link for
    all groups, a few plaquettes at a time (no (4, nplaq, norb, nb) corner array).
    """
    i, j = reduced_indices(n1, n2, start, stop)
    ng, nc = len(groups), len(candidates)
    flux = np.zeros((i.size, ng + nc))
    if i.size == 0:
        return flux
    vectors, index = _corner_vectors(model, solver, n1, n2, i, j, known, wrap, extra)
    orient = np.sign(np.linalg.det(model.reciprocal))
    step = max(1, PLAQUETTE_BYTES // (16 * vectors[0].size))
    sizes = _by_size(list(candidates))
    for s in range(0, i.size, step):
        part = index[:, s : s + step]
        loops = np.ones((part.shape[1], ng), complex)
        batch = np.ones((part.shape[1], nc), complex)
        for c in range(4):
            left, right = vectors[part[c]], vectors[part[(c + 1) % 4]]
            overlap = left.conj().swapaxes(-1, -2) @ right  # (n, nb, nb)
            for g, (lo, hi) in enumerate(groups):
                sub = overlap[:, lo, lo] if hi - lo == 1 else np.linalg.det(
                    overlap[:, lo:hi, lo:hi])
                loops[:, g] *= _unimodular(sub)
            batch *= _links(overlap, sizes, nc)
        flux[s : s + step, :ng] = -orient * np.angle(loops)
        flux[s : s + step, ng:] = -orient * np.angle(batch)
    return flux


def chern_numbers(model: BlochModel, solver: Eigensolver, n1: int, n2: int,
                  groups: list[tuple[int, int]]) -> np.ndarray:
    """Serial link Chern numbers of every group on the full grid; (ngroups,) near-integers."""
    return plaquette_flux(model, solver, n1, n2, 0, n1 * n2, groups).sum(axis=0) / (2 * np.pi)
