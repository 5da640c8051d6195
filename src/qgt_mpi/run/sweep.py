"""The sweep evaluation of a run: reduced cell trees → observables, unit by unit (theory §4).

After the k-pass the moments are reduced once (transport/accumulate.py) and the sweep is
evaluated in units (transport/stream.py). Each unit's sums become observables at once
(transport/observables.py), undefined values are flagged (diagnostics.flag_undefined) and
the unit goes to a sink: the result file for runs (io/sweep_file.py; the sweep is bounded
by disk, not memory) or memory for the Python API. At fixed filling (theory §4.7) a unit first
solves μ(ν, T) for its fillings (transport/filling.py).
"""

from __future__ import annotations

import logging

import numpy as np
from mpi4py import MPI

from qgt_mpi.io.sweep_file import FileSink
from qgt_mpi.parallel import allreduce_array, allreduce_max, allreduce_min, broadcast
from qgt_mpi.parallel.errors import CollectiveError, collective
from qgt_mpi.run.diagnostics import UNDEFINED, flag_undefined, undefined_meaning
from qgt_mpi.transport.accumulate import ReducedSums, TransportSums
from qgt_mpi.transport.filling import check_filling, solve_mu
from qgt_mpi.transport.observables import BAND_QUANTITIES, QUANTITIES, transport_quantities
from qgt_mpi.transport.stream import (
    EXIT_INTERRUPTED,
    MemorySink,
    Unit,
    run_units,
    sweep_units,
)


class SweepEvaluation:
    """One sweep's units and how to evaluate them. Local construction, no communication.

    Parameters
    ----------
    sums : the run's accumulators; reduced : their reduced trees (``sums.reduce``).
    norm : N_k·A_c (theory §1 BZ sums); degeneracy : flavour factor.
    filling, filling_bands : a fixed-filling sweep (theory §4.7), or None.
    """

    def __init__(self, sums: TransportSums, reduced: ReducedSums, norm: float,
                 degeneracy: float, filling: np.ndarray | None = None,
                 filling_bands: list[int] | None = None) -> None:
        self.sums, self.reduced, self.norm, self.degeneracy = sums, reduced, norm, degeneracy
        self.filling = None if filling is None else np.asarray(filling, dtype=float)
        self.bands = list(filling_bands or [])
        if self.filling is not None:
            check_filling(self.filling, self.bands, sums.delta.shape[1])
        n_first = sums.mu.size if self.filling is None else self.filling.size
        self.shape = (n_first, len(sums.delta), sums.temperature.size)
        self.units = sweep_units(*self.shape)
        self.per_band = sums.occ_bands.size == sums.delta.shape[1]
        self.mu_range = [np.inf, -np.inf]  # of the μ solved here (fixed filling)

    def layout(self) -> dict[str, tuple[tuple[int, ...], np.dtype, dict[str, object]]]:
        """Streamed /transport datasets: name → (shape, dtype, attrs)."""
        first = "mu" if self.filling is None else "filling_target"
        axes: dict[str, object] = {"axes": f"{first}, delta_index, temperature"}
        out: dict[str, tuple[tuple[int, ...], np.dtype, dict[str, object]]] = {
            k: (self.shape, np.dtype(float), {**axes}) for k in QUANTITIES}
        for key in UNDEFINED:
            out[f"{key}_undefined"] = (self.shape, np.dtype(np.uint8), {
                **axes, "meaning": undefined_meaning(key)})
        if self.per_band:
            nb = self.sums.delta.shape[1]
            out.update({k: ((*self.shape, nb), np.dtype(float), {
                "axes": f"{first}, delta_index, temperature, band"})
                for k in BAND_QUANTITIES})
        if self.filling is not None:
            out["mu_solved"] = (self.shape, np.dtype(float), {**axes})
        return out

    def chunk(self) -> tuple[int, int]:
        """(first-axis points, temperatures) of the first unit: the file's storage chunk."""
        _d, temps, sl = self.units[0]
        return sl.stop - sl.start, temps.stop - temps.start

    def __call__(self, unit: Unit) -> dict[str, np.ndarray]:
        """Observables of one unit, each (first axis, T, ...) (local); raises
        FloatingPointError for non-finite σ."""
        i_d, temps, sl = unit
        s = self.sums
        t_idx = np.arange(temps.start, temps.stop)
        if self.filling is None:
            mu = np.broadcast_to(s.mu[sl][:, None], (sl.stop - sl.start, t_idx.size))
        else:
            mu = np.stack([self._solve(i_d, i_t, sl) for i_t in t_idx], axis=-1)
        sym, hall, dens, occ = self.reduced.point(i_d, t_idx, mu)
        occupation = occ if self.per_band and occ is not None else dens[None]
        temperature = s.temperature[temps]
        hall = hall / self.norm
        s.add_below(hall, temperature)
        out = transport_quantities(sym / self.norm, hall, temperature, self.degeneracy,
                                   occupation / self.reduced.n_k)
        if not self.per_band:
            del out["filling"]  # one row: the total over bands, not a band's filling
        for key in ("sigma_xx", "sigma_xy"):
            if not np.all(np.isfinite(out[key])):
                raise FloatingPointError(f"non-finite {key} after evaluation of the kernels")
        for key, mask in flag_undefined(out).items():
            out[f"{key}_undefined"] = mask.astype(np.uint8)
        if self.filling is not None:
            out["mu_solved"] = mu
        return out

    def _solve(self, i_d: int, i_t: int, sl: slice) -> np.ndarray:
        """μ at the fillings ``sl`` of one (δ, T) (fixed-filling sweeps)."""
        assert self.filling is not None  # only fixed-filling sweeps solve for μ
        mu = solve_mu(self.reduced, i_d, i_t, self.filling[sl], self.bands)
        self.mu_range = [min(self.mu_range[0], mu.min()), max(self.mu_range[1], mu.max())]
        return mu


