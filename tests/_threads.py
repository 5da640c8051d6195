"""Pin BLAS/OpenMP to one thread per test process, as ``qgt-mpi`` does (imported first).

The library itself leaves thread settings alone (docs/api.md); the test ranks share cores.
"""

from qgt_mpi import _env

_env.pin_threads()
