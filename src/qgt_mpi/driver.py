"""A whole run: input deck → model → k-pass → reductions → observables → one HDF5 file."""

from __future__ import annotations

import logging
import os
import resource

import numpy as np
from mpi4py import MPI

from qgt_mpi.evaluation import streamed_finish
from qgt_mpi.geometry.summary import GeometrySummary
from qgt_mpi.io import checkpoint, writer
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.kpass import KPass, kfield_slabs, link_groups, run_blocks
from qgt_mpi.models import build_model
from qgt_mpi.parallel import Timers, allreduce_max, broadcast, collective
from qgt_mpi.parallel.signals import StopFlag, stop_on_signals
from qgt_mpi.parallel.timing import format_table
from qgt_mpi.restart import Checkpointer, restored_slabs, resume
from qgt_mpi.results import assemble
from qgt_mpi.solvers.dense import DenseSolver
from qgt_mpi.transport.accumulate import TransportSums

PHASES = ["setup", "solve", "geometry", "deposit", "checkpoint", "reduce+evaluate", "superfluid"]


def model_from_config(config: RunConfig):
    """Build the BlochModel of a deck; builder errors become InputErrors naming the key."""
    spec = config.model
    flatten = None
    if spec.flatten is not None:
        f = spec.flatten
        flatten = {"gap": f.gap, "range": f.range, "nfine": f.nfine}
    try:
        return build_model(spec.kind, dict(spec.params), flatten)
    except ValueError as exc:
        raise InputError("model", spec.kind, str(exc)) from exc


def prepare(comm: MPI.Comm, config: RunConfig, output: str):
    """Model, per-band broadenings and an output check, agreed on by all ranks. Collective."""
    with collective(comm):
        model = model_from_config(config)
        delta = delta_for_bands(config.sweep, model.nbands)
        writer.check_writable(comm, output)
    return model, delta


def prepare_model_only(comm: MPI.Comm, config: RunConfig) -> str:
    """``validate``: build the model and per-band δ; return a summary. Collective."""
    with collective(comm):
        model = model_from_config(config)
        delta = delta_for_bands(config.sweep, model.nbands)
    s = config.sweep
    n1, n2 = config.kgrid
    lines = [
        f"input ok: {config.source}",
        f"  title       {config.title}",
        f"  model       {model.describe().get('kind', '?')}, {model.nbands} bands",
        f"  k-grid      {n1} x {n2} = {n1 * n2} k-points",
        f"  temperature {s.temperature.size} values, {s.temperature.min():.4g}"
        f"..{s.temperature.max():.4g} K",
        f"  mu          {s.mu.size} values, {s.mu.min():.4g}..{s.mu.max():.4g} meV",
        f"  delta       {len(delta)} choice(s) x {delta.shape[1]} bands, "
        f"{delta.min():.4g}..{delta.max():.4g} meV",
        f"  output      {config.output.file} (k-resolved: {config.output.kresolved})",
    ]
    return "\n".join(lines)


def make_job(comm: MPI.Comm, model, kgrid: tuple[int, int], temperature, mu, delta,
             chunk: int = 4096, kresolved: bool = False) -> KPass:
    """Accumulators and block layout for one model and sweep. Local, no communication."""
    sums = TransportSums(temperature, mu, delta)
    groups = link_groups(model.nbands)
    return KPass(model, DenseSolver(), tuple(kgrid), chunk, groups, sums,
                 GeometrySummary(model.nbands, len(groups)), kresolved)


def finish(comm: MPI.Comm, job: KPass, degeneracy: float) -> tuple[dict, dict]:
    """Reduce and evaluate the sweep (SPEC §4) and the geometry (SPEC §5). Collective."""
    with collective(comm):
        transport = job.sums.finish(comm, job.nk * job.model.cell_area, degeneracy)
        geometry = job.geometry.finish(comm, job.nk, job.model.cell_area)
        _check_results(transport)
    return transport, geometry


def compute(comm: MPI.Comm, model, kgrid: tuple[int, int], temperature, mu, delta,
            degeneracy: float = 1.0, *, chunk: int = 4096, kresolved: bool = False,
            log: logging.Logger | None = None) -> tuple[KPass, dict, dict]:
    """k-pass, reductions and evaluation for one model and sweep, no file. Collective.

    Returns the rank's KPass (with its k-resolved blocks if asked) and the reduced transport
    (SPEC §4) and geometry (SPEC §5) dictionaries, identical on every rank.
    """
    timers = Timers()
    job = make_job(comm, model, kgrid, temperature, mu, delta, chunk, kresolved)
    run_blocks(comm, job, list(range(job.n_blocks)), timers,
               log or logging.getLogger("qgt_mpi"), 100.0)
    transport, geometry = finish(comm, job, degeneracy)
    return job, transport, geometry


