"""A whole run: input deck → model → k-pass → reductions → observables → one HDF5 file."""

from __future__ import annotations

import logging
import os
import resource

import numpy as np
from mpi4py import MPI

from qgt_mpi.geometry.summary import GeometrySummary
from qgt_mpi.io import writer
from qgt_mpi.io.deck import InputError, RunConfig, delta_for_bands
from qgt_mpi.kpass import KPass, link_groups, run_kpass, stacked_kfields
from qgt_mpi.models import build_model
from qgt_mpi.parallel import Timers, block_range, collective
from qgt_mpi.parallel.timing import format_table
from qgt_mpi.results import assemble
from qgt_mpi.solvers.dense import DenseSolver
from qgt_mpi.transport.accumulate import TransportSums

PHASES = ["setup", "solve", "geometry", "deposit", "reduce+evaluate"]  # write: logged after


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


def compute(comm: MPI.Comm, model, kgrid: tuple[int, int], temperature, mu, delta,
            degeneracy: float = 1.0, *, timers: Timers | None = None,
            log: logging.Logger | None = None, chunk: int = 4096, percent: float = 5.0,
            kresolved: bool = False, title: str = "") -> tuple[KPass, dict, dict]:
    """k-pass, reductions and evaluation for one model and sweep (no file). Collective.

    Returns the rank's KPass (with k-resolved fields if asked) and the reduced transport
    (SPEC §4) and geometry (SPEC §5) dictionaries, identical on every rank.
    """
    timers = timers or Timers()
    log = log or logging.getLogger("qgt_mpi")
    n1, n2 = kgrid
    nk = n1 * n2
    with timers.phase("setup"):
        sums = TransportSums(temperature, mu, delta)
        groups = link_groups(model.nbands)
        job = KPass(model, DenseSolver(), (n1, n2), block_range(nk, comm.size, comm.rank),
                    groups, sums, GeometrySummary(model.nbands, len(groups)), kresolved)
    _announce(log, title, model, comm, sums, kgrid, len(temperature), len(mu), len(delta))
    with collective(comm):
        run_kpass(job, chunk, timers, log, percent)
    with timers.phase("reduce+evaluate"), collective(comm):
        transport = sums.finish(comm, nk * model.cell_area, degeneracy)
        geometry = job.geometry.finish(comm, nk, model.cell_area)
        _check_results(transport)
    return job, transport, geometry


def run(comm: MPI.Comm, config: RunConfig, output: str, log: logging.Logger) -> dict:
    """Execute one run and write ``output``. Collective over ``comm``.

    Returns the reduced results (identical on every rank). Raises CollectiveError (same on
    every rank) for input errors and run-time failures; no output file is left behind then.
    """
    timers = Timers()
    with timers.phase("setup"):
        model, delta = prepare(comm, config, output)
    s = config.sweep
    job, transport, geometry = compute(
        comm, model, config.kgrid, s.temperature, s.mu, delta, config.degeneracy,
        timers=timers, log=log, chunk=config.run.chunk, percent=config.run.progress_percent,
        kresolved=config.output.kresolved, title=config.title,
    )
    sums, nk, slab = job.sums, job.grid[0] * job.grid[1], job.slab
    superfluid = _superfluid(comm, config, model, timers, log)
    timing = timers.reduce(comm, PHASES)
    peak = peak_memory_mib(comm)
    log.info("timing per phase over %d rank(s):\n%s", comm.size, format_table(PHASES, timing))
    log.info("peak memory per rank: max %.1f MiB", peak)
    result = assemble(comm, config, model, delta, sums, transport, geometry, timing,
                      PHASES, timers.elapsed())
    result.attrs["peak_memory_MiB_max_over_ranks"] = peak
    if superfluid is not None:
        result.groups["superfluid"], result.group_attrs["superfluid"] = superfluid
    if config.output.kresolved:
        result.kfields = _kfield_attrs(stacked_kfields(job))
        result.kslab, result.nk_total = slab, nk
    with timers.phase("write"), collective(comm, OSError):
        try:
            writer.write(comm, output, result)
        except BaseException:
            _remove_partial(comm, output)
            raise
    log.info("results written to %s (write %.2f s, run %.2f s)", os.path.abspath(output),
             timers.seconds["write"], timers.elapsed())
    return {"transport": transport, "geometry": geometry}


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


def _announce(log, title, model, comm, sums, kgrid, n_t, n_mu, n_d) -> None:
    """Log what is about to be computed (rank 0)."""
    if title:
        log.info("qgt_mpi run: %s", title)
    log.info("model %s, %d bands, grid %d x %d = %d k-points over %d rank(s)",
             model.describe().get("kind", "?"), model.nbands, *kgrid, kgrid[0] * kgrid[1],
             comm.size)
    log.info("sweep: %d temperatures x %d chemical potentials x %d broadenings; "
             "energy bins of %.3g meV", n_t, n_mu, n_d, sums.grid[0])


def peak_memory_mib(comm: MPI.Comm) -> float:
    """Largest peak resident set size over ranks [MiB]. Collective."""
    mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return comm.allreduce(mine, op=MPI.MAX)


def _check_results(transport: dict[str, np.ndarray]) -> None:
    """Refuse NaN in σ (a failed kernel evaluation would show up here)."""
    for key in ("sigma_xx", "sigma_xy"):
        if not np.all(np.isfinite(transport[key])):
            raise FloatingPointError(f"non-finite {key} after evaluation of the kernels")


def _kfield_attrs(fields: dict[str, np.ndarray]) -> dict:
    """Attach units and axis names to k-resolved fields."""
    meta = {
        "k_frac": {"units": "reduced (b1, b2)", "axes": "k, component"},
        "k_cart": {"units": "1/a", "axes": "k, (x, y)"},
        "energies": {"units": "meV", "axes": "k, band"},
        "berry_curvature": {"units": "a^2", "axes": "k, band"},
        "metric": {"units": "a^2", "axes": "k, band, (xx, yy, xy)"},
    }
    return {k: (v, meta[k]) for k, v in fields.items()}


def _remove_partial(comm: MPI.Comm, output: str) -> None:
    """Delete a half-written temporary file (rank 0)."""
    if comm.rank == 0:
        try:
            os.remove(writer.partial_name(output))
        except FileNotFoundError:
            pass


__all__ = ["PHASES", "model_from_config", "prepare", "run"]
