"""A whole run: input deck → model → k-pass → reductions → observables → one HDF5 file.

The set-up (model, solver, accumulators) is run/setup.py; post-run checks run/diagnostics.py.
"""

from __future__ import annotations

import logging
import os

from mpi4py import MPI

from qgt_mpi._startup import Startup
from qgt_mpi.io import checkpoint, writer
from qgt_mpi.io.deck import RunConfig
from qgt_mpi.io.output_guard import guard, input_paths
from qgt_mpi.io.sweep_file import check_disk
from qgt_mpi.parallel import Timers, broadcast, collective
from qgt_mpi.parallel.pools import make_pools
from qgt_mpi.parallel.signals import EXIT_INTERRUPTED, StopFlag, stop_after, stop_on_signals
from qgt_mpi.parallel.timing import format_rank0_table, format_table
from qgt_mpi.run import diagnostics, memory
from qgt_mpi.run.bandpath import bands_phase, resolve_path
from qgt_mpi.run.blocks import DENSE_BLOCK_K, idle_warning, imbalance
from qgt_mpi.run.kpass import KPass, kfield_meta, kfield_slabs, run_blocks
from qgt_mpi.run.restart import Checkpointer, restored_slabs, resume
from qgt_mpi.run.results import assemble, valley_group
from qgt_mpi.run.setup import WindowTerms, make_job, prepare, window_terms
from qgt_mpi.run.sweep import bytes_per_point, finish_in_memory, finish_streamed
from qgt_mpi.solvers import accelerate, images, is_windowed, resolve, safe_shift

# Start-up before the run's timers exist (cli/main.py measures them; 0 in the Python API):
# interpreter = process start to main() (Python, site, qgt_mpi, argparse), mpi_init = the
# import of mpi4py.MPI (MPI_Init), imports = numpy, h5py and the run's modules, deck = read,
# parse and check the deck. "k-pass" is the whole k-pass (solve ... checkpoint and waiting).
STARTUP = ["interpreter", "mpi_init", "imports", "deck"]
PHASES = [*STARTUP, "setup", "k-pass", "solve", "geometry", "deposit", "checkpoint",
          "reduce+evaluate", "superfluid", "valley", "bands"]


def finish(comm: MPI.Comm, job: KPass, degeneracy: float, filling=None,
           filling_bands=None) -> tuple[dict, dict]:
    """Reduce and evaluate the sweep (theory §4) and the geometry (theory §5) in memory.

    Collective; the same arrays on every rank (the Python API; runs stream the sweep to the
    file). ``filling``: at fixed filling (transport/filling.py) of ``filling_bands``.
    """
    with collective(comm):
        norm = job.nk * job.model.cell_area
        transport = finish_in_memory(comm, job.sums, norm, degeneracy, filling, filling_bands)
        geometry = job.geometry.finish(comm, job.nk, job.model.cell_area)
    return transport, geometry


def compute(comm: MPI.Comm, model, kgrid: tuple[int, int], temperature, mu, delta,
            degeneracy: float = 1.0, *, chunk: int | None = None, kresolved: bool = False,
            log: logging.Logger | None = None, solver=None,
            window: WindowTerms | None = None, filling=None, filling_bands=None,
            timers: Timers | None = None) -> tuple[KPass, dict, dict]:
    """k-pass, reductions and evaluation for one model and sweep, no file. Collective.

    ``solver`` (default dense) may be a windowed solver on a pool communicator of ``comm``
    (pools are contiguous blocks of ranks); ``window`` as in :func:`make_job`; ``filling``
    and ``filling_bands`` make the sweep one at fixed filling of that band group (theory §4.7).
    ``timers`` (default: new ones) collects the phase times (the Python API keeps them).
    Returns the rank's KPass (with its k-resolved blocks if asked) and the reduced transport
    (theory §4) and geometry (theory §5) dictionaries, identical on every rank.
    """
    timers = timers if timers is not None else Timers()
    job = make_job(comm, model, kgrid, temperature, mu, delta, chunk, kresolved, solver,
                   window, None if filling is None else list(filling_bands))
    run_blocks(comm, job, list(range(job.n_blocks)), timers,
               log or logging.getLogger("qgt_mpi"), 100.0)
    with timers.phase("reduce+evaluate"):
        transport, geometry = finish(comm, job, degeneracy, filling, filling_bands)
    return job, transport, geometry


