"""qgt_mpi: quantum-geometric transport of flat topological bands, on MPI.

The package is organised by role (see ``docs/architecture.md``): ``models`` build Bloch
Hamiltonians, ``solvers`` diagonalise them for batches of k-points, ``geometry`` turns
eigenpairs into velocities, Berry curvature, metric and Chern numbers, ``kernels`` holds
the closed-form structural tensors (SPEC §3), ``transport`` accumulates and evaluates
the k-sums of SPEC §4, ``parallel`` is the one home of MPI helpers, ``io`` reads input
decks and writes result files, and ``cli`` is the only module that touches COMM_WORLD.
"""

from qgt_mpi import _env  # noqa: F401  (must precede numpy/h5py/petsc4py imports)

__version__ = "0.1.0"
