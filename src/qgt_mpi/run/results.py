"""Assemble a run's reduced results and provenance into a writer.ResultFile."""

from __future__ import annotations

import datetime
import json
import platform
import sys

import h5py
import numpy as np
from mpi4py import MPI

import qgt_mpi
from qgt_mpi._version import source_commit
from qgt_mpi.geometry.valley import NOT_SEPARATED, window_geometry
from qgt_mpi.io.deck import RunConfig
from qgt_mpi.io.writer import ResultFile
from qgt_mpi.logs import Progress
from qgt_mpi.parallel import CollectiveError, broadcast, collective
from qgt_mpi.run.diagnostics import window_isolated
from qgt_mpi.solvers import is_windowed
from qgt_mpi.transport.accumulate import BAND_OCCUPATION_MAX, ETA_DEG, TransportSums
from qgt_mpi.transport.energy_cells import ETA_CELL, P_CELL, truncation_bound
from qgt_mpi.transport.observables import BAND_QUANTITIES, QUANTITIES

MAX_ATTR_BYTES = 32768  # /model positions as an attribute up to 2048 orbitals (HDF5: < 64 KiB)
SWEEP_AXES = ["/transport/mu", "/transport/delta_index", "/transport/temperature"]


def provenance(comm: MPI.Comm, config: RunConfig, wall: float) -> dict[str, object]:
    """Root attributes: program, version, input deck, ranks, platform. Same on all ranks."""
    stamp = broadcast(comm, datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    host = broadcast(comm, platform.node())
    return {
        "program": "qgt_mpi",
        "version": qgt_mpi.__version__,
        "source_commit": broadcast(comm, source_commit() if comm.rank == 0 else None),
        "title": config.title,
        "created": stamp,
        "host": host,
        "n_ranks": comm.size,
        "input_file": config.source,
        "input_text": config.text,
        "defaults_used": json.dumps(config.defaults, default=str, sort_keys=True),
        "degeneracy": config.degeneracy,
        "command": broadcast(comm, " ".join(sys.argv)),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
        "wall_time_s_before_write": broadcast(comm, wall),
    }


def _model_attrs(model, config: RunConfig) -> dict[str, object]:
    """Model description for /model attributes (scalars and strings only)."""
    out: dict[str, object] = {}
    for key, value in model.describe().items():
        out[key] = value if isinstance(value, int | float | str | bool | np.number) else str(value)
    out["lattice"] = np.asarray(model.lattice, dtype=float)
    positions = np.asarray(model.positions, dtype=float)
    out["positions"] = positions if positions.nbytes <= MAX_ATTR_BYTES else (
        f"not stored: {len(positions)} orbitals (an HDF5 attribute holds at most 64 KiB); "
        "rebuild the model from input_text or save it with qgt-mpi model save")
    out["cell_area"] = float(model.cell_area)
    if config.model.flatten is not None:
        out["flatten_gap_meV"] = config.model.flatten.gap
        out["flatten_range"] = str(config.model.flatten.range)
    return out


def _sweep_axes(config) -> list[str]:
    """Dimension scales of the sweep datasets: mu, or filling_target at fixed filling."""
    first = "mu" if config.sweep.filling is None else "filling_target"
    return [f"/transport/{first}", *SWEEP_AXES[1:]]


def _transport(config, delta, sums: TransportSums, transport) -> dict:
    """/transport datasets: axes and observables (units: io/conventions.py)."""
    group = {
        "temperature": (config.sweep.temperature, {}),
        "delta": (delta, {"axes": "delta_index, band"}),
        "delta_index": (np.arange(len(delta)), {}),
    }
    first = _sweep_axes(config)[0].rsplit("/", 1)[1]
    if config.sweep.filling is None:
        group["mu"] = (config.sweep.mu, {})
    else:  # fixed filling (theory §4.7): the solved μ is a sweep dataset itself
        bands = ", ".join(map(str, config.sweep.filling_bands))
        group["filling_target"] = (config.sweep.filling, {
            "long_name": f"filling held fixed, mean occupation of bands {bands}"})
        if "mu" in transport:  # else streamed into the file as mu_solved (run/sweep.py)
            group["mu_solved"] = (transport["mu"], {
                "axes": f"{first}, delta_index, temperature",
                "long_name": "chemical potential solved for the filling at each (delta, T)"})
    for key in QUANTITIES:  # absent when streamed into the file (run/sweep.py)
        if key in transport:
            group[key] = (transport[key], {"axes": f"{first}, delta_index, temperature"})
    for key in BAND_QUANTITIES:
        if key in transport:
            group[key] = (transport[key], {"axes": f"{first}, delta_index, temperature, band"})
    return group


def _nan_where(values: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    """``values`` unchanged where all are defined, else as float with NaN where undefined."""
    if not undefined.any():
        return values
    return np.where(undefined, np.nan, np.asarray(values, dtype=float))


def _geometry(geometry: dict, groups_n: int, nb: int) -> dict:
    """/geometry datasets (theory §5); bands inside touching groups: NaN (theory §5.7)."""
    chern = geometry["chern_groups"]
    undefined = np.asarray(geometry.get("band_undefined", np.zeros(nb, bool)), dtype=bool)
    g = {
        "chern": (_nan_where(chern[:nb], undefined), {
            "method": "link variables (Fukui-Hatsugai-Suzuki)"}),
        "chern_max_flux": (geometry["chern_max_flux"][:nb], {"definition":
                           "max over plaquettes |Berry flux| / pi of the band's links"}),
        "chern_curvature": (geometry["chern_curvature"], {"method": "(1/2pi) sum Omega dA"}),
        "metric_integral": (geometry["metric_integral"], {
            "axes": "band, (xx, yy, xy)", "definition": "int g d^2k/(2pi)^2"}),
        "trace_integral": (geometry["trace_integral"], {
            "definition": "(1/2pi) int Tr g d^2k  (>= |C|)"}),
        "omega_I": (geometry["omega_I"], {
            "definition": "A_c int Tr g d^2k/(2pi)^2 (>= |C| A_c/(2pi))"}),
        "omega_I_bound": (geometry["omega_I_bound"], {}),
        "trace_violation": (geometry["trace_violation"], {
            "definition": "max_k |Tr g - |Omega|| / <|Omega|>"}),
    }
    if groups_n > nb:  # groups 0..n−1, n = 2, 3, ...: undefined when gap n−1 is closed
        closed = np.asarray(geometry.get("touching_gaps", np.zeros(0, bool)), dtype=bool)
        top = np.arange(1, groups_n - nb + 1)  # the gap above each group (window: none)
        shut = np.array([bool(closed[n]) if n < closed.size else False for n in top])
        g["chern_below_gap"] = (_nan_where(chern[nb:], shut),
                                {"axes": "bands 0..n for n=2.."})
    g["band_undefined"] = (undefined.astype(np.uint8), {
        "meaning": "1 if the band is inside a group of touching bands (theory "
        "5.7): its per-band Chern number, curvature, metric and trace condition are undefined "
        "and written as NaN; see group_*"})
    return g | _touching_groups(geometry)


def _touching_groups(geometry: dict) -> dict:
    """/geometry/group_* datasets: one row per group of touching bands (theory §5.7)."""
    bands = np.asarray(geometry.get("group_bands", np.zeros((0, 2), int)))
    if not bands.size:
        return {}
    return {
        "group_bands": (bands, {"axes": "group, (first, last) band"}),
        "group_computed": (np.asarray(geometry["group_computed"]).astype(np.uint8), {
            "meaning": "0: more bands than the k-pass accumulates "
            "(geometry.chern.GROUP_MAX); the group's numbers are NaN"}),
        "group_chern": (geometry["group_chern"], {
            "method": "link variables of the group (determinants)"}),
        "group_chern_max_flux": (geometry["group_chern_max_flux"], {}),
        "group_chern_curvature": (geometry["group_chern_curvature"], {}),
        "group_metric_integral": (geometry["group_metric_integral"], {
            "axes": "group, (xx, yy, xy)"}),
        "group_trace_integral": (geometry["group_trace_integral"], {}),
        "group_trace_violation": (geometry["group_trace_violation"], {}),
    }


def _window(geometry: dict, solver, sums: TransportSums) -> tuple[dict, dict]:
    """/solver datasets and attributes: window edges and out-of-window geometry (theory §5)."""
    from qgt_mpi.solvers import options

    attrs = dict(solver.describe()) if solver is not None else {"solver": "dense"}
    if options.accepted():  # the effective -qgt_* options (solvers/options.py allow-list)
        attrs["petsc_options"] = options.describe()
    if solver is None or not is_windowed(solver):
        return {}, attrs
    attrs["delta_out_meV"] = np.asarray(sums.delta_out)
    attrs["window_isolated"] = window_isolated(geometry)  # theory §5.5, Eq. 5.5a
    attrs["window_band_step_meV"] = float(geometry.get("window_band_step", 0.0))
    attrs["hall_below_window"] = ("excluded (solver.chern_below not given)"
                                  if sums.chern_below is None else
                                  f"included: -C_below e^2/h with C_below = {sums.chern_below}")
    data = {
        "window_edges": (geometry["window_edges"], {"definition":
                         "highest eigenvalue below and lowest above the window over the grid"}),
        "window_edge_gap": (geometry.get("window_edge_gap", np.full(2, np.inf)), {
            "definition": "min over k of the direct gap between the window "
            "and the nearest eigenvalue below / above it at the same k"}),
        "chern_curvature_out": (geometry["chern_curvature_out"], {"definition":
                                "(1/2pi) sum Omega_out dA: out-of-window share"}),
        "metric_integral_out": (geometry["metric_integral_out"], {"axes":
                                "band, (xx, yy)", "definition": "int g_out d^2k/(2pi)^2"}),
    }
    return data, attrs


def assemble(comm, config, model, delta, sums, transport, geometry, timing, phases,
             wall, solver=None) -> ResultFile:
    """All reduced datasets and attributes of one run. Same on every rank."""
    nb = len(geometry["bandwidth"])  # all bands, or a solver's window
    bands: dict[str, tuple[np.ndarray, dict[str, object]]] = {
        "bandwidth": (geometry["bandwidth"], {}),
        "min": (geometry["band_min"], {}),
        "max": (geometry["band_max"], {}),
        "min_gap": (geometry["min_gap"], {"axes": "gap above band n"}),
    }
    band_attrs = {}
    if config.model.flatten is not None:
        band_attrs["bandwidth_over_gap"] = geometry["bandwidth"] / config.model.flatten.gap
    h, e0 = sums.grid
    window, window_attrs = _window(geometry, solver, sums)
    return ResultFile(
        attrs=provenance(comm, config, wall),
        groups={
            "model": {name: (np.asarray(value), {}) for name, value in
                      getattr(model, "maps", {}).items()},  # e.g. a relaxation's stacking map
            "bands": bands,
            "geometry": _geometry(geometry, len(geometry["chern_groups"]), nb),
            "transport": _transport(config, delta, sums, transport),
            "solver": window,
            "timing": {
                "phases": (np.array(phases), {}),
                "seconds": (timing, {"axes": "phase, (min, mean, max) over ranks"}),
            },
        },
        group_attrs={
            "model": _model_attrs(model, config),
            "bands": band_attrs,
            "solver": window_attrs,
            "transport": {
                "degeneracy": config.degeneracy,
                "bin_width_meV": h,
                "bin_origin_meV": e0,
                "taylor_order": P_CELL,
                "eta_cell": ETA_CELL,
                "cells": sums.n_cells,
                "truncation_bound": truncation_bound(),
                "eta_degenerate": ETA_DEG,
                "per_band_filling": ("all bands" if sums.occ_bands.size == len(delta[0]) else
                                     f"omitted: more than {BAND_OCCUPATION_MAX} bands"),
                "method": "Taylor moments of closed-form kernels in adaptive dyadic energy "
                          "cells, Barnes-Hut evaluation (theory 3, 4)",
            },
        },
        scales={f"/transport/{k}": _sweep_axes(config) for k in (
            *QUANTITIES, *(("mu_solved",) if config.sweep.filling is not None else ()))},
    )


def valley_group(comm: MPI.Comm, across: MPI.Comm, job, log) -> tuple[dict, dict]:
    """/valley datasets and attributes: valley-resolved geometry of the window (theory
    §5.8, ``[solver] valley = true``). Collective over ``comm``.

    A window that does not split into two valleys somewhere on the grid is not an error of
    the run: the group then holds only the attribute ``not_computed`` (the reason, naming
    the k-point) and one warning is logged.
    """
    progress = None
    if comm.rank == 0:  # rank 0's pool does 1/across.size of the plaquettes: scale its count
        meter = Progress(log, "valley", job.grid[0] * job.grid[1], 10.0, unit="plaquettes")

        def progress(n: int) -> None:
            meter.advance(n * across.size)
    try:
        with collective(comm):
            geo = window_geometry(across, job.model, job.solver, job.grid, progress)
    except CollectiveError as exc:
        if not str(exc).startswith(NOT_SEPARATED):
            raise
        if comm.rank == 0:  # the same agreed error on every rank: warn once
            log.warning("warning: valley: not computed: %s", exc)
        return {}, {"not_computed": str(exc)}
    nb = job.solver.bands(job.model)
    groups = ["valley -1", "valley +1"] + [f"band {b} (valley {-1 if b < nb // 2 else 1})"
                                           for b in range(nb)] + ["window"]
    data = {"chern": (np.asarray(geo["chern"]), {"groups": ", ".join(groups)}),
            "max_flux": (np.asarray(geo["max_flux"]) / np.pi, {"groups": ", ".join(groups)}),
            "metric_integral": (np.asarray(geo["metric"]), {}),
            "trace_integral": (np.asarray(geo["trace"]), {})}
    attrs: dict[str, object] = {name: float(geo[name])
                                for name in ("min_abs_valley", "valley_gap")}
    attrs.update({f"{name}_meV": float(geo[name]) for name in ("band_gap_minus",
                                                               "band_gap_plus", "mixing")})
    attrs["method"] = ("window split by the valley operator at every k; link Chern numbers "
                       "and link-distance metric of each group (theory 5.8)")
    return data, attrs