def run(comm: MPI.Comm, config: RunConfig, output: str, log: logging.Logger,
        restart: str = "auto", checkpoint_interval: float = 300.0, pools: int = 1, *,
        overwrite: bool = False, output_key: str = "-o",
        startup: Startup | None = None) -> dict:
    """Execute one run and write ``output``. Collective over ``comm``.

    Before anything is computed the output path is checked and locked for the whole run
    (io/output_guard.py): an input error names ``output_key`` when the output is the deck,
    not a regular file, an existing result (unless ``overwrite``) or in use by another run.

    ``restart``: "auto" resumes from ``<output>.checkpoint.h5`` when present, "force"
    requires it, "never" starts over. Checkpoints are written every
    ``checkpoint_interval`` seconds and on SIGTERM/SIGINT/SIGUSR1 (then the run stops with
    CollectiveError status EXIT_INTERRUPTED). ``pools``: pools solving one k-point together
    (windowed solvers). Returns the reduced geometry (the sweep is in the file); raises
    CollectiveError (every rank) for input errors and failures, leaving no result file.
    ``startup``: this rank's :data:`STARTUP` steps, measured by the caller (cli/main.py).
    """
    lock = None
    try:
        with collective(comm):
            lock = guard(comm, output, config.source, overwrite, output_key,
                             input_paths(config))
        return _run_locked(comm, config, output, log, restart, checkpoint_interval, pools,
                           startup)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(comm, config, output, log, restart, checkpoint_interval, pools,
                startup) -> dict:
    """The run proper, with the output checked and locked (see :func:`run`). Collective."""
    timers = Timers()
    if startup is not None:
        for name, seconds in startup.seconds.items():
            timers.add(name, seconds, startup.peak_mib.get(name))
    s = config.sweep
    with timers.phase("setup"):
        layout = make_pools(comm, pools)
        model, solver, delta = prepare(comm, config, output, layout.pool)
        with collective(comm):
            window = window_terms(config, solver, delta)
        job = make_job(comm, model, config.kgrid, s.temperature, s.mu, delta,
                       config.run.chunk, config.output.kresolved, solver, window,
                       None if s.filling is None else list(s.filling_bands))
        path = checkpoint.checkpoint_name(output)
        fp = checkpoint.fingerprint(config, hash_files=comm.rank == 0)  # file contents too
        n_first = s.mu.size if s.filling is None else s.filling.size
        check_disk(comm, output, n_first * len(delta) * s.temperature.size,
                   bytes_per_point(job.sums, s.filling is not None))
        mem_est = memory.check(comm, job, config.output.kresolved)
        done, restored, n_done = resume(comm, job, path, fp, restart,
                                        adopt_chunk=config.run.chunk is None)
        saver = Checkpointer(path, fp, checkpoint_interval, done, restored)
    _announce(log, config.title, model, comm, job, n_done, config.run.chunk is not None)
    if comm.rank == 0:
        diagnostics.check_flavours(log, model, config.degeneracy)
    with stop_on_signals(StopFlag()) as stop:  # k-pass, evaluation, superfluid, valley
        todo = [b for b in range(job.n_blocks) if not done[b]]
        run_blocks(comm, job, todo, timers, log, config.run.progress_percent, saver, stop)
        with timers.phase("reduce+evaluate"):
            geometry, counts, mu_used = finish_streamed(comm, job, config, output, log,
                                                        saver, stop)
        try:  # the partial file holds the streamed sweep: removed on a later failure
            if comm.rank == 0:  # the same reduced inputs on every rank: warn once
                diagnostics.check_window(log, job, geometry, mu_used)  # solved μ(ν, T)
            _complete(comm, config, job, output, geometry, counts, timers, log, mem_est,
                      (path, done, restored), layout.across, stop)
        except BaseException as exc:
            if getattr(exc, "status", None) != EXIT_INTERRUPTED:
                _remove_partial(comm, output)
                raise
            saver.save(comm, job, [])  # a stop: keep the sweep (partial file, checkpoint)
            raise
    saver.remove(comm)
    seconds, peak = timers.rank0_vs_others(comm, [*PHASES, "write"])
    log.info("rank 0 against the other %d rank(s) (time per phase, peak memory at its end):\n%s",
             comm.size - 1, format_rank0_table([*PHASES, "write"], seconds, peak))
    log.info("results written to %s (write %.2f s, run %.2f s)", os.path.abspath(output),
             timers.seconds["write"], timers.elapsed())
    return {"transport": {}, "geometry": geometry}  # the sweep is in the file (streamed)