def bytes_per_point(sums: TransportSums, filling: bool) -> int:
    """Bytes of the streamed datasets per sweep point (see :meth:`SweepEvaluation.layout`)."""
    nb = sums.delta.shape[1]
    per_band = sums.occ_bands.size == nb
    return (8 * len(QUANTITIES) + len(UNDEFINED)
            + 8 * nb * per_band * len(BAND_QUANTITIES) + 8 * filling)


def evaluate_sweep(comm: MPI.Comm, evaluation: SweepEvaluation, sink, log: logging.Logger,
                   percent: float = 10.0, stop=None, on_stop=None, due=None) -> dict[str, int]:
    """Evaluate the units not yet done into ``sink``; returns undefined counts. Collective.

    ``evaluation.sums.sweep_done`` (restored from a checkpoint) marks units to skip; it is
    updated as units finish. Counts of undefined S, κ, L/L_0 over the units evaluated here
    and, for a resumed file, those read back (``n_undefined_<key>``).
    """
    sums = evaluation.sums
    if sums.sweep_done is None or sums.sweep_done.size != len(evaluation.units):
        sums.sweep_done = np.zeros(len(evaluation.units), dtype=bool)
    todo = [u for u in range(len(evaluation.units)) if not sums.sweep_done[u]]
    counts = np.zeros(len(UNDEFINED), dtype=np.int64)

    def counted(unit: Unit) -> dict[str, np.ndarray]:
        values = evaluation(unit)
        counts[:] += [int(values[f"{k}_undefined"].sum()) for k in UNDEFINED]
        return values

    def stopped(done: list[int]) -> None:
        assert sums.sweep_done is not None  # set by the evaluation's set-up
        sums.sweep_done[done] = True
        if on_stop is not None:
            on_stop(done)

    done = run_units(comm, counted, evaluation.units, todo, sink, log, percent, stop,
                     stopped, due)
    sums.sweep_done[done] = True
    total = allreduce_array(comm, counts)
    return {f"n_undefined_{k}": int(n) for k, n in zip(UNDEFINED, total, strict=True)}


