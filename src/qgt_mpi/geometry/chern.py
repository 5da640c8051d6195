"""Link-variable (Fukui–Hatsugai–Suzuki) Chern numbers of band groups (theory §5).

A group (lo, hi) is bands lo..hi−1; links are U_μ(k) = det[V(k)† V(k + μ)] / |det|, V the
(norb, hi − lo) eigenvector block. Each plaquette's flux lies in (−π, π], so the grid sum is
2π times an integer.

Sign (theory §1): Ω = −2 Im T_xy = ∂_x A_y − ∂_y A_x with A = i<u|∇u>. A link is
<u(k)|u(k + δ)> ≈ 1 − i A·δ, so arg(U1 U2 U3 U4) = −∮A·dk = −∫Ω d²k around a counter-clockwise
loop. The loop (i, j) → (i+1, j) → (i+1, j+1) → (i, j+1) is counter-clockwise when
b1 × b2 > 0, hence flux = −sign(b1 × b2) arg(U1 U2 U3 U4) ≈ Ω ΔA (checked in the tests).
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.geometry.corners import bloch_periodic, shifted_vectors, wrapped_corners
from qgt_mpi.models.lattice import reduced_indices

_CORNERS = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])  # counter-clockwise in (i, j)


def _corner_vectors(model, solver, n1: int, n2: int, i: np.ndarray, j: np.ndarray,
                    known: np.ndarray | None = None, wrap: bool = True):
    """Eigenvectors at the 4 unwrapped corners of plaquettes (i, j); (4, nplaq, norb, nb).

    Corners are solved at UNWRAPPED reduced coordinates (i + 1 may equal N1). In the Bloch
    convention of theory §1, H(k + G) = D_G† H(k) D_G with D_G = diag(e^{iG·τ_a}), so the state
    solved at k + G is the continuation D_G† u(k) of the smooth family across the zone
    boundary, and boundary links are overlaps of nearby states like all others. Reusing the
    vectors of the wrapped point k would drop D_G, which is not a gauge phase, and give
    boundary plaquettes O(1) wrong fluxes whenever orbitals sit off the origin.
    Each distinct corner is solved once; ``known`` (the eigenvectors of the plaquettes' own
    corner points (i, j), already solved by the caller) are reused, which is safe because
    every plaquette's flux is invariant under a phase change of any corner's vectors.
    With ``wrap`` (and a model that obeys the Bloch relation, geometry/corners.py), a corner
    k + G whose wrapped point k is among the known points takes D_G† u(k) instead of a solve.
    """
    ci = (i[None, :] + _CORNERS[:, 0, None]).ravel()
    cj = (j[None, :] + _CORNERS[:, 1, None]).ravel()
    keys, inverse = np.unique(ci * (n2 + 1) + cj, return_inverse=True)
    own = i * (n2 + 1) + j
    if known is None:
        missing = np.ones(keys.size, dtype=bool)
        vectors = None
    else:
        missing = ~np.isin(keys, own)
        vectors = np.empty((keys.size, *known.shape[1:]), dtype=complex)
        vectors[np.searchsorted(keys, own)] = known
        if wrap and missing.any() and bloch_periodic(model):
            which, src, shift = wrapped_corners(keys, n1, n2, own, missing)
            vectors[which] = shifted_vectors(model, known[src], shift)
            missing[which] = False
    ui, uj = keys[missing] // (n2 + 1), keys[missing] % (n2 + 1)
    k = np.outer(ui / n1, model.reciprocal[0]) + np.outer(uj / n2, model.reciprocal[1])
    if vectors is None:
        vectors = solver.solve(model, k, velocities=False).vectors
    elif missing.any():
        vectors[missing] = solver.solve(model, k, velocities=False).vectors
    return vectors[inverse.ravel()].reshape(4, i.size, *vectors.shape[1:])


def _link(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Unimodular determinant link det(L† R)/|det(L† R)|, batched over the first axis."""
    if left.shape[-1] == 1:  # one band: the overlap itself (no 1×1 determinants)
        det = np.einsum("ko,ko->k", left[..., 0].conj(), right[..., 0])
        return det / np.abs(det)
    det = np.linalg.det(left.conj().swapaxes(-1, -2) @ right)
    return det / np.abs(det)


def plaquette_flux(model, solver, n1: int, n2: int, start: int, stop: int,
                   groups: list[tuple[int, int]], known: np.ndarray | None = None,
                   wrap: bool = True) -> np.ndarray:
    """Berry flux through each owned plaquette for each band group; (stop − start, ngroups).

    Parameters
    ----------
    model, solver : BlochModel and a solver with ``solve(model, k, velocities)``.
    n1, n2 : grid size; plaquette (i, j) has corners (i, j), (i+1, j), (i+1, j+1), (i, j+1)
        in reduced coordinates (i/N1, j/N2).
    start, stop : owned flat-index range of the row-major grid (may be empty).
    groups : band ranges (lo, hi), bands lo..hi−1.
    known : optional (stop − start, norb, nb) eigenvectors of the owned points, reused.
    wrap : take corners across the zone boundary from known points (geometry/corners.py).

    Notes
    -----
    Local only; C_g = Σ flux / 2π after the caller's sum over ranks.
    """
    i, j = reduced_indices(n1, n2, start, stop)
    flux = np.zeros((i.size, len(groups)))
    if i.size == 0:
        return flux
    corners = _corner_vectors(model, solver, n1, n2, i, j, known, wrap)
    orient = np.sign(np.linalg.det(model.reciprocal))
    for g, (lo, hi) in enumerate(groups):
        block = corners[..., lo:hi]
        loop = np.ones(i.size, complex)
        for c in range(4):
            loop = loop * _link(block[c], block[(c + 1) % 4])
        flux[:, g] = -orient * np.angle(loop)
    return flux


def chern_numbers(model, solver, n1: int, n2: int, groups: list[tuple[int, int]]
                  ) -> np.ndarray:
    """Serial link Chern numbers of every group on the full grid; (ngroups,) near-integers."""
    return plaquette_flux(model, solver, n1, n2, 0, n1 * n2, groups).sum(axis=0) / (2 * np.pi)