def _complete(comm, config, job, output, geometry, counts, timers, log, mem_est,
              restart_state, across, stop) -> None:
    """After the evaluation: the extra phases, file contents, the final write. Collective."""
    groups = extra_phases(comm, config, job, geometry, timers, log, across, stop)
    result = result_file(comm, config, job, job.sums.delta, {}, geometry, timers, log, mem_est,
                         counts)
    for name, group in groups.items():
        result.groups[name], result.group_attrs[name] = group
    if config.output.kresolved:
        path, done, restored = restart_state
        with collective(comm):  # each rank reads back its share of the restored blocks
            result.kslabs = kfield_slabs(job) + (
                restored_slabs(comm, path, done, job) if restored else [])
    write_result(comm, output, result, timers, append=True)  # the sweep is in the file


def extra_phases(comm, config, job, geometry, timers, log, across, stop=None) -> dict:
    """The phases after the sweep a deck may ask for — superfluid weight, valley geometry,
    band path — as ``{group name: (datasets, attrs)}``. Collective; with ``stop`` (runs) a
    stop signal is honoured after each phase (signals.stop_after). The CLI run and the
    Python API both come here."""
    groups = {}
    superfluid = superfluid_phase(comm, config, job.model, timers, log,
                                  geometry if is_windowed(job.solver) else None, job.solver,
                                  across)
    if superfluid is not None:
        groups["superfluid"] = superfluid
    if stop is not None:
        stop_after(comm, stop, "superfluid phase")
    if config.solver.valley:
        with timers.phase("valley"):
            groups["valley"] = valley_group(comm, across, job, log)
        if stop is not None:
            stop_after(comm, stop, "valley phase")
    bands_path = bands_phase(comm, job.solver, job.model, resolve_path(config.bands, job.model),
                             log, timers, config.run.progress_percent,
                             config.run.chunk or DENSE_BLOCK_K)
    if bands_path is not None:  # [bands]: the path solved with the run's solver (bandpath.py)
        groups["bands_path"] = bands_path
        if stop is not None:
            stop_after(comm, stop, "bands path phase")
    return groups


def result_file(comm, config, job, delta, transport, geometry, timers, log, mem_est=None,
                counts=None):
    """Assemble the result file contents and log the timing table. Collective.

    ``mem_est`` (memory.check's parts) is recorded when given (runs; not the Python API).
    """
    timing = timers.reduce(comm, PHASES)
    rank0 = timers.rank0_vs_others(comm, PHASES)
    peak = memory.peak_memory_mib(comm)
    log.info("timing per phase over %d rank(s):\n%s", comm.size, format_table(PHASES, timing))
    if mem_est is None:
        log.info("peak memory per rank: max %.1f MiB", peak)
    else:
        log.info("peak memory per rank: max %.1f MiB (estimate %.1f MiB)", peak,
                 mem_est["total"])
    result = assemble(comm, config, job.model, delta, job.sums, transport, geometry, timing,
                      PHASES, broadcast(comm, timers.elapsed()), job.solver)
    result.attrs["peak_memory_MiB_max_over_ranks"] = peak
    result.groups["timing"].update({
        "rank0_seconds": (rank0[0], {"axes": "phase, (rank 0, max, mean over other ranks)"}),
        "rank0_peak_memory": (rank0[1], {"axes": "phase, (rank 0, max, mean over other ranks)"}),
    })
    shifts = safe_shift.summary(comm, job.solver)  # where the target sat on an eigenvalue
    if shifts.get("shift_kpoints_moved"):
        result.group_attrs.setdefault("solver", {}).update(shifts)
        log.info("window solver: the target made H - sigma (nearly) singular at %d of %d "
                 "k-point solves; those were factorised at a shift up to %.3g meV off the "
                 "target (the window is still the bands nearest the target; %d "
                 "factorisations in all; theory 5.9)", shifts["shift_kpoints_moved"],
                 shifts["shift_kpoints_solved"], shifts["shift_max_offset_meV"],
                 shifts["shift_factorisations"])
    elif shifts:
        result.group_attrs.setdefault("solver", {}).update(shifts)
    accelerated = accelerate.summary(comm, job.solver)  # theory 5.10
    if accelerated:
        result.group_attrs.setdefault("solver", {}).update(accelerated)
        log.info("reduced-basis accelerator: %d k-point solves by Rayleigh-Ritz, %d in full "
                 "(basis up to %d columns; certified angle <= %.2g, eigenvalue error <= "
                 "%.2g meV, metric error <= %.2g; theory 5.10)",
                 accelerated["accelerate_ritz_kpoints"], accelerated["accelerate_full_kpoints"],
                 accelerated["accelerate_basis_size"], accelerated["accelerate_max_angle"],
                 accelerated["accelerate_max_energy_error_meV"],
                 accelerated["accelerate_max_metric_error"])
    imaged = images.summary(comm, job.solver)  # theory 5.11
    if imaged:
        result.group_attrs.setdefault("solver", {}).update(imaged)
        log.info("symmetry accelerator: %d k-points as images of %d solved representatives, "
                 "%d solved in full (%d images refused by the residual certificate; largest "
                 "residual ratio %.3g; theory 5.11)", imaged["symmetry_image_kpoints"],
                 imaged["symmetry_representatives"], imaged["symmetry_solved_kpoints"],
                 imaged["symmetry_refused_images"], imaged["symmetry_max_residual_ratio"])
    resolved = resolve.summary(comm, job.solver)  # degenerate groups in a symmetry basis
    result.group_attrs.setdefault("geometry", {}).update(resolved)
    if resolved.get("resolved_kpoint_solves"):
        log.info("degenerate window bands resolved by the %s operator at %d of %d k-point "
                 "solves (%d groups it could not split; theory 5.7)", resolved["resolved_by"],
                 resolved["resolved_kpoint_solves"], resolved["kpoint_solves"],
                 resolved["unsplit_groups"])
    if mem_est is not None:
        result.attrs["memory_estimate_MiB_per_rank"] = mem_est["total"]
    diagnostics.apply(result, transport, geometry, job.grid, delta, config.sweep.temperature,
                      log, comm.rank == 0, counts)
    if config.output.kresolved:
        result.kfields = kfield_meta(job.geometry.nb)
        result.nk_total = job.nk
        result.kgrid_shape = tuple(job.grid)
    return result


