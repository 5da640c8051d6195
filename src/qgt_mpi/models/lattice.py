"""Tight-binding core: hopping list, orbital positions, lattice; batched H(k) and ∂H/∂k.

theory §1 (Bloch convention with orbital positions) and theory §2.1. A hopping ``h`` is the
amplitude t_ab(R) with ``R = R[h]`` in lattice-vector coefficients, ``a = a[h]``,
``b = b[h]``; the list is complete (both directions of every bond are present).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

# Above this many scatter-matrix entries (nh * norb²) the scatter matrix is stored sparse.
_SPARSE_SCATTER = 200_000
# Largest (nk, nh) phase table built at once; bounds memory for long-range models.
_CHUNK_ENTRIES = 1 << 21


def reciprocal_vectors(lattice: np.ndarray) -> np.ndarray:
    """Rows b1, b2 with a_i·b_j = 2π δ_ij (architecture conventions)."""
    return 2.0 * np.pi * np.linalg.inv(np.asarray(lattice, dtype=float)).T


def reduced_indices(n1: int, n2: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduced coordinates (i, j) of flat indices [start, stop) of the row-major N1×N2 grid.

    Flat index = i * N2 + j (architecture conventions).
    """
    if not 0 <= start <= stop <= n1 * n2:
        raise ValueError(f"flat range [{start}, {stop}) outside the {n1}x{n2} grid")
    flat = np.arange(start, stop)
    return flat // n2, flat % n2


def kgrid_points(reciprocal: np.ndarray, n1: int, n2: int, start: int, stop: int) -> np.ndarray:
    """Cartesian k = (i/N1) b1 + (j/N2) b2 for flat indices [start, stop); shape (nk, 2)."""
    i, j = reduced_indices(n1, n2, start, stop)
    return np.outer(i / n1, reciprocal[0]) + np.outer(j / n2, reciprocal[1])


class LatticeCell:
    """Facts every Bloch model derives from its ``lattice`` (rows a1, a2)."""

    lattice: np.ndarray

    @property
    def reciprocal(self) -> np.ndarray:
        """Rows b1, b2 with a_i·b_j = 2π δ_ij."""
        return reciprocal_vectors(self.lattice)

    @property
    def cell_area(self) -> float:
        """Unit-cell area |det A|."""
        return float(abs(np.linalg.det(self.lattice)))


