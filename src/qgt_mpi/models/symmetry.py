"""Point-group symmetries of a Bloch model, found from its orbitals and proven on H (theory §5.11).

A candidate operation is an orthogonal 2×2 map R of the plane that maps the Bravais lattice
onto itself, with a choice for the height z (kept, or mirrored about the cell's mean height:
the in-plane C₂ axes of a bilayer swap its layers), unitary or combined with time reversal.
It is a symmetry when a permutation π of the orbitals, τ_π(a) ≡ R τ_a modulo the lattice,
satisfies in the Bloch convention (1.1)

  H_{π(a)π(b)}(W k) = H_ab(k)        (unitary, W = R)
  H_{π(a)π(b)}(W k) = H_ab(k)*       (with time reversal, W = −R)        (5.11a)

for every k; in (1.1) no phases appear, because H depends on the bond vectors only. π is
found from the positions (and heights, where the model has them) to POSITION_TOL; (5.11a)
and its k-derivative, ∂_iH(Wk) = Σ_j W_ij P ∂_jH(k)^(*) Pᵀ, are then checked at PROBES
k-points to HAMILTONIAN_TOL relative to max|H|. Only verified operations are returned: a model
whose hoppings break an operation (a flux, a field, a strain, a relaxation that is not
symmetric) simply has fewer. One operation per k-space map W is kept.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

POSITION_TOL = 1e-6  # in units of the lattice (reduced coordinates) and of z
HAMILTONIAN_TOL = 1e-11  # max |ΔH| / max |H| of (5.11a) at the probe k-points
Z_OFFSET = 1e3  # heights are shifted into a periodic box of 2·Z_OFFSET (no wrap)
PROBES = 3  # random k-points at which (5.11a) and its derivative are checked


@dataclass(frozen=True)
class Operation:
    """A verified symmetry: k-space map ``w`` (Cartesian 2×2, k' = w k), integer map ``m``
    of reduced k-coordinates (f' = m f, f_i = a_i·k/2π), orbital permutation ``perm``
    (new index of orbital a) and ``antiunitary`` (combined with time reversal)."""

    w: np.ndarray
    m: np.ndarray
    perm: np.ndarray
    antiunitary: bool
    label: str


def lattice_maps(lattice: np.ndarray) -> list[np.ndarray]:
    """Orthogonal Cartesian maps R with R a_i in the lattice (the holohedry; 12 for the
    hexagonal lattice, 8 square, 4 or 2 otherwise)."""
    out = []
    inv = np.linalg.inv(lattice)
    for entries in itertools.product(range(-2, 3), repeat=4):
        n = np.array(entries, dtype=float).reshape(2, 2)  # rows: R a_i = Σ_j n_ij a_j
        r = (n @ lattice).T @ inv.T  # R with R a_iᵀ = (n lattice)_iᵀ
        if np.allclose(r @ r.T, np.eye(2), atol=1e-9):
            out.append(r)
    return out


def _permutation(frac: np.ndarray, z: np.ndarray | None, target: np.ndarray,
                 tz: np.ndarray | None) -> np.ndarray | None:
    """π with frac[π(a)] ≡ target[a] (mod 1) and equal heights, to POSITION_TOL; None when an
    orbital has no image, or two orbitals share a place (several orbitals per site)."""
    from scipy.spatial import cKDTree

    box = np.array([1.0, 1.0] + ([] if z is None else [2 * Z_OFFSET]))

    def points(f: np.ndarray, h: np.ndarray | None) -> np.ndarray:
        cols = [np.mod(f, 1.0)] + ([] if h is None else [(h + Z_OFFSET)[:, None]])
        pts = np.hstack(cols)
        return np.where(pts >= box, 0.0, pts)  # mod can round up to the box edge

    tree = cKDTree(points(frac, z), boxsize=box)
    if tree.query_pairs(POSITION_TOL):
        return None
    dist, idx = tree.query(points(target, tz), distance_upper_bound=POSITION_TOL)
    if not np.all(np.isfinite(dist)) or np.unique(idx).size != idx.size:
        return None
    return np.asarray(idx, dtype=np.int64)


def _hamiltonian_check(model, op: Operation, rng: np.random.Generator) -> bool:
    """(5.11a) and its derivative at PROBES random k-points, to HAMILTONIAN_TOL."""
    p = op.perm
    for _ in range(PROBES):
        k = rng.uniform(-0.5, 0.5, 2) @ model.reciprocal
        h, dh = _dense_or_sparse(model, k)
        h2, dh2 = _dense_or_sparse(model, op.w @ k)
        scale = max(float(np.abs(h).max()) if h.size else 1.0, 1e-300)
        conj = np.conj if op.antiunitary else (lambda x: x)
        mapped = _permuted(model, conj(h), p)
        if mapped is None or np.abs(mapped - h2).max() > HAMILTONIAN_TOL * scale:
            return False
        for i in range(2):
            want = sum(op.w[i, j] * conj(dh[j]) for j in range(2))
            mapped = _permuted(model, want, p)
            if mapped is None or np.abs(mapped - dh2[i]).max() > HAMILTONIAN_TOL * scale:
                return False
    return True


def _dense_or_sparse(model, k: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """H and (∂_xH, ∂_yH) at one k: CSR values (sparse models) or dense matrices."""
    if hasattr(model, "values") and hasattr(model, "rows"):
        h, dx, dy = model.values(k)
        return h, [dx, dy]
    h, dh = model.hamiltonian(np.asarray(k, dtype=float).reshape(1, 2))
    return h[0], [dh[0, 0], dh[1, 0]]


def _permuted(model, values: np.ndarray, perm: np.ndarray) -> np.ndarray | None:
    """The matrix B with B[π(a), π(b)] = values[a, b], in the model's own layout (dense or
    CSR values); None when the sparse pattern is not invariant under π."""
    if values.ndim == 2:
        out = np.empty_like(values)
        out[np.ix_(perm, perm)] = values
        return out
    n = model.norb
    key = model.rows.astype(np.int64) * n + model.cols
    new = perm[model.rows].astype(np.int64) * n + perm[model.cols]
    where = np.searchsorted(key, new)
    where = np.clip(where, 0, key.size - 1)
    if not np.all(key[where] == new):
        return None
    out = np.empty_like(values)
    out[where] = values
    return out


def find_operations(model, seed: int = 20261207) -> list[Operation]:
    """The verified symmetry operations of ``model`` (module doc), identity first.

    Pure function of the model (the probe k-points come from a fixed seed), so every rank
    finds the same list. Models without ``positions`` matching their Hamiltonian (e.g.
    plane-wave continuum models) find the identity only.
    """
    lattice = np.asarray(model.lattice, dtype=float)
    pos = np.asarray(model.positions, dtype=float)[:, :2]
    frac = pos @ np.linalg.inv(lattice)
    z = getattr(model, "z", None)
    z = None if z is None else np.asarray(z, dtype=float)
    zc = None if z is None else z - z.mean()
    rng = np.random.default_rng(seed)
    eye = np.eye(2)
    found = [Operation(eye, np.eye(2, dtype=np.int64), np.arange(pos.shape[0]), False, "E")]
    seen: list[np.ndarray] = [eye]  # the identity is op 0 (C2T, also W = 1, is not kept)
    for r in lattice_maps(lattice):
        target = (pos @ r.T) @ np.linalg.inv(lattice)
        for flip in ((False, True) if zc is not None else (False,)):
            tz = None if zc is None else (-zc if flip else zc)
            perm = _permutation(frac, zc, target, tz)
            if perm is None:
                continue
            for anti in (False, True):
                w = -r if anti else r
                if any(np.allclose(w, s, atol=1e-9) for s in seen):
                    continue
                m = np.rint(lattice @ w @ np.linalg.inv(lattice)).astype(np.int64)
                label = _label(r, flip, anti)
                op = Operation(w, m, perm, anti, label)
                if _hamiltonian_check(model, op, rng):
                    found.append(op)
                    seen.append(w)
    return found


def _label(r: np.ndarray, flip: bool, anti: bool) -> str:
    """A readable name: rotation angle or mirror, z-flip, time reversal."""
    det = float(np.linalg.det(r))
    if det > 0:
        name = f"C({math.degrees(math.atan2(r[1, 0], r[0, 0])):.0f})"
    else:
        name = f"M({math.degrees(math.atan2(r[1, 0], r[0, 0])) / 2:.0f})"
    return name + ("z" if flip else "") + ("T" if anti else "")

