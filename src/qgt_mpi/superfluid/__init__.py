"""Geometric superfluid weight of an isolated flat band, D_s(T) and T_BKT (theory §6).

``compute_superfluid`` is the driver's hook for a deck's ``[superfluid]`` section: it integrates
the band's quantum metric over the k-grid (distributed over ranks), finds the minimal metric over
orbital-position shifts (:mod:`.metric`), and evaluates the mean-field gap Δ(T), the superfluid
weight D_s(T) and T_BKT (:mod:`.mean_field`, where the formulas are derived).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.io.deck import InputError, SuperfluidSpec
from qgt_mpi.superfluid import mean_field as mf
from qgt_mpi.superfluid.metric import (
    BandScan,
    minimal_metric,
    scan_band,
    scan_from_geometry,
    shifted_model,
)

__all__ = ["compute_superfluid", "minimal_metric", "scan_band", "shifted_model"]

_WARN_U_OVER_GAP = 0.25 # flat-band projection needs U ≪ gap to the other bands
_WARN_WIDTH_OVER_U = 0.1  # ... and a bandwidth W ≪ U


def _resolve(model, spec: SuperfluidSpec, nbands: int | None = None) -> tuple[int, int]:
    """(n_orb, band) with n_orb's default (model.norb) and the band index checked."""
    nbands = model.nbands if nbands is None else nbands
    if not 0 <= spec.band < nbands:
        raise InputError("superfluid.band", spec.band,
                         f"must be a band index in 0..{nbands - 1}")
    return (spec.n_orb if spec.n_orb is not None else model.norb), spec.band


def _warn_validity(comm, log: logging.Logger, spec: SuperfluidSpec, scan: BandScan) -> None:
    """Warn when the isolated-flat-band conditions of theory §6 are not met (rank 0 logs)."""
    if comm.rank != 0:
        return
    width = scan.e_max - scan.e_min
    if spec.U / scan.gap > _WARN_U_OVER_GAP:
        log.warning("superfluid: U/gap = %.3g is not small; the flat-band formula (theory §6) "
                    "neglects corrections of order U/gap", spec.U / scan.gap)
    if width / spec.U > _WARN_WIDTH_OVER_U:
        log.warning("superfluid: bandwidth/U = %.3g is not small; the band is not flat on the "
                    "scale of U", width / spec.U)


def _metrics(comm: MPI.Comm, model, band: int, kgrid, log: logging.Logger):
    """Ordinary scan, minimal shift and minimal metric. Collective over ``comm``."""
    scan = scan_band(comm, model, band, kgrid)
    shift, g_min = minimal_metric(comm, model, band, kgrid)
    log.info("superfluid: band %d (C = %d): Tr ∫g d²k/(2π)² ordinary %.8g, minimal %.8g "
             "(bound |C|/2π = %.6g); largest orbital shift %.3g a", band, scan.chern,
             np.trace(scan.metric), np.trace(g_min), abs(scan.chern) / (2 * math.pi),
             float(np.abs(shift).max()))
    return scan, shift, g_min


def _datasets(spec, temps, d_s, d_s_ord, scan, g_min, shift, t_bkt, delta) -> dict:
    """Name → (array, attrs) of the /superfluid group."""
    return {
        "temperature": (temps, {"axes": "temperature"}),
        "gap": (delta, {"axes": "temperature",
                        "meaning": "Delta(T) from the gap and number equations (theory 6)"}),
        "D_s": (d_s, {"axes": "temperature, i, j",
                      "metric": "minimal" if spec.minimal_metric else "ordinary"}),
        "D_s_ordinary_metric": (d_s_ord, {"axes": "temperature, i, j"}),
        "D_s_sqrt_det": (mf.stiffness(d_s), {"axes": "temperature"}),
        "bkt_line": (mf.bkt_line(temps), {"axes": "temperature",
                                          "meaning": "8 k_B T / pi (BKT criterion)"}),
        "metric_integral_minimal": (g_min, {"axes": "i, j"}),
        "metric_integral_ordinary": (scan.metric, {"axes": "i, j"}),
        "position_shift": (shift, {"axes": "orbital, (x, y)"}),
        "T_BKT": (np.array(t_bkt), {}),
    }


def _group_attrs(spec, n_orb, band, scan, g_min, t_bkt, t_bkt_ord) -> dict:
    """Scalar facts of the /superfluid group."""
    e0 = 0.5 * (scan.e_min + scan.e_max)
    xi = mf.chemical_offset(spec.U, spec.filling, n_orb)
    return {
        "U_meV": spec.U, "filling": spec.filling, "n_orb": n_orb, "band": band,
        "chern": scan.chern, "minimal_metric": spec.minimal_metric,
        "band_energy_meV": e0, "bandwidth_meV": scan.e_max - scan.e_min,
        "gap_to_other_bands_meV": scan.gap, "U_over_gap": spec.U / scan.gap,
        "epsilon0_minus_mu_meV": xi, "mu_meV": e0 - xi,
        "Delta_0_meV": mf.gap_zero(spec.U, spec.filling, n_orb),
        "T_c_mean_field_K": mf.critical_temperature(spec.U, spec.filling, n_orb),
        "T_BKT_K": t_bkt, "T_BKT_ordinary_metric_K": t_bkt_ord,
        "trace_bound": abs(scan.chern) / (2 * math.pi),
        "sqrt_det_bound": abs(scan.chern) / (4 * math.pi),
        "trace_metric_ordinary": float(np.trace(scan.metric)),
        "trace_metric_minimal": float(np.trace(g_min)),
        "formula": "D_s,ij(T) = 8 (e^2/hbar^2) (N_orb/U) Delta(T)^2 G_ij; "
                   "k_B T_BKT = (pi hbar^2/8 e^2) sqrt(det D_s(T_BKT))  (theory 6)",
    }