def run(comm: MPI.Comm, config: RunConfig, output: str, log: logging.Logger,
        restart: str = "auto", checkpoint_interval: float = 300.0) -> dict:
    """Execute one run and write ``output``. Collective over ``comm``.

    ``restart``: "auto" resumes from ``<output>.checkpoint.h5`` when present, "force"
    requires it, "never" starts over. Checkpoints are written every
    ``checkpoint_interval`` seconds and on SIGTERM/SIGINT/SIGUSR1 (then the run stops with
    CollectiveError status EXIT_INTERRUPTED). Returns the reduced results (same on every
    rank). Raises CollectiveError (same on every rank) for input errors and failures; no
    result file is left behind then.
    """
    timers = Timers()
    s = config.sweep
    with timers.phase("setup"):
        model, delta = prepare(comm, config, output)
        job = make_job(comm, model, config.kgrid, s.temperature, s.mu, delta,
                       config.run.chunk, config.output.kresolved)
        path, fp = checkpoint.checkpoint_name(output), checkpoint.fingerprint(config)
        done, restored, n_done = resume(comm, job, path, fp, restart)
        saver = Checkpointer(path, fp, checkpoint_interval, done, restored)
    _announce(log, config.title, model, comm, job, n_done)
    with stop_on_signals(StopFlag()) as stop:
        todo = [b for b in range(job.n_blocks) if not done[b]]
        run_blocks(comm, job, todo, timers, log, config.run.progress_percent, saver, stop)
        with timers.phase("reduce+evaluate"):
            transport, geometry = streamed_finish(comm, config, job, output, log, saver, stop)
    superfluid = _superfluid(comm, config, model, timers, log)
    result = _result(comm, config, job, delta, transport, geometry, timers, log)
    if superfluid is not None:
        result.groups["superfluid"], result.group_attrs["superfluid"] = superfluid
    if config.output.kresolved:
        result.kslabs = kfield_slabs(job) + (
            restored_slabs(restored, done, job) if comm.rank == 0 else [])
    _write(comm, output, result, timers, append=True)
    saver.remove(comm)
    log.info("results written to %s (write %.2f s, run %.2f s)", os.path.abspath(output),
             timers.seconds["write"], timers.elapsed())
    return {"transport": transport, "geometry": geometry}


def _result(comm, config, job, delta, transport, geometry, timers, log):
    """Assemble the result file contents and log the timing table. Collective."""
    timing = timers.reduce(comm, PHASES)
    peak = peak_memory_mib(comm)
    log.info("timing per phase over %d rank(s):\n%s", comm.size, format_table(PHASES, timing))
    log.info("peak memory per rank: max %.1f MiB", peak)
    result = assemble(comm, config, job.model, delta, job.sums, transport, geometry, timing,
                      PHASES, broadcast(comm, timers.elapsed()))
    result.attrs["peak_memory_MiB_max_over_ranks"] = peak
    if config.output.kresolved:
        result.kfields = _kfield_meta(job.model.nbands)
        result.nk_total = job.nk
    return result


def _write(comm, output, result, timers, append: bool = False) -> None:
    """Write the result file; on failure remove the partial file. Collective."""
    with timers.phase("write"), collective(comm, OSError):
        try:
            writer.write(comm, output, result, append)
        except BaseException:
            _remove_partial(comm, output)
            raise


def _superfluid(comm, config, model, timers, log):
    """SPEC §6 superfluid weight when the deck has a [superfluid] section. Collective.

    Returns ``(datasets, attrs)`` for the ``/superfluid`` group, or None. Datasets map a
    name to ``(array, attrs)``; arrays are identical on every rank.
    """
    spec = getattr(config, "superfluid", None)
    if spec is None:
        return None
    from qgt_mpi.superfluid import compute_superfluid

    with timers.phase("superfluid"), collective(comm):
        return compute_superfluid(comm, model, spec, config.kgrid, log)


def _announce(log, title, model, comm, job, n_done) -> None:
    """Log what is about to be computed (rank 0)."""
    n1, n2 = job.grid
    log.info("qgt_mpi run: %s", title)
    log.info("model %s, %d bands, grid %d x %d = %d k-points in %d blocks over %d rank(s)",
             model.describe().get("kind", "?"), model.nbands, n1, n2, job.nk, job.n_blocks,
             comm.size)
    s = job.sums
    log.info("sweep: %d temperatures x %d chemical potentials x %d broadenings; "
             "finest energy cell %.3g meV", s.temperature.size, s.mu.size, len(s.delta), s.grid[0])
    if n_done:
        log.info("resuming from checkpoint: %d of %d blocks already done", n_done, job.n_blocks)


def peak_memory_mib(comm: MPI.Comm) -> float:
    """Largest peak resident set size over ranks [MiB]. Collective."""
    mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return allreduce_max(comm, mine)


def _check_results(transport: dict[str, np.ndarray]) -> None:
    """Refuse NaN in σ (a failed kernel evaluation would show up here)."""
    for key in ("sigma_xx", "sigma_xy"):
        if not np.all(np.isfinite(transport[key])):
            raise FloatingPointError(f"non-finite {key} after evaluation of the kernels")


def _kfield_meta(nb: int) -> dict:
    """Per-k entry shape, dtype, units and axes of the k-resolved fields."""
    f8 = np.dtype(float)
    return {
        "k_frac": ((2,), f8, {"units": "reduced (b1, b2)", "axes": "k, component"}),
        "k_cart": ((2,), f8, {"units": "1/a", "axes": "k, (x, y)"}),
        "energies": ((nb,), f8, {"units": "meV", "axes": "k, band"}),
        "berry_curvature": ((nb,), f8, {"units": "a^2", "axes": "k, band"}),
        "metric": ((nb, 3), f8, {"units": "a^2", "axes": "k, band, (xx, yy, xy)"}),
    }


def _remove_partial(comm: MPI.Comm, output: str) -> None:
    """Delete a half-written temporary file (rank 0)."""
    if comm.rank == 0:
        try:
            os.remove(writer.partial_name(output))
        except FileNotFoundError:
            pass


__all__ = ["PHASES", "model_from_config", "prepare", "run"]
