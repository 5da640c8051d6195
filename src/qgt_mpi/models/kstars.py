"""Stars of the k-grid under a model's symmetry operations (theory §5.11).

Each operation maps the reduced grid coordinates by an integer matrix m (f' = m f), so on the
Γ-centred N1 × N2 grid (flat index i N2 + j, theory §1.3) it permutes the grid points when
m maps (i/N1, j/N2) onto the grid for all i, j (always for N1 = N2; an operation that does
not is dropped). The representative of a point is the smallest flat index of its star; the
operation ``op[p]`` carries the representative onto p (modulo a reciprocal vector). Pure
integer arithmetic: every rank builds the same table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from qgt_mpi.models.symmetry import Operation


class IrreducibleGrid:
    """The stars of the N1 × N2 grid under ``operations`` (identity first).

    Attributes: ``operations`` (those that map this grid onto itself), ``rep`` (nk,) the
    representative of each point, ``op`` (nk,) the index of an operation with
    op(rep[p]) ≡ p, ``representatives`` the sorted distinct representatives.
    """

    def __init__(self, reciprocal: np.ndarray, n1: int, n2: int,
                 operations: list[Operation]) -> None:
        self.reciprocal = np.asarray(reciprocal, dtype=float)
        self.n1, self.n2 = int(n1), int(n2)
        flat = np.arange(self.n1 * self.n2)
        i, j = flat // self.n2, flat % self.n2
        images, kept = [], []
        for o in operations:
            m = o.m
            # f' = m f with f = (i/N1, j/N2): I' = m00 i + m01 j N1/N2, J' = m10 i N2/N1 + m11 j
            if (m[0, 1] * self.n1) % self.n2 or (m[1, 0] * self.n2) % self.n1:
                continue
            ii = (m[0, 0] * i + (m[0, 1] * j * self.n1) // self.n2) % self.n1
            jj = ((m[1, 0] * i * self.n2) // self.n1 + m[1, 1] * j) % self.n2
            images.append(ii * self.n2 + jj)
            kept.append(o)
        img = np.array(images)
        self.operations: list[Operation] = kept
        self.rep = img.min(axis=0)
        self.op = np.full(flat.size, -1, dtype=np.int64)
        for g in range(len(kept)):
            hit = (img[g][self.rep] == flat) & (self.op < 0)
            self.op[hit] = g
        if np.any(self.op < 0):  # not a group on this grid (cannot happen for exact ops)
            self.operations, self.rep, self.op = kept[:1], flat.copy(), np.zeros_like(flat)
        self.representatives = np.unique(self.rep)

    @property
    def nk(self) -> int:
        """Points of the grid."""
        return self.n1 * self.n2

    def points(self, flat: np.ndarray) -> np.ndarray:
        """Cartesian k (n, 2) of flat indices (theory §1.3)."""
        flat = np.asarray(flat, dtype=np.int64)
        return (np.outer((flat // self.n2) / self.n1, self.reciprocal[0])
                + np.outer((flat % self.n2) / self.n2, self.reciprocal[1]))

    def locate(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat index (modulo the grid) of Cartesian k (n, 2), and whether k is a grid point
        (within 1e-9 of one, in units of the grid step)."""
        f = np.asarray(k, dtype=float) @ np.linalg.inv(self.reciprocal)
        x = f * np.array([self.n1, self.n2])
        r = np.rint(x)
        inside = np.all(np.abs(x - r) < 1e-9, axis=1)
        r = r.astype(np.int64)
        return (r[:, 0] % self.n1) * self.n2 + (r[:, 1] % self.n2), inside

    def needed(self, flat: np.ndarray) -> np.ndarray:
        """Representatives of points ``flat`` and of their plaquette corners (i+1, j),
        (i, j+1), (i+1, j+1) (the link Chern numbers of the k-pass use them)."""
        flat = np.asarray(flat, dtype=np.int64)
        i, j = flat // self.n2, flat % self.n2
        near = [flat] + [((i + a) % self.n1) * self.n2 + (j + b) % self.n2
                         for a, b in ((1, 0), (0, 1), (1, 1))]
        return np.unique(self.rep[np.concatenate(near)])

    def reduction(self) -> float:
        """Grid points per representative."""
        return self.nk / max(1, self.representatives.size)


def star_sizes(grid: IrreducibleGrid) -> np.ndarray:
    """Points per star, in the order of ``grid.representatives`` (sums to nk)."""
    return np.bincount(np.searchsorted(grid.representatives, grid.rep),
                       minlength=grid.representatives.size)


__all__ = ["IrreducibleGrid", "star_sizes"]
