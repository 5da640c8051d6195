"""``python -m qgt_mpi`` runs the command-line interface."""

from qgt_mpi.cli.main import main

raise SystemExit(main())
