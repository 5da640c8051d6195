"""Exit statuses of ``qgt-mpi`` — the one definition (README "Command line", jobs/README.md).

The SLURM templates in jobs/ branch on these numbers (a run stopped by a signal after its
checkpoint exits with ``EXIT_INTERRUPTED`` and is resubmitted); tests/test_jobs.py checks that
every template's ``case`` arms name exactly these values.
"""

from __future__ import annotations

EXIT_OK = 0  # done: the result file is complete
EXIT_FAILURE = 1  # run-time failure, reported once, every rank stopped together
EXIT_INPUT = 2  # bad input or arguments (also an output that would destroy data, or more
#                than one rank with a serial h5py); no file
EXIT_INTERRUPTED = 3  # stopped by a signal after checkpointing: rerun the same command