@dataclass(frozen=True, eq=False)
class TightBinding(LatticeCell):
    """Tight-binding model H_ab(k) = Σ_R t_ab(R) exp[i k·(R·A + τ_b − τ_a)] (theory §1).

    Parameters
    ----------
    lattice : (2, 2) array, rows a1, a2 (Cartesian).
    positions : (norb, 2) array, Cartesian orbital positions τ_a.
    R : (nh, 2) int array, lattice-vector coefficients of each hopping.
    a, b : (nh,) int arrays, orbital indices (hopping from b in cell R to a in cell 0).
    t : (nh,) complex array, amplitudes (meV).
    info : scalar facts reported by :meth:`describe` (kind, parameters, ...).
    """

    lattice: np.ndarray
    positions: np.ndarray
    R: np.ndarray
    a: np.ndarray
    b: np.ndarray
    t: np.ndarray
    info: dict = field(default_factory=dict)
    # distinct cells R and the scatter matrix T (_build_scatter), set in __post_init__
    _scatter: tuple[np.ndarray, np.ndarray | sp.csr_matrix] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        arrays = {
            "lattice": np.asarray(self.lattice, dtype=float).reshape(2, 2),
            "positions": np.asarray(self.positions, dtype=float).reshape(-1, 2),
            "R": np.asarray(self.R, dtype=np.int64).reshape(-1, 2),
            "a": np.asarray(self.a, dtype=np.int64).ravel(),
            "b": np.asarray(self.b, dtype=np.int64).ravel(),
            "t": np.asarray(self.t, dtype=complex).ravel(),
        }
        nh = arrays["t"].size
        if not arrays["R"].shape[0] == arrays["a"].size == arrays["b"].size == nh:
            raise ValueError("hopping arrays R, a, b, t must have the same length")
        norb = arrays["positions"].shape[0]
        if nh and (min(arrays["a"].min(), arrays["b"].min()) < 0
                   or max(arrays["a"].max(), arrays["b"].max()) >= norb):
            raise ValueError(f"orbital index outside 0..{norb - 1}")
        for name, value in arrays.items():
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_scatter", self._build_scatter())

    @classmethod
    def from_half(cls, lattice, positions, R, a, b, t, info: dict | None = None) -> TightBinding:
        """Build from half a hopping list by adding the h.c. t_ba(−R) = t_ab(R)*.

        Entries that are their own partner (R = 0, a = b, on-site terms) are kept once and
        must be real.
        """
        R, a, b = np.asarray(R).reshape(-1, 2), np.asarray(a), np.asarray(b)
        t = np.asarray(t, dtype=complex)
        own = np.all(R == 0, axis=1) & (a == b)
        if np.any(np.abs(t[own].imag) > 0):
            raise ValueError("on-site energies must be real")
        rest = ~own
        return cls(lattice, positions,
                   np.concatenate([R, -R[rest]]), np.concatenate([a, b[rest]]),
                   np.concatenate([b, a[rest]]), np.concatenate([t, t[rest].conj()]),
                   dict(info or {}))

    # Geometry of the lattice -------------------------------------------------------------
    @property
    def norb(self) -> int:
        """Orbitals per cell."""
        return self.positions.shape[0]

    @property
    def nbands(self) -> int:
        """Bands the model exposes (all of them for a dense model)."""
        return self.norb

    @property
    def displacements(self) -> np.ndarray:
        """Bond vectors d = R·A + τ_b − τ_a of every hopping, shape (nh, 2)."""
        return self.R @ self.lattice + self.positions[self.b] - self.positions[self.a]

    def describe(self) -> dict[str, object]:
        """Scalar facts for the output file's /model attributes."""
        return {"kind": "tight-binding", **self.info, "norb": self.norb,
                "nhoppings": int(self.t.size)}

    # Hermiticity --------------------------------------------------------------------------
    def check_hermitian(self, atol: float = 1e-12) -> bool:
        """True when the summed amplitudes satisfy t_ab(R) = t_ba(−R)* within ``atol``."""
        keys = np.column_stack([self.R, self.a, self.b])
        partner = np.column_stack([-self.R, self.b, self.a])
        uniq, inv = np.unique(np.concatenate([keys, partner]), axis=0, return_inverse=True)
        inv = inv.ravel()
        nh = self.t.size
        # Σ t over each key, and Σ conj(t) over each partner key; these must coincide.
        direct = np.zeros(len(uniq), complex)
        mirror = np.zeros(len(uniq), complex)
        np.add.at(direct, inv[:nh], self.t)
        np.add.at(mirror, inv[nh:], self.t.conj())
        return bool(np.allclose(direct, mirror, rtol=0.0, atol=atol))

    # Hamiltonian --------------------------------------------------------------------------
    def _build_scatter(self) -> tuple[np.ndarray, np.ndarray | sp.csr_matrix]:
        """Distinct cells R (nR, 2) and the (nR, norb²) matrix T[R, a*norb + b] = Σ t_ab(R).

        T is a scipy.sparse matrix when nR·norb² is large (big unit cells), else dense.
        """
        cells, inv = np.unique(self.R, axis=0, return_inverse=True)
        shape = (len(cells), self.norb**2)
        cols = self.a * self.norb + self.b
        mat = sp.csr_matrix((self.t, (inv.ravel(), cols)), shape=shape)  # sums duplicates
        return cells, (mat if shape[0] * shape[1] > _SPARSE_SCATTER else mat.toarray())

    def _scatter_sum(self, coeffs: np.ndarray) -> np.ndarray:
        """coeffs (m, nR) @ T → (m, norb, norb)."""
        mat = self._scatter[1]
        out = (mat.T @ coeffs.T).T if sp.issparse(mat) else coeffs @ mat
        return np.asarray(out).reshape(-1, self.norb, self.norb)

    def _chunk(self, k: np.ndarray, derivatives: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """H, ∂H for one chunk of k: periodic part by GEMM, then the τ phases (theory §1).

        H_ab = H̃_ab e^{ik·(τ_b − τ_a)} with H̃_ab = Σ_R t_ab(R) e^{ik·R·A}, so
        ∂_i H_ab = [∂_i H̃_ab + i (τ_b − τ_a)_i H̃_ab] e^{ik·(τ_b − τ_a)}.
        """
        cells = self._scatter[0] @ self.lattice  # Cartesian R·A, (nR, 2)
        phase_r = np.exp(1j * (k @ cells.T))  # (nk, nR)
        orb = np.exp(1j * (k @ self.positions.T))  # e^{ik·τ_a}, (nk, norb)
        cell_phase = orb.conj()[:, :, None] * orb[:, None, :]
        periodic = self._scatter_sum(phase_r)
        if not derivatives:
            return periodic * cell_phase, None
        dtau = self.positions[None, :, :] - self.positions[:, None, :]  # τ_b − τ_a, (a, b, 2)
        dham = np.stack([(self._scatter_sum(phase_r * (1j * cells[:, i]))
                          + 1j * dtau[..., i] * periodic) * cell_phase for i in range(2)])
        return periodic * cell_phase, dham

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """H(k) (nk, norb, norb) and ∂H/∂k (2, nk, norb, norb) or None (theory §1).

        k is processed in chunks so the (nk, nR) phase table stays below ``_CHUNK_ENTRIES``.
        """
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        nk, norb = k.shape[0], self.norb
        ham = np.empty((nk, norb, norb), complex)
        dham = np.empty((2, nk, norb, norb), complex) if derivatives else None
        step = max(1, _CHUNK_ENTRIES // max(1, len(self._scatter[0])))
        for lo in range(0, nk, step):
            block = slice(lo, min(nk, lo + step))
            ham[block], d_block = self._chunk(k[block], derivatives)
            if dham is not None:
                dham[:, block] = d_block
        return ham, dham
