"""Never silently wrong: flags for undefined values, ungapped Chern numbers, coarse grids.

Applied once to the reduced results (identical on every rank, so no communication):

* **Undefined sweep points.** S, κ and L/L_0 divide by S^(0) ∝ σ_xx (theory §4 Eqs. 18-19);
  where σ_xx = 0 (an empty band window, a single k-point) they are undefined. They are
  written as NaN, with a mask ``/transport/<name>_undefined`` (1 = undefined) and the count
  as the attribute ``n_undefined_<name>`` of ``/transport``, and one warning line.
* **Ungapped bands.** A link-variable Chern number (theory §5) is an integer for any set of
  bands, but it is the band's topological invariant only if the band is separated from its
  neighbours everywhere in the BZ. On an N1×N2 grid the smallest direct gap seen is
  ``min_gap``; between grid points the bands may approach by the energy step of the grid,
  estimated as π W_n / min(N1, N2) for a band of width W_n (largest slope of a band of width
  W spread over one reciprocal vector). A band is ``gapped`` if its gaps to both neighbours
  exceed the larger of the two steps and 1e-9 of the energy scale. ``/geometry/chern_gapped``
  holds the flags; a warning names the bands whose Chern number is not an invariant.
* **Unresolved curvature.** Each plaquette's flux enters the link Chern number modulo 2π;
  when the largest |flux| of a band (``/geometry/chern_max_flux``, units of π) exceeds
  MAX_PLAQUETTE_FLUX, a curvature peak falls within a few plaquettes (a near-touching band,
  a coarse grid) and the integer may be off by one: a warning names those bands.
* **Coarse grids.** Warn when a grid direction has fewer than ``MIN_GRID`` points, or when the
  energy step of a band exceeds the narrowest spectral width of the sweep, min(δ_n + π k_B T):
  the Lorentzian/thermal windows then fall between grid energies and the k-sums of theory §4
  are not converged.
* A non-finite trace-condition ratio (theory §5, no curvature at all) is written as NaN, flagged.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.solvers import is_windowed

UNDEFINED_IF_NO_SIGMA = ("seebeck", "kappa_xx", "lorenz_ratio")
MIN_GRID = 6  # points per direction below which no BZ integral is converged
GAP_RELATIVE_FLOOR = 1e-9  # gap must exceed this fraction of the energy scale
MAX_PLAQUETTE_FLUX = 0.5  # |Berry flux| per plaquette (units of π) above which C is doubtful


def flag_undefined(transport: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Set undefined S, κ, L/L_0 to NaN in place; return their masks (True = undefined)."""
    no_sigma = transport["sigma_xx"] == 0.0
    masks = {}
    for key in UNDEFINED_IF_NO_SIGMA:
        bad = no_sigma | ~np.isfinite(transport[key])
        transport[key] = np.where(bad, np.nan, transport[key])
        masks[key] = bad
    return masks


