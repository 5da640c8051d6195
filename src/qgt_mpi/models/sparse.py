"""Sparse Bloch models: a fixed pattern whose values are refilled per k (theory §2.1, §2.7).

Large models (supercells, moiré continuum and atomistic models) never form dense H(k) in
production. They expose the facts every BlochModel has (``lattice``, ``positions``, ``norb``,
``nbands``, ``reciprocal``, ``cell_area``, ``describe``) plus

* ``rows``, ``cols`` (nnz,) int64: the pattern in CSR order (sorted by row, then column,
  no duplicates), fixed for the whole run;
* ``values(k) -> (h, dhx, dhy)``: the (nnz,) complex values of H(k), ∂H/∂k_x, ∂H/∂k_y at
  ONE Cartesian k-point, one vectorised expression (no loop over hoppings or orbitals).

The sparse solver (solvers/slepc.py) copies the rows a pool rank owns into PETSc AIJ
matrices; ``hamiltonian`` (dense stacks for a batch of k) lets the dense solver and the
tests treat a small sparse model like any other. ``operators`` holds optional k-independent
symmetry operators (e.g. the sublattice/chiral operator of theory §5) as CSR matrices.

:class:`BondModel` is the common case of theory §1's Bloch convention: bonds (row a, column b)
with displacement d = R·A + τ_b − τ_a and amplitude t, so that
H_ab(k) = Σ_{bonds a←b} t e^{ik·d} and ∂_i H_ab(k) = Σ i d_i t e^{ik·d}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from qgt_mpi.models.lattice import LatticeCell, TightBinding

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from qgt_mpi.models.protocols import BlochModel


class SparseModel(LatticeCell):
    """Base class of sparse models: pattern, per-k values, dense fallback for small sizes.

    Subclasses set ``lattice``, ``positions``, ``rows``, ``cols``, ``info`` and implement
    :meth:`values`; :meth:`_finish_pattern` sets ``indptr``. Every instance is a
    ``SparseBlochModel`` (models/protocols.py).
    """

    lattice: np.ndarray
    positions: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    indptr: np.ndarray
    info: dict[str, object]
    operators: dict[str, sp.csr_matrix]

    @property
    def norb(self) -> int:
        """Orbitals (basis states) per cell."""
        return int(self.positions.shape[0])

    @property
    def nbands(self) -> int:
        """Bands the model has (a windowed solver exposes fewer)."""
        return self.norb

    @property
    def nnz(self) -> int:
        """Stored entries of H(k)."""
        return int(self.rows.size)

    def describe(self) -> dict[str, object]:
        """Scalar facts for the output file's /model attributes."""
        return {"kind": "sparse", **self.info, "norb": self.norb, "nnz": self.nnz}

    def values(self, k: np.ndarray, span: slice | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values of H, ∂H/∂k_x, ∂H/∂k_y at one Cartesian k (each (nnz,) complex).

        ``span``: only the pattern entries ``span`` (a contiguous range of rows, as a pool
        rank owns them); the values are then the same as ``values(k)[i][span]``.
        """
        raise NotImplementedError

    def _finish_pattern(self) -> None:
        """Check the pattern is CSR-ordered and duplicate-free; store indptr."""
        key = self.rows * self.norb + self.cols
        if key.size and np.any(np.diff(key) <= 0):
            raise ValueError("sparse pattern must be sorted by (row, col) without duplicates")
        self.indptr = np.searchsorted(self.rows, np.arange(self.norb + 1)).astype(np.int64)

    def csr(self, k: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
        """H(k), ∂H/∂k_x, ∂H/∂k_y at one k as SciPy CSR matrices (theory §1)."""
        shape = (self.norb, self.norb)
        h, dx, dy = (sp.csr_matrix((v, self.cols, self.indptr), shape=shape)
                     for v in self.values(np.asarray(k, dtype=float).ravel()))
        return h, dx, dy

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Dense H (nk, norb, norb) and ∂H (2, nk, norb, norb) for a batch (small models only)."""
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        n = self.norb
        ham = np.zeros((k.shape[0], n, n), complex)
        dham = np.zeros((2, k.shape[0], n, n), complex) if derivatives else None
        for i, kk in enumerate(k):  # dense fallback: one vectorised fill per k-point
            h, dx, dy = self.values(kk)
            ham[i, self.rows, self.cols] = h
            if dham is not None:
                dham[0, i, self.rows, self.cols] = dx
                dham[1, i, self.rows, self.cols] = dy
        return ham, dham


class BondModel(SparseModel):
    """Sparse model from a bond list in the Bloch convention of theory §1.

    Parameters
    ----------
    lattice : (2, 2) rows a1, a2; positions : (norb, 2) Cartesian τ_a.
    a, b : (nbond,) orbital indices (hop from b to a); d : (nbond, 2) Cartesian
        displacements R·A + τ_b − τ_a; t : (nbond,) complex amplitudes [meV]. Several bonds
        may share (a, b) (different images); their terms are summed into one entry.
    info : facts for :meth:`describe`; operators : optional symmetry operators (CSR).
    """

    def __init__(self, lattice: ArrayLike, positions: ArrayLike, a: ArrayLike, b: ArrayLike,
                 d: ArrayLike, t: ArrayLike, info: dict[str, object] | None = None,
                 operators: dict[str, sp.csr_matrix] | None = None) -> None:
        self.lattice = np.asarray(lattice, dtype=float).reshape(2, 2)
        self.positions = np.asarray(positions, dtype=float).reshape(-1, 2)
        a, b = np.asarray(a, dtype=np.int64).ravel(), np.asarray(b, dtype=np.int64).ravel()
        self.d = np.asarray(d, dtype=float).reshape(-1, 2)
        self.t = np.asarray(t, dtype=complex).ravel()
        if not a.size == b.size == self.t.size == self.d.shape[0]:
            raise ValueError("bond arrays a, b, d, t must have the same length")
        keys, self.entry = np.unique(a * self.norb + b, return_inverse=True)
        self.entry = self.entry.ravel()
        self.rows, self.cols = keys // self.norb, keys % self.norb
        self.info = dict(info or {})
        self.operators = dict(operators or {})
        self._finish_pattern()

    @classmethod
    def from_tight_binding(cls, model: TightBinding, info: dict[str, object] | None = None
                           ) -> BondModel:
        """The same Hamiltonian as a TightBinding model, as a bond list."""
        return cls(model.lattice, model.positions, model.a, model.b, model.displacements,
                   model.t, {**model.info, **(info or {})})

    def _bonds(self, span: slice | None) -> tuple[np.ndarray | slice, np.ndarray, int]:
        """(bonds, their entries relative to the span start, span length) of a pattern span."""
        if span is None:
            return slice(None), self.entry, self.rows.size
        lo, hi, _ = span.indices(self.rows.size)
        key = (lo, hi)
        cache = self.__dict__.setdefault("_span_bonds", {})
        if key not in cache:
            bonds = np.flatnonzero((self.entry >= lo) & (self.entry < hi))
            cache[key] = (bonds, self.entry[bonds] - lo, hi - lo)
        return cache[key]

    def values(self, k: np.ndarray, span: slice | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H, ∂H/∂k_x, ∂H/∂k_y values at one k (theory §1: ∂_i e^{ik·d} = i d_i e^{ik·d}),
        of every entry or of the entries ``span`` only (only their bonds are evaluated)."""
        k = np.asarray(k, dtype=float).ravel()
        bonds, entry, n = self._bonds(span)
        d = self.d[bonds]
        terms = self.t[bonds] * np.exp(1j * (d @ k))

        def summed(x: np.ndarray) -> np.ndarray:  # one bincount per real/imag part
            return np.bincount(entry, x.real, n) + 1j * np.bincount(entry, x.imag, n)

        return summed(terms), summed(1j * d[:, 0] * terms), summed(1j * d[:, 1] * terms)

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Dense H and ∂H for a batch of k, vectorised over k and bonds (small models only)."""
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        n, nnz = self.norb, self.rows.size
        scatter = sp.csr_matrix((np.ones(self.entry.size), (np.arange(self.entry.size),
                                                            self.entry)), (self.entry.size, nnz))
        terms = self.t[None, :] * np.exp(1j * (k @ self.d.T))  # (nk, nbond)

        def dense(bond_terms: np.ndarray) -> np.ndarray:
            out = np.zeros((k.shape[0], n, n), complex)
            out[:, self.rows, self.cols] = (scatter.T @ bond_terms.T).T
            return out

        if not derivatives:
            return dense(terms), None
        return dense(terms), np.stack([dense(1j * self.d[:, i] * terms) for i in range(2)])

    def check_hermitian(self, k: np.ndarray | None = None, atol: float = 1e-10) -> bool:
        """True when H(k) = H(k)† at ``k`` (default: a generic point)."""
        k = np.array([0.123, -0.0457]) if k is None else np.asarray(k, dtype=float)
        h = self.csr(k)[0]
        return bool(abs(h - h.getH()).max() <= atol) if h.nnz else True


def as_sparse(model: BlochModel) -> SparseModel:
    """A sparse view of ``model``: itself if sparse, a BondModel for a TightBinding.

    Raises ValueError for models defined only in k-space (exact flattening, range = ∞).
    """
    if isinstance(model, SparseModel):
        return model
    if isinstance(model, TightBinding):
        return BondModel.from_tight_binding(model)
    raise ValueError(f"model {model.describe().get('kind', '?')!r} has no real-space hoppings "
                     "(exact flattening is defined in k-space); use flatten.range = R_c "
                     "for a finite-range model, or the dense solver")
