"""The run pipeline: a deck in, one result file out (docs/architecture.md, "A run").

``setup`` turns a deck into a model, a solver on its pool and the k-pass accumulators;
``kpass`` solves the blocks of k-points in collective rounds (checkpointed by ``restart``);
``sweep`` reduces the sums and evaluates the (T, μ, δ) sweep unit by unit into the file;
``bandpath`` solves a ``[bands]`` path; ``results`` and ``diagnostics`` assemble the file's
contents, provenance and flags; ``memory`` and ``plan`` estimate a run before it starts
(``qgt-mpi dry-run``); ``driver`` strings the phases together (``run`` for the CLI,
``compute`` for the Python API). Every function that communicates takes ``comm`` and is
collective over it; failures are agreed with ``parallel.collective``.
"""