def finish_in_memory(comm: MPI.Comm, sums: TransportSums, norm: float, degeneracy: float,
                     filling: np.ndarray | None = None, bands: list[int] | None = None,
                     log: logging.Logger | None = None) -> dict[str, np.ndarray]:
    """Reduce and evaluate the whole sweep into arrays on every rank (Python API). Collective.

    At fixed ``filling`` of the group ``bands`` the sums must have been made with those
    ``filling_bands`` (uniform cells, occupations of the group); ``mu`` is then returned.
    """
    if filling is not None and not sums.lattice.anywhere:
        raise ValueError("a fixed-filling evaluation needs TransportSums(..., filling_bands=...)"
                         " (make_job/compute with the filling bands)")
    evaluation = SweepEvaluation(sums, sums.reduce(comm), norm, degeneracy, filling, bands)
    sink = MemorySink(evaluation.shape)
    sums.sweep_done = None
    evaluate_sweep(comm, evaluation, sink, log or logging.getLogger("qgt_mpi"), 100.0)
    out = sink.result(comm)
    if filling is not None:
        out["mu"] = out.pop("mu_solved")
    return out


def finish_streamed(comm: MPI.Comm, job, config, output: str, log: logging.Logger,
                    saver, stop) -> tuple[dict, dict[str, int], np.ndarray | None]:
    """Geometry, then the sweep evaluated unit by unit into the partial result file.

    Collective. A stop signal (or the checkpoint interval) checkpoints the finished units,
    whose data stay in the partial file; a stop raises status 3. Any other failure removes
    the partial file. Returns (geometry, undefined counts, the lowest and highest solved μ of
    a fixed-filling sweep or None); the observables are in the file.
    """
    with collective(comm):
        geometry = job.geometry.finish(comm, job.nk, job.model.cell_area)
        sweep = config.sweep
        evaluation = SweepEvaluation(job.sums, job.sums.reduce(comm),
                                     job.nk * job.model.cell_area, config.degeneracy,
                                     sweep.filling, list(sweep.filling_bands or []))
    done_before = job.sums.sweep_done
    resume = done_before is not None and bool(np.any(done_before))
    sink = FileSink(comm, output, evaluation.layout(), resume, evaluation.chunk())
    if resume and not sink.resumed:
        log.info("the partial result file of the stopped evaluation is missing or unreadable: "
                 "evaluating every sweep unit again")
        job.sums.sweep_done = None
    elif sink.resumed:
        log.info("resuming the sweep evaluation: %d of %d units already in %s",
                 int(done_before.sum()), len(evaluation.units), sink.path)

    def checkpoint(_done: list[int]) -> None:  # on a signal, and every checkpoint interval
        sink.flush()
        saver.save(comm, job, [])

    try:
        counts = evaluate_sweep(comm, evaluation, sink, log, config.run.progress_percent,
                                stop, checkpoint, saver.due)
    except CollectiveError as exc:
        if exc.status == EXIT_INTERRUPTED:
            sink.close()
        else:
            sink.remove()
        raise
    counts.update(_resumed_counts(comm, sink, resume and sink.resumed))
    sink.close()
    mu_used = None
    if evaluation.filling is not None:
        lo, hi = evaluation.mu_range
        mu_used = np.array([allreduce_min(comm, lo), allreduce_max(comm, hi)])
        mu_used = mu_used if np.all(np.isfinite(mu_used)) else None
    return geometry, counts, mu_used


def _resumed_counts(comm: MPI.Comm, sink, resumed: bool) -> dict[str, int]:
    """Undefined counts over the whole file after a resume (collective read of the masks)."""
    if not resumed:
        return {}
    out = {}
    for key in UNDEFINED:
        dset = sink.dsets[f"{key}_undefined"]
        out[f"n_undefined_{key}"] = int(broadcast(
            comm, int(np.sum(dset[...])) if comm.rank == 0 else 0))
    return out
