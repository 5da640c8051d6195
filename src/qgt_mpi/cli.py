"""Command line: ``qgt-mpi run INPUT [-o OUTPUT]``, ``validate INPUT``, ``info OUTPUT``.

The only module that touches ``MPI.COMM_WORLD``. Rank 0 reads the input deck and broadcasts
its text, so every rank parses the same bytes and a bad deck fails identically everywhere:
one line on stderr from rank 0, exit status 2 on every rank, no traceback, no output file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

EXIT_OK, EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    """Argument parser for all subcommands."""
    from qgt_mpi import __version__

    p = argparse.ArgumentParser(prog="qgt-mpi", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"qgt_mpi {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an input deck under MPI and write one HDF5 file")
    run.add_argument("input", help="TOML input deck")
    run.add_argument("-o", "--output", help="result file (default: [output] file of the deck)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--restart", dest="restart", action="store_const", const="force",
                       default="auto", help="continue from OUTPUT.checkpoint.h5 (must exist; "
                       "a run resumes from it by default when it exists)")
    again.add_argument("--no-restart", dest="restart", action="store_const", const="never",
                       help="ignore and overwrite an existing checkpoint")
    run.add_argument("--checkpoint-interval", type=float, default=300.0, metavar="SECONDS",
                     help="seconds between checkpoints (default 300; 0 = after every round; "
                     "finite and >= 0)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing result file (it is kept by default)")
    run.add_argument("--pools", type=int, default=1, help="k-point pools (must divide the "
                     "number of ranks; used by distributed solvers)")
    dry = sub.add_parser("dry-run", help="decomposition, memory and cost estimate; no output")
    dry.add_argument("input")
    dry.add_argument("--np", type=int, required=True, help="number of MPI ranks planned")
    dry.add_argument("--pools", type=int, default=1, help="k-point pools (divides --np)")
    val = sub.add_parser("validate", help="check an input deck and print what it would run")
    val.add_argument("input")
    info = sub.add_parser("info", help="human summary of a result file")
    info.add_argument("output")
    plot = sub.add_parser("plot", help="publication figures (PNG and PDF) from a result file")
    plot.add_argument("output")
    plot.add_argument("-d", "--dir", default=None, help="figure directory (default: next to file)")
    return p


def _read_deck(comm, path: str):
    """Rank 0 reads the deck text; all ranks parse it. Collective."""
    from qgt_mpi.io.deck import InputError, parse_deck, read_deck_text
    from qgt_mpi.parallel import broadcast
    from qgt_mpi.parallel.errors import collective

    text, error = None, None
    if comm.rank == 0:
        try:
            text = read_deck_text(path)
        except InputError as exc:
            error = exc
    text, error = broadcast(comm, (text, error))
    with collective(comm):
        if error is not None:
            raise error
        return parse_deck(text, path)


def _run(comm, args) -> int:
    """``run``: the full pipeline. Collective."""
    from qgt_mpi.driver import run
    from qgt_mpi.io.deck import InputError
    from qgt_mpi.logs import setup_logging
    from qgt_mpi.parallel.errors import collective
    from qgt_mpi.parallel.pools import make_pools

    log = setup_logging(comm, args.verbose)
    config = _read_deck(comm, args.input)
    with collective(comm):
        if args.pools < 1 or comm.size % args.pools:
            raise InputError("--pools", args.pools, f"must be >= 1 and divide the {comm.size} "
                             "ranks")
        if not math.isfinite(args.checkpoint_interval) or args.checkpoint_interval < 0:
            raise InputError("--checkpoint-interval", args.checkpoint_interval,
                             "must be a finite number of seconds >= 0 (0 = every round)")
    pools = make_pools(comm, args.pools)
    log.info("%d rank(s) in %d pool(s) of %d", comm.size, pools.n_pools, pools.pool.size)
    pools.free()
    run(comm, config, args.output or config.output.file, log, args.restart,
        args.checkpoint_interval, overwrite=args.overwrite,
        output_key="-o" if args.output else "output.file")
    return EXIT_OK


def _dry_run(comm, args) -> int:
    """``dry-run``: plan a run without writing anything (rank 0 reports)."""
    from qgt_mpi.dryrun import plan

    config = _read_deck(comm, args.input)
    report = plan(comm, config, args.np, args.pools)
    if comm.rank == 0:
        print(report)
    return EXIT_OK


def _validate(comm, args) -> int:
    """``validate``: parse the deck and build the model; print a summary (rank 0)."""
    from qgt_mpi.driver import prepare_model_only

    config = _read_deck(comm, args.input)
    summary = prepare_model_only(comm, config)
    if comm.rank == 0:
        print(summary)
    return EXIT_OK


def _info(comm, args) -> int:
    """``info``: summary of a result file (rank 0 prints)."""
    from qgt_mpi.io.reader import summarize

    if comm.rank == 0:
        _warn_file(args.output)
        try:
            print(summarize(args.output), flush=True)
        except BrokenPipeError:  # `qgt-mpi info FILE | head`: end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _warn_file(path: str) -> None:
    """One stderr line per problem of a result file (incomplete, foreign)."""
    from qgt_mpi.io.reader import file_warnings

    for text in file_warnings(path):
        sys.stderr.write(f"qgt-mpi: warning: {text}\n")


def _plot(comm, args) -> int:
    """``plot``: figures from a result file (rank 0 draws; serial by nature)."""
    from qgt_mpi.plot import plot_file

    if comm.rank == 0:
        _warn_file(args.output)
        for path in plot_file(args.output, args.dir):
            print(path)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``qgt-mpi`` and ``python -m qgt_mpi``; returns the exit status."""
    args = _parser().parse_args(argv)
    from mpi4py import MPI

    import qgt_mpi  # noqa: F401  (fixes threads, h5py-MPI and PETSc env before numpy)
    from qgt_mpi.parallel.errors import CollectiveError, install_excepthook

    comm = MPI.COMM_WORLD
    install_excepthook(comm)
    handlers = {"run": _run, "validate": _validate, "info": _info, "plot": _plot,
                "dry-run": _dry_run}
    try:
        return handlers[args.command](comm, args)
    except CollectiveError as exc:
        if comm.rank == 0:
            kind = {EXIT_INPUT: "input error", EXIT_INTERRUPTED: "stopped"}.get(exc.status,
                                                                               "error")
            sys.stderr.write(f"qgt-mpi: {kind}: {exc}\n")
            sys.stderr.flush()
        return exc.status
    except (OSError, KeyError, ValueError) as exc:  # info on an unreadable/foreign file
        if args.command not in ("info", "plot"):
            raise
        sys.stderr.write(f"qgt-mpi: error: cannot read {args.output!r}: {exc}\n")
        return EXIT_INPUT