def band_steps(bandwidth: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Largest energy change of each band between neighbouring grid points (estimate)."""
    return math.pi * np.asarray(bandwidth, dtype=float) / max(1, min(grid))


def gapped_bands(min_gap: np.ndarray, bandwidth: np.ndarray, grid: tuple[int, int],
                 scale: float) -> np.ndarray:
    """Per-band flag: separated from both neighbours by more than the grid can hide."""
    nb = len(bandwidth)
    step = band_steps(bandwidth, grid)
    floor = GAP_RELATIVE_FLOOR * max(scale, 1e-300)
    ok = np.ones(nb, dtype=bool)
    for n in range(nb - 1):  # gap between band n and n + 1
        separated = min_gap[n] > max(step[n], step[n + 1], floor)
        ok[n] &= separated
        ok[n + 1] &= separated
    return ok


def coarse_grid_reasons(grid: tuple[int, int], bandwidth: np.ndarray, delta: np.ndarray,
                        temperature: np.ndarray) -> list[str]:
    """Why the grid may be too coarse for converged sums (empty list: fine)."""
    reasons = []
    if min(grid) < MIN_GRID:
        reasons.append(f"fewer than {MIN_GRID} points in a direction")
    width = np.min(delta, axis=0) + math.pi * K_B_MEV_PER_K * float(np.min(temperature))
    step = band_steps(bandwidth, grid)
    coarse = np.nonzero(step > width)[0]
    if coarse.size:
        reasons.append(f"band(s) {coarse.tolist()} change by up to {step[coarse].max():.3g} "
                       f"meV between grid points, more than the narrowest window "
                       f"delta + pi k_B T = {width[coarse].min():.3g} meV")
    return reasons


def apply(result, transport: dict, geometry: dict, grid: tuple[int, int], delta: np.ndarray,
          temperature: np.ndarray, log: logging.Logger, is_root: bool,
          counts: dict[str, int] | None = None) -> None:
    """Add masks, counts and gapped flags to ``result`` (writer.ResultFile); log warnings.

    ``counts`` (``n_undefined_<key>``): the sweep was streamed into the file with its masks
    (evaluation.py), so only the counts are recorded; otherwise the masks are made here
    from the in-memory ``transport``. Local (inputs identical on every rank); root logs.
    """
    warn = log.warning if is_root else (lambda *a: None)
    tr_group, tr_attrs = result.groups["transport"], result.group_attrs["transport"]
    if counts is None:
        masks = flag_undefined(transport)
        for key, mask in masks.items():
            attrs = tr_group[key][1]
            tr_group[key] = (transport[key], attrs)
            tr_group[f"{key}_undefined"] = (mask.astype(np.uint8), {
                "units": "1", "axes": attrs.get("axes", ""),
                "meaning": f"1 where {key} is undefined (sigma_xx = 0) and written as NaN"})
        counts = {f"n_undefined_{k}": int(m.sum()) for k, m in masks.items()}
    tr_attrs.update(counts)
    n_bad = max(counts.values(), default=0)
    if n_bad:
        warn("warning: transport: %d sweep points have sigma_xx = 0 or undefined ratios: "
             "seebeck, kappa_xx and lorenz_ratio are written as NaN there and flagged in "
             "/transport/*_undefined", n_bad)
    _geometry_flags(result, geometry, grid, delta, temperature, warn)


def _geometry_flags(result, geometry, grid, delta, temperature, warn) -> None:
    """Gapped flags, non-finite trace ratio, coarse-grid warning."""
    geo = result.groups["geometry"]
    width = geometry["bandwidth"]
    scale = float(np.max(np.abs([geometry["band_min"], geometry["band_max"]])))
    gapped = gapped_bands(geometry["min_gap"], width, grid, scale)
    geo["chern_gapped"] = (gapped.astype(np.uint8), {
        "units": "1", "axes": "band",
        "meaning": "1 if the band is separated from its neighbours on this grid (its Chern "
                   "number is a topological invariant); 0: the Chern number is not"})
    if not gapped.all():
        warn("warning: geometry: band(s) %s not separated from their neighbours on this "
             "%dx%d grid: their Chern numbers %s are not invariants "
             "(flag /geometry/chern_gapped = 0)",
             np.nonzero(~gapped)[0].tolist(), grid[0], grid[1],
             geometry["chern_groups"][: len(gapped)][~gapped].tolist())
    flux = np.asarray(geometry["chern_max_flux"][: len(gapped)], dtype=float)
    coarse = np.flatnonzero(flux > MAX_PLAQUETTE_FLUX)
    if coarse.size:
        warn("warning: geometry: the Berry flux through one plaquette reaches %.2f pi for "
             "band(s) %s on this %dx%d grid: their link Chern numbers %s may be wrong "
             "(refine the grid; /geometry/chern_max_flux)", float(flux.max()),
             coarse.tolist(), grid[0], grid[1], geometry["chern_groups"][coarse].tolist())
    ratio = np.asarray(geometry["trace_violation"], dtype=float)
    if not np.all(np.isfinite(ratio)):
        attrs = geo["trace_violation"][1]
        geo["trace_violation"] = (np.where(np.isfinite(ratio), ratio, np.nan), attrs)
        result.group_attrs.setdefault("geometry", {})["n_undefined_trace_violation"] = int(
            (~np.isfinite(ratio)).sum())
        warn("warning: geometry: trace_violation undefined (no Berry curvature on the "
             "grid) for band(s) %s; written as NaN", np.nonzero(~np.isfinite(ratio))[0].tolist())
    reasons = coarse_grid_reasons(grid, width, delta, temperature)
    if reasons:
        warn("warning: k-grid %dx%d may be too coarse for converged results: %s", grid[0],
             grid[1], "; ".join(reasons))


def window_isolated(geometry: dict) -> bool:
    """Whether every window band stays between the outside bands over the whole grid."""
    below, above = geometry["window_edges"]
    return bool(geometry["band_min"].min() > below and geometry["band_max"].max() < above)


def check_window(log, job, geometry: dict, mu: np.ndarray | None = None) -> None:
    """Warn when μ leaves the window's energy range or nears outside bands (theory §5).

    The far-off-resonance limit of the pairs with outside bands needs μ among the window
    bands: elsewhere (e.g. in a gap above the window) the Lorentzian tails of the outside
    bands, which the window does not hold, are as large as those of the window bands.
    ``mu`` [meV]: the chemical potentials actually used (the solved μ(ν, T) of a fixed-filling
    sweep); default the sweep's μ axis. ``job`` is a kpass.KPass.
    """
    if not is_windowed(job.solver):
        return
    below, above = geometry["window_edges"]
    if not window_isolated(geometry):
        log.warning("the solver window is not an isolated group of bands: its bands reach "
                    "%.6g .. %.6g meV while bands outside it reach %.6g (below) and %.6g "
                    "(above) elsewhere in the zone, so different k-points hold different "
                    "bands in the window; per-band results and transport are not meaningful "
                    "(choose nev to hold whole isolated band groups)",
                    geometry["band_min"].min(), geometry["band_max"].max(), below, above)
    s = job.sums
    mu = np.asarray(s.mu if mu is None else mu, dtype=float)
    reach = 10.0 * (float(s.delta.max()) + np.pi * K_B_MEV_PER_K * float(s.temperature.max()))
    lo, hi = float(geometry["band_min"].min()), float(geometry["band_max"].max())
    if mu.min() < lo or mu.max() > hi or mu.min() - reach < below or mu.max() + reach > above:
        log.warning("mu %.6g .. %.6g meV leaves the window bands (%.6g .. %.6g meV) or comes "
                    "within 10 (delta + pi k_B T) = %.3g meV of bands outside it (%.6g, %.6g "
                    "meV): bands outside the window are then not negligible; widen the window "
                    "(solver.nev)", mu.min(), mu.max(), lo, hi, reach, below, above)
    if s.chern_below is None:
        log.info("sigma_xy excludes the filled bands below the window (solver.chern_below "
                 "not given)")