def _window_metrics(comm: MPI.Comm, model, spec: SuperfluidSpec, kgrid, geometry: dict, log,
                    solver=None, across: MPI.Comm | None = None):
    """Scan of a window band from the k-pass; with ``spec.minimal_metric`` also the minimal
    metric from one more window solve per k-point (metric.py). Collective over ``comm``."""
    scan = scan_from_geometry(geometry, spec.band)
    log.info("superfluid: window band %d (C = %d): Tr ∫g d²k/(2π)² = %.8g (bound |C|/2π = "
             "%.6g), from the k-pass", spec.band, scan.chern, np.trace(scan.metric),
             abs(scan.chern) / (2 * math.pi))
    if not spec.minimal_metric:
        return scan, np.zeros((0, 2)), scan.metric
    if solver is None:
        raise InputError("superfluid.minimal_metric", True, "the minimal metric of a window "
                         "band needs the run's solver (compute_superfluid(..., solver=...)); or "
                         "set it to false (the window's metric includes the out-of-window part)")
    shift, g_min = minimal_metric(comm, model, spec.band, kgrid, solver, across)
    log.info("superfluid: window band %d: minimal Tr ∫g d²k/(2π)² %.8g; largest orbital "
             "shift %.3g a", spec.band, np.trace(g_min), float(np.abs(shift).max()))
    return scan, shift, g_min


def compute_superfluid(comm: MPI.Comm, model, spec: SuperfluidSpec, kgrid: tuple[int, int],
                       log: logging.Logger | None = None, geometry: dict | None = None,
                       solver=None, across: MPI.Comm | None = None
                       ) -> tuple[dict[str, tuple[np.ndarray, dict]], dict]:
    """Δ(T), D_s(T) and T_BKT of an isolated flat band (theory §6). Collective over ``comm``.

    Parameters
    ----------
    comm : communicator over which the k-grid is distributed.
    model : BlochModel (TightBinding or FlattenedModel for the minimal metric).
    spec : the deck's ``[superfluid]`` section.
    kgrid : (N1, N2) k-grid for ∫ g d²k/(2π)².
    log : logger (rank 0 reports).
    geometry : reduced geometry of a windowed k-pass (theory §5); when given, the band index
        counts window bands and its metric, Chern number and gaps come from there.
    solver, across : the windowed solver of that k-pass and the pool layout's ``across``
        communicator (None: one pool per rank); needed for ``spec.minimal_metric`` on a window
        (one more window solve per k-point, :func:`.metric.minimal_metric`).

    Returns
    -------
    datasets : name → (array, attrs) for the ``/superfluid`` group (units: io/conventions.py).
    attrs : group attributes. Everything is identical on every rank.

    Raises
    ------
    InputError
        If ``spec.band`` is not a band of the model, or the minimal metric of a window band
        is asked for without its ``solver``.
    """
    log = log or logging.getLogger("qgt_mpi")
    nb = None if geometry is None else len(geometry["bandwidth"])
    n_orb, band = _resolve(model, spec, nb)
    if geometry is None:
        scan, shift, g_min = _metrics(comm, model, band, kgrid, log)
    else:
        scan, shift, g_min = _window_metrics(comm, model, spec, kgrid, geometry, log, solver,
                                             across)
    _warn_validity(comm, log, spec, scan)
    u, nu, temps = spec.U, spec.filling, np.array(spec.temperature, dtype=float)
    g_used = g_min if spec.minimal_metric else scan.metric
    d_s = mf.superfluid_weight(temps, g_used, u, nu, n_orb)
    d_s_ord = mf.superfluid_weight(temps, scan.metric, u, nu, n_orb)
    t_bkt = mf.bkt_temperature(g_used, u, nu, n_orb)
    t_bkt_ord = mf.bkt_temperature(scan.metric, u, nu, n_orb)
    if math.isnan(t_bkt) and comm.rank == 0:
        log.warning("superfluid: no BKT crossing (D_s(T -> 0) = 0); T_BKT reported as NaN")
    else:
        log.info("superfluid: Delta_0 = %.6g meV, T_c(MF) = %.6g K, T_BKT = %.6g K "
                 "(ordinary metric: %.6g K)", mf.gap_zero(u, nu, n_orb),
                 mf.critical_temperature(u, nu, n_orb), t_bkt, t_bkt_ord)
    datasets = _datasets(spec, temps, d_s, d_s_ord, scan, g_min, shift, t_bkt,
                         mf.gap(temps, u, nu, n_orb))
    attrs = _group_attrs(spec, n_orb, band, scan, g_min, t_bkt, t_bkt_ord)
    return datasets, attrs
