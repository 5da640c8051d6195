"""The model seam: what every Bloch model offers, and what a sparse model adds.

Any object with these members is a model (structural typing, ``typing.Protocol``): the dense
:class:`~qgt_mpi.models.lattice.TightBinding`, the exactly flattened model
(models/flatten.py), and the sparse models (:class:`~qgt_mpi.models.sparse.SparseModel` and
its subclasses: bond lists, supercells, BM continuum, atomistic TBG). Solvers, geometry and
the run pipeline are written against these protocols, never against a model class
(docs/architecture.md, "BlochModel" and "SparseModel").

Optional extras are looked up where they are used: ``operators`` (k-independent symmetry
operators, CSR), ``valley(k)``, ``resolve_default``, ``high_symmetry_points``, ``csr(k)``,
``velocity_matrices(k, vectors)`` (U† ∂_iH U, (2, nk, nb, nb), for a model whose ∂H has few
entries; the dense solver then skips the dense ∂H).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp


class BlochModel(Protocol):
    """A Bloch Hamiltonian on a 2D lattice in the convention of theory §1.

    ``lattice`` rows a1, a2 and ``reciprocal`` rows b1, b2 (a_i·b_j = 2π δ_ij), Cartesian,
    units of a; ``positions`` (norb, 2) the orbital positions τ_a; ``nbands`` the bands the
    model exposes (== ``norb``); ``cell_area`` = |det lattice|.
    """

    @property
    def lattice(self) -> np.ndarray: ...

    @property
    def positions(self) -> np.ndarray: ...

    @property
    def norb(self) -> int: ...

    @property
    def nbands(self) -> int: ...

    @property
    def reciprocal(self) -> np.ndarray: ...

    @property
    def cell_area(self) -> float: ...

    def describe(self) -> dict[str, object]:
        """Scalar facts for the output file's /model attributes (kind, parameters, ...)."""
        ...

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """H (nk, norb, norb) complex and ∂H (2, nk, norb, norb) = (∂H/∂kx, ∂H/∂ky), or None
        when ``derivatives`` is False, for Cartesian k (nk, 2)."""
        ...


class SparseBlochModel(BlochModel, Protocol):
    """A Bloch model with a fixed sparsity pattern whose values are refilled per k.

    ``rows``, ``cols`` (nnz,) int64 in CSR order (sorted by row, then column, no duplicates)
    and ``indptr`` (norb + 1,) their row pointer; the pattern is the same at every k.
    """

    @property
    def rows(self) -> np.ndarray: ...

    @property
    def cols(self) -> np.ndarray: ...

    @property
    def indptr(self) -> np.ndarray: ...

    def values(self, k: np.ndarray, span: slice | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nnz,) complex values of H, ∂H/∂k_x, ∂H/∂k_y at ONE Cartesian k; with ``span``
        only the pattern entries ``span`` (a contiguous range of rows)."""
        ...


class ValleyModel(BlochModel, Protocol):
    """A Bloch model with a valley operator V(k) (atomistic TBG, theory §5.8)."""

    def valley(self, k: np.ndarray) -> sp.csr_matrix:
        """V(k) at one Cartesian k (norb × norb, sparse)."""
        ...
