"""The ``qgt-mpi`` command: run, bands, dry-run, validate, info, plot, model.

``main`` (cli/main.py) parses the command line, pins BLAS threads, and is the only user of
``MPI.COMM_WORLD``; ``model`` is ``qgt-mpi model save|info``, ``bands`` is ``qgt-mpi bands``,
``plot_options`` the options of ``qgt-mpi plot``. Exit statuses are ``qgt_mpi.status``.
"""

from qgt_mpi.cli.main import main

__all__ = ["main"]
