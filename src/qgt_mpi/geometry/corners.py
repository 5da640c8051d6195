"""Plaquette corners across the zone boundary from vectors already solved (theory §1).

In the Bloch convention (orbital positions τ_a in the phases) H(k + G) = D_G† H(k) D_G with
D_G = diag(e^{iG·τ_a}) for every reciprocal vector G, so the eigenvectors at an unwrapped
corner k + G are D_G† u(k): no new solve is needed when the wrapped point k was solved by the
same block. Link fluxes are invariant under a unitary change within a band group, and
D_G† u(k) spans the same eigenspace as a fresh solve at k + G, so the fluxes agree with
re-solved corners up to rounding (tests/test_corners.py).

A model may break the relation (a continuum model whose plane-wave basis is cut differently
at k + G, a model file whose positions are not the ones in its phases): it is checked once
per model at one generic k for G = b1 and b2, and corners are re-solved when it fails.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

from qgt_mpi.models.sparse import SparseModel

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel

_CHECKED: weakref.WeakKeyDictionary[object, bool] = weakref.WeakKeyDictionary()
_K_TEST = np.array([0.1234, 0.0567])  # reduced coordinates of the generic test point


def bloch_periodic(model: BlochModel) -> bool:
    """Whether H(k + G) = D_G† H(k) D_G for G = b1, b2 (to 1e-10 of max |H|). Local."""
    try:
        return _CHECKED[model]
    except (KeyError, TypeError):
        pass
    tau = np.asarray(getattr(model, "positions", np.zeros((0, 2))), dtype=float)
    try:
        ok = tau.shape == (model.norb, 2) and all(
            _relation_holds(model, tau, g) for g in model.reciprocal)
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        ok = False  # a model without the needed interface: corners are re-solved
    try:
        _CHECKED[model] = ok
    except TypeError:  # not weak-referenceable: checked again next time
        pass
    return ok


def _relation_holds(model: BlochModel, tau: np.ndarray, g: np.ndarray) -> bool:
    """H(k + g) against D_g† H(k) D_g at the test point, on the stored pattern or densely."""
    k = _K_TEST @ model.reciprocal
    phase = np.exp(-1j * (tau @ g))
    if isinstance(model, SparseModel):
        h0, h1 = model.values(k)[0], model.values(k + g)[0]
        moved = phase[model.rows] * h0 * phase[model.cols].conj()
    else:
        h0 = model.hamiltonian(k[None], derivatives=False)[0][0]
        h1 = model.hamiltonian((k + g)[None], derivatives=False)[0][0]
        moved = phase[:, None] * h0 * phase[None, :].conj()
    scale = max(float(np.max(np.abs(h0), initial=0.0)), 1e-300)
    return float(np.max(np.abs(h1 - moved), initial=0.0)) <= 1e-10 * scale


def shifted_vectors(model: BlochModel, vectors: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """D_G† u for vectors (nk, norb, nb) and G = shift @ reciprocal, shift (nk, 2) integers."""
    g = shift @ model.reciprocal  # (nk, 2)
    phase = np.exp(-1j * (g @ np.asarray(model.positions, dtype=float).T))  # (nk, norb)
    return phase[:, :, None] * vectors


def wrapped_corners(keys: np.ndarray, n1: int, n2: int, own: np.ndarray, missing: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Missing corners whose wrapped point is owned: (which, owned position, shift).

    ``keys`` are unwrapped corner indices ci (n2 + 1) + cj (ci ≤ n1, cj ≤ n2), ``own`` the
    sorted-or-not owned keys, ``missing`` a mask over ``keys``. Returns the indices into
    ``keys`` that can be taken from owned vectors, the positions of those owned points in
    ``own`` and the (n, 2) integer shifts G in units of (b1, b2). Local.
    """
    ci, cj = keys // (n2 + 1), keys % (n2 + 1)
    wrapped = (ci % n1) * (n2 + 1) + (cj % n2)
    order = np.argsort(own, kind="stable")
    pos = np.searchsorted(own, wrapped, sorter=order)
    pos = np.minimum(pos, own.size - 1)
    found = missing & (own[order[pos]] == wrapped)
    which = np.flatnonzero(found)
    shift = np.column_stack([ci[which] // n1, cj[which] // n2])
    return which, order[pos[which]], shift


def foreign_points(n1: int, n2: int, start: int, stop: int) -> np.ndarray:
    """Base-grid flat indices of the plaquette corners of [start, stop) owned elsewhere. Local.

    Corners are wrapped into the grid (i mod N1, j mod N2): with the Bloch relation, a vector
    at the wrapped point serves the unwrapped corner (:func:`shifted_vectors`).
    """
    flat = np.arange(start, stop)
    i = (flat[:, None] // n2 + np.array([0, 1, 1, 0])) % n1
    j = (flat[:, None] % n2 + np.array([0, 0, 1, 1])) % n2
    points = np.unique(i * n2 + j)
    return points[(points < start) | (points >= stop)]


def corner_plan(n1: int, n2: int, ranges: list[tuple[int, int] | None], mine: int
                ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Who sends which owned points to whom in a round of blocks. Local, same on all ranks.

    ``ranges[p]`` is the flat range pool p solves this round (None: idle); ``mine`` this
    rank's pool. Returns ({pool: flat indices this pool must send to it}, {pool: flat
    indices it receives from that pool}), both sorted; points owned by blocks outside the
    round are not in the plan (they are solved where needed).
    """
    send: dict[int, np.ndarray] = {}
    recv: dict[int, np.ndarray] = {}
    for p, rng in enumerate(ranges):
        if rng is None:
            continue
        need = foreign_points(n1, n2, *rng)
        for q, src in enumerate(ranges):
            if src is None or q == p:
                continue
            got = need[(need >= src[0]) & (need < src[1])]
            if got.size and q == mine:
                send[p] = got
            if got.size and p == mine:
                recv[q] = got
    return send, recv
