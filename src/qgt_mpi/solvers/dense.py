"""Dense batched eigensolver (LAPACK via ``numpy.linalg.eigh``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from qgt_mpi.solvers.base import Eigenpairs

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel


def band_velocities(vectors: np.ndarray, dham: np.ndarray) -> np.ndarray:
    """v^i = U† ∂_iH U, shape (2, nk, nb, nb) (theory §1)."""
    vectors_h = vectors.conj().swapaxes(-1, -2)
    return vectors_h[None] @ dham @ vectors[None]


class DenseSolver:
    """All bands of every k-point by batched ``eigh``; no communication."""

    name = "dense"
    comm: MPI.Comm = MPI.COMM_SELF  # each rank solves its own k-points (a pool of one)
    windowed = False  # every band

    @property
    def core(self) -> DenseSolver:
        """The solver computing the eigenvectors: itself."""
        return self

    def serial(self) -> DenseSolver:
        """Itself: it never communicates."""
        return self

    def bands(self, model: BlochModel) -> int:
        """Bands the solver returns: all of them."""
        return int(model.nbands)

    def describe(self) -> dict[str, object]:
        """Solver facts for the output file."""
        return {"solver": self.name}

    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Diagonalise H(k) for a batch of Cartesian k (nk, 2).

        Parameters
        ----------
        model : BlochModel.
        k : (nk, 2) Cartesian k-points (nk may be 0).
        velocities : also return v^i_nm = <n|∂_i H|m>, by the model's
            ``velocity_matrices(k, vectors)`` when it has one (from the few entries of a
            sparse ∂H, models/continuum/builder.py), else from the dense ∂H.
        """
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        sparse_v = getattr(model, "velocity_matrices", None)  # optional (models/protocols.py)
        ham, dham = model.hamiltonian(k, derivatives=velocities and sparse_v is None)
        energies, vectors = np.linalg.eigh(ham)
        if velocities and sparse_v is not None:
            return Eigenpairs(energies, vectors, sparse_v(k, vectors))
        vel = band_velocities(vectors, dham) if dham is not None else None
        return Eigenpairs(energies, vectors, vel)
