"""Command line: ``qgt-mpi run | bands | dry-run | validate | info | plot | model`` (``--version``).

``run INPUT [-o OUTPUT]`` computes under MPI; ``bands INPUT`` only the deck's band path;
``dry-run INPUT [--np N]`` estimates memory and cost; ``validate INPUT`` checks a deck;
``info OUTPUT [--group G] [--mu ...]`` summarises a result file; ``plot OUTPUT [options]``
draws figures (docs/theory.md: what is computed).
``model save INPUT -o MODEL.h5`` / ``model info MODEL.h5`` write and describe model files.

The only module that touches ``MPI.COMM_WORLD``. Rank 0 reads the input deck and broadcasts
its text, so every rank parses the same bytes and a bad deck fails identically everywhere:
one line on stderr from rank 0, exit status 2 on every rank, no traceback, no output file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from qgt_mpi.status import EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK


def _parser() -> argparse.ArgumentParser:
    """Argument parser for all subcommands."""
    from qgt_mpi import __version__

    p = argparse.ArgumentParser(
        prog="qgt-mpi", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Quantum-geometric transport of flat topological bands, over MPI.\n"
        "Subcommands: run, bands, dry-run, validate, info, plot, model (each has --help).",
        epilog="examples:\n"
        "  mpirun -n 8 qgt-mpi run inputs/haldane_flat.toml\n"
        "  mpirun -n 2 qgt-mpi bands deck.toml -o path.h5\n"
        "  qgt-mpi dry-run deck.toml --np 256\n"
        "  qgt-mpi validate deck.toml\n"
        "  qgt-mpi info results/haldane_flat.h5 --group transport --mu -0.25\n"
        "  qgt-mpi plot results/haldane_flat.h5 --x temperature --mu -0.25 0 --delta 0.01\n"
        "formulas, units and sign conventions: docs/theory.md")
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
    bands = sub.add_parser("bands", help="only the [bands] path of a deck (no k-grid pass); "
                           "one HDF5 file with /bands_path")
    bands.add_argument("input", help="TOML input deck with a [bands] section")
    bands.add_argument("-o", "--output", help="result file (default: the deck's [output] file "
                       "with _bands added to its stem)")
    bands.add_argument("--overwrite", action="store_true", help="replace an existing file")
    bands.add_argument("--pools", type=int, default=1, help="pools sharing the path points "
                       "(must divide the number of ranks; used by windowed solvers)")
    bands.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    dry = sub.add_parser("dry-run", help="decomposition, memory and cost estimate; no output")
    dry.add_argument("input")
    dry.add_argument("--np", type=int, default=None, help="number of MPI ranks planned "
                     "(default: the ranks of this launch, or the cores of this machine when "
                     "run serially)")
    dry.add_argument("--pools", type=int, default=1, help="k-point pools (divides --np)")
    val = sub.add_parser("validate", help="check an input deck and print what it would run")
    val.add_argument("input")
    info = sub.add_parser("info", help="human summary of a result file")
    info.add_argument("output")
    _selection_args(info)
    info.add_argument("--group", nargs="+", choices=("provenance", "bands", "geometry",
                      "transport", "timing"), help="only these parts (default: all)")
    plot = sub.add_parser("plot", help="publication figures (PNG and PDF) from a result file")
    plot.add_argument("output")
    plot.add_argument("-d", "--dir", default=None, help="figure directory (default: next to file)")
    from qgt_mpi.cli.plot_options import add_plot_args

    add_plot_args(plot)
    _selection_args(plot)
    _model_parser(sub)
    return p


def _selection_args(p: argparse.ArgumentParser) -> None:
    """--mu/--delta/--temperature: nearest sweep points (several values allowed)."""
    for name, unit in (("mu", "meV"), ("delta", "meV"), ("temperature", "K")):
        p.add_argument(f"--{name}", type=float, nargs="+", metavar=unit.upper(),
                       help=f"{name} [{unit}] values (nearest point of the sweep)")


def _model_parser(sub) -> None:
    """``model save`` / ``model info`` (qgt_mpi's own model file, models/modelfile/)."""
    mdl = sub.add_parser("model", help="save a deck's model to a model file, or describe one")
    msub = mdl.add_subparsers(dest="model_command", required=True)
    save = msub.add_parser("save", help="build the [model] of a deck and save it (HDF5)")
    save.add_argument("input", help="TOML input deck")
    save.add_argument("-o", "--output", required=True, help="model file to write")
    save.add_argument("--overwrite", action="store_true", help="replace an existing file")
    info = msub.add_parser("info", help="describe a model file")
    info.add_argument("file")


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
        if text is None:  # rank 0 read it without error, so it always has arrived
            raise InputError("INPUT", path, "the deck text did not reach this rank")
        return parse_deck(text, path)


def _start(comm, args):
    """Common start of ``run`` and ``bands``: an h5py that can write on this many ranks
    (parallel, or serial on one rank), logging, the deck, ``--pools`` checked. Collective;
    returns (log, config)."""
    from qgt_mpi import _deps
    from qgt_mpi.io.deck import InputError
    from qgt_mpi.logs import setup_logging
    from qgt_mpi.parallel.errors import collective

    _deps.require("h5py")
    with collective(comm, _deps.SerialH5pyError):  # one line from rank 0, exit status 2
        _deps.require_h5py_writer(comm)
    log = setup_logging(comm, args.verbose)
    config = _read_deck(comm, args.input)
    with collective(comm):
        if args.pools < 1 or comm.size % args.pools:
            raise InputError("--pools", args.pools, f"must be >= 1 and divide the {comm.size} "
                             "ranks")
    return log, config


def _run(comm, args) -> int:
    """``run``: the full pipeline. Collective."""
    from qgt_mpi.io.deck import InputError
    from qgt_mpi.parallel.errors import collective
    from qgt_mpi.run.driver import run

    args.startup.mark("imports")
    log, config = _start(comm, args)
    args.startup.mark("deck")
    with collective(comm):
        if not math.isfinite(args.checkpoint_interval) or args.checkpoint_interval < 0:
            raise InputError("--checkpoint-interval", args.checkpoint_interval,
                             "must be a finite number of seconds >= 0 (0 = every round)")
    log.info("%d rank(s) in %d pool(s) of %d", comm.size, args.pools, comm.size // args.pools)
    run(comm, config, args.output or config.output.file, log, args.restart,
        args.checkpoint_interval, args.pools, overwrite=args.overwrite,
        output_key="-o" if args.output else "output.file", startup=args.startup)
    return EXIT_OK


def _bands(comm, args) -> int:
    """``bands``: the deck's band path only (cli/bands.py). Collective."""
    from qgt_mpi.cli.bands import default_output, run_bands

    log, config = _start(comm, args)
    run_bands(comm, config, args.output or default_output(config), log, args.pools,
              overwrite=args.overwrite, output_key="-o" if args.output else "output.file")
    return EXIT_OK


def _dry_run(comm, args) -> int:
    """``dry-run``: plan a run without writing anything (rank 0 reports)."""
    from qgt_mpi.run.plan import plan

    config = _read_deck(comm, args.input)
    nprocs = args.np or (comm.size if comm.size > 1 else os.cpu_count() or 1)
    report = plan(comm, config, nprocs, args.pools)
    if comm.rank == 0:
        print(report)
    return EXIT_OK


def _validate(comm, args) -> int:
    """``validate``: parse the deck and build the model; print a summary (rank 0)."""
    from qgt_mpi.run.setup import prepare_model_only

    config = _read_deck(comm, args.input)
    summary = prepare_model_only(comm, config)
    if comm.rank == 0:
        print(summary)
    return EXIT_OK


def _info(comm, args) -> int:
    """``info``: summary of a result file (rank 0 prints)."""
    from qgt_mpi.io.input_guard import check_input
    from qgt_mpi.io.reader import summarize

    if comm.rank == 0:
        check_input(args.output, "result", "FILE")  # a regular file: never a FIFO or device
        _warn_file(args.output)
        try:
            print(summarize(args.output, args.group, _selection(args)), flush=True)
        except BrokenPipeError:  # `qgt-mpi info FILE | head`: end quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _selection(args):
    """The --mu/--delta/--temperature values as a plot/info Selection."""
    from qgt_mpi.cli.plot_options import selection

    return selection(args)


def _warn_file(path: str) -> None:
    """One stderr line per problem of a result file (incomplete, foreign)."""
    from qgt_mpi.io.reader import file_warnings

    for text in file_warnings(path):
        sys.stderr.write(f"qgt-mpi: warning: {text}\n")


def _plot(comm, args) -> int:
    """``plot``: figures from a result file (rank 0 draws; serial by nature)."""
    from qgt_mpi.cli.plot_options import options
    from qgt_mpi.io.input_guard import check_input
    from qgt_mpi.plot import plot_file

    if comm.rank == 0:
        check_input(args.output, "result", "FILE")
        _warn_file(args.output)
        for path in plot_file(args.output, args.dir, options(args)):
            print(path)
    return EXIT_OK


def _petsc_options(parser: argparse.ArgumentParser, argv: list[str] | None):
    """Parse ``argv``; ``-qgt_*`` options (and their values) go to PETSc/SLEPc.

    They are SLEPc's own options with the solver's prefix (``-qgt_st_ksp_type``, ...), read
    by ``EPS.setFromOptions`` in solvers/shift_invert.py, and only solver tuning passes
    (solvers/options.py: the target, the problem type, viewers and monitors are refused with
    one line, exit status 2). Anything else that argparse does not know is an error too.
    """
    args, extra = parser.parse_known_args(argv)
    if extra and not extra[0].startswith("-qgt_"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    bad = [t for t in extra if t.startswith("-") and not t.startswith("-qgt_")
           and not t[1:2].isdigit() and not t[1:2] == "."]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)} (solver options start -qgt_)")
    if extra:
        from qgt_mpi.io.checks import InputError
        from qgt_mpi.solvers import options

        try:
            argv_petsc = options.accept(extra)  # the allow-list: solver tuning only
        except InputError as exc:  # every rank refuses the same; the first rank says so
            if os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")) == "0":
                sys.stderr.write(f"qgt-mpi: input error: {exc}\n")
            raise SystemExit(EXIT_INPUT) from None
        import petsc4py

        petsc4py.init([sys.argv[0], *argv_petsc])  # before the first `from petsc4py import PETSc`
    return args


def _model(comm, args) -> int:
    """``model save`` / ``model info``. Collective."""
    from qgt_mpi.cli.model import info, save

    if args.model_command == "save":
        return save(comm, _read_deck(comm, args.input), args.output, args.overwrite)
    return info(comm, args.file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``qgt-mpi`` and ``python -m qgt_mpi``; returns the exit status."""
    from qgt_mpi import _env
    from qgt_mpi._startup import Startup

    startup = Startup()  # the start-up steps a run records as its first phases
    _env.pin_threads()  # one BLAS thread per rank; before numpy loads (the library does not)
    args = _petsc_options(_parser(), argv)
    args.startup = startup
    from qgt_mpi._deps import MissingDependencyError, missing_message

    try:
        return _main(args)
    except (ModuleNotFoundError, MissingDependencyError) as exc:  # one line, what to install
        if (getattr(exc, "name", None) or "").startswith("qgt_mpi"):
            raise  # our own module: a bug, not a missing package
        text = str(exc) if isinstance(exc, MissingDependencyError) else missing_message(exc)
        sys.stderr.write(f"qgt-mpi: error: {text}\n")
        return EXIT_FAILURE


def _main(args) -> int:
    """Dispatch a parsed command under COMM_WORLD."""
    args.startup.mark("interpreter")
    from mpi4py import MPI  # MPI_Init

    args.startup.mark("mpi_init")

    from qgt_mpi.io.checks import InputError
    from qgt_mpi.parallel.errors import CollectiveError, install_excepthook

    comm = MPI.COMM_WORLD
    install_excepthook(comm)
    handlers = {"run": _run, "validate": _validate, "info": _info, "plot": _plot,
                "dry-run": _dry_run, "model": _model, "bands": _bands}
    try:
        return handlers[args.command](comm, args)
    except CollectiveError as exc:
        if comm.rank == 0:
            kind = {EXIT_INPUT: "input error", EXIT_INTERRUPTED: "stopped"}.get(exc.status,
                                                                               "error")
            sys.stderr.write(f"qgt-mpi: {kind}: {exc}\n")
            sys.stderr.flush()
        return exc.status
    except InputError as exc:  # info/plot (rank 0 alone): a FIFO, a device, no such file
        if args.command not in ("info", "plot"):
            raise
        sys.stderr.write(f"qgt-mpi: error: cannot read {args.output!r}: {exc.allowed}\n")
        return EXIT_INPUT
    except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
        # info/plot on an unreadable, foreign or malformed file (a dataset of the wrong
        # shape or type): one line naming the file, never a traceback
        if args.command not in ("info", "plot"):
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"qgt-mpi: error: cannot read {args.output!r}: {text}\n")
        return EXIT_INPUT