def write_result(comm, output, result, timers, append: bool = False) -> None:
    """Write the result file; on failure remove the partial file. Collective.

    ``append``: complete the partial file holding the streamed sweep (run/sweep.py).
    """
    with timers.phase("write"), collective(comm):
        try:
            writer.write(comm, output, result, append)
        except BaseException:
            _remove_partial(comm, output)
            raise


def superfluid_phase(comm, config, model, timers, log, geometry=None, solver=None,
                     across=None):
    """theory §6 superfluid weight when the deck has a [superfluid] section. Collective.

    ``geometry``, ``solver``, ``across``: a windowed k-pass's reduced geometry, its solver
    and pool layout (the minimal metric of a window band solves the window once more).
    Returns ``(datasets, attrs)`` for the ``/superfluid`` group, or None. Datasets map a
    name to ``(array, attrs)``; arrays are identical on every rank.
    """
    spec = getattr(config, "superfluid", None)
    if spec is None:
        return None
    from qgt_mpi.superfluid import compute_superfluid

    with timers.phase("superfluid"), collective(comm):
        return compute_superfluid(comm, model, spec, config.kgrid, log, geometry, solver,
                                  across)


def _announce(log, title, model, comm, job, n_done, given) -> None:
    """Log what is about to be computed (rank 0); warn when the blocks leave pools idle
    (``given``: the block size is the deck's ``[run] chunk``)."""
    n1, n2 = job.grid
    n_pools = comm.size // job.solver.comm.size
    log.info("qgt_mpi run: %s", title)
    log.info("model %s, %d bands, grid %d x %d = %d k-points in %d blocks of %d dealt to %d "
             "%s (k-pass imbalance %.2f)",
             model.describe().get("kind", "?"), job.geometry.nb, n1, n2, job.nk, job.n_blocks,
             min(job.chunk, job.nk), n_pools, "pool(s)" if job.solver.windowed else "rank(s)",
             imbalance(job.nk, job.chunk, n_pools))
    idle = idle_warning(job.nk, job.chunk, n_pools, given)
    if idle and comm.rank == 0:  # the same on every rank
        log.warning("%s", idle)
    s = job.sums
    log.info("sweep: %d temperatures x %d chemical potentials x %d broadenings; "
             "finest energy cell %.3g meV", s.temperature.size, s.mu.size, len(s.delta),
             s.grid[0])
    if n_done:
        log.info("resuming from checkpoint: %d of %d blocks already done", n_done, job.n_blocks)


def _remove_partial(comm: MPI.Comm, output: str) -> None:
    """Delete a half-written temporary file (rank 0)."""
    if comm.rank == 0:
        try:
            os.remove(writer.partial_name(output))
        except FileNotFoundError:
            pass


__all__ = ["PHASES", "STARTUP", "compute", "extra_phases", "finish", "result_file", "run",
           "superfluid_phase", "write_result"]
