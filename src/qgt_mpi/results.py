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
from qgt_mpi.io.deck import RunConfig
from qgt_mpi.io.writer import ResultFile
from qgt_mpi.parallel import broadcast
from qgt_mpi.transport.accumulate import ETA_DEG, TransportSums
from qgt_mpi.transport.binning import P_BIN
from qgt_mpi.transport.lattice import ETA_CELL, truncation_bound
from qgt_mpi.transport.observables import UNITS

SWEEP_AXES = ["/transport/mu", "/transport/delta_index", "/transport/temperature"]


def provenance(comm: MPI.Comm, config: RunConfig, wall: float) -> dict[str, object]:
    """Root attributes: program, version, input deck, ranks, platform. Same on all ranks."""
    stamp = broadcast(comm, datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    host = broadcast(comm, platform.node())
    return {
        "program": "qgt_mpi",
        "version": qgt_mpi.__version__,
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
    out["positions"] = np.asarray(model.positions, dtype=float)
    out["cell_area"] = float(model.cell_area)
    if config.model.flatten is not None:
        out["flatten_gap_meV"] = config.model.flatten.gap
        out["flatten_range"] = str(config.model.flatten.range)
    return out


def _transport(config, delta, sums: TransportSums, transport) -> dict:
    """/transport datasets: axes and observables with units."""
    group = {
        "temperature": (config.sweep.temperature, {"units": "K"}),
        "mu": (config.sweep.mu, {"units": "meV"}),
        "delta": (delta, {"units": "meV", "axes": "delta_index, band"}),
        "delta_index": (np.arange(len(delta)), {"units": "1"}),
    }
    for key, unit in UNITS.items():
        if key in transport:  # absent when streamed into the file (io/sweep_file.py)
            group[key] = (transport[key], {"units": unit,
                                           "axes": "mu, delta_index, temperature"})
    return group


def _geometry(geometry: dict, groups_n: int, nb: int) -> dict:
    """/geometry datasets (SPEC §5)."""
    chern = geometry["chern_groups"]
    g = {
        "chern": (chern[:nb], {"units": "1", "method": "link variables (Fukui-Hatsugai-Suzuki)"}),
        "chern_curvature": (geometry["chern_curvature"], {"units": "1",
                            "method": "(1/2pi) sum Omega dA"}),
        "metric_integral": (geometry["metric_integral"], {"units": "1",
                            "axes": "band, (xx, yy, xy)", "definition": "int g d^2k/(2pi)^2"}),
        "trace_integral": (geometry["trace_integral"], {"units": "1",
                           "definition": "(1/2pi) int Tr g d^2k  (>= |C|)"}),
        "omega_I": (geometry["omega_I"], {"units": "a^2",
                    "definition": "A_c int Tr g d^2k/(2pi)^2 (>= |C| A_c/(2pi))"}),
        "omega_I_bound": (geometry["omega_I_bound"], {"units": "a^2"}),
        "trace_violation": (geometry["trace_violation"], {"units": "1",
                            "definition": "max_k |Tr g - |Omega|| / <|Omega|>"}),
    }
    if groups_n > nb:
        g["chern_below_gap"] = (chern[nb:], {"units": "1", "axes": "bands 0..n for n=2.."})
    return g


def assemble(comm, config, model, delta, sums, transport, geometry, timing, phases,
             wall) -> ResultFile:
    """All reduced datasets and attributes of one run. Same on every rank."""
    nb = model.nbands
    bands = {
        "bandwidth": (geometry["bandwidth"], {"units": "meV"}),
        "min": (geometry["band_min"], {"units": "meV"}),
        "max": (geometry["band_max"], {"units": "meV"}),
        "min_gap": (geometry["min_gap"], {"units": "meV", "axes": "gap above band n"}),
    }
    band_attrs = {}
    if config.model.flatten is not None:
        band_attrs["bandwidth_over_gap"] = geometry["bandwidth"] / config.model.flatten.gap
    h, e0 = sums.grid
    return ResultFile(
        attrs=provenance(comm, config, wall),
        groups={
            "model": {},
            "bands": bands,
            "geometry": _geometry(geometry, len(geometry["chern_groups"]), nb),
            "transport": _transport(config, delta, sums, transport),
            "timing": {
                "phases": (np.array(phases), {}),
                "seconds": (timing, {"units": "s", "axes": "phase, (min, mean, max) over ranks"}),
            },
        },
        group_attrs={
            "model": _model_attrs(model, config),
            "bands": band_attrs,
            "transport": {
                "degeneracy": config.degeneracy,
                "bin_width_meV": h,
                "bin_origin_meV": e0,
                "taylor_order": P_BIN,
                "eta_bin": ETA_CELL,
                "truncation_bound": truncation_bound(),
                "cells": sums.n_cells,
                "eta_degenerate": ETA_DEG,
                "method": "Taylor moments of closed-form kernels in adaptive dyadic energy cells, "
                          "Barnes-Hut evaluation (SPEC 3, 4)",
            },
        },
        scales={f"/transport/{k}": SWEEP_AXES for k in UNITS},
    )
