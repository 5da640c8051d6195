"""Eigensolvers: per-k diagonalisation returning ``Eigenpairs`` (docs/architecture.md)."""

from qgt_mpi.solvers.base import Eigenpairs
from qgt_mpi.solvers.dense import DenseSolver

__all__ = ["DenseSolver", "Eigenpairs"]
