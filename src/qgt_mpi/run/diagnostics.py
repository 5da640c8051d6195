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
* **Touching bands** (theory §5.7): bands whose gap closes on the grid form a group; their
  per-band numbers are NaN (``/geometry/band_undefined``) and one warning names the groups.
* **Isolated windows** (theory §5.5, Eq. 5.5a): :func:`window_isolated`.
* **Flavours the model lacks** (theory §2.5a): a continuum model knows the valleys it holds
  (``valleys``) and the spin states of each (``spin_per_valley``); a ``degeneracy`` above the
  spin count counts valleys, and multiplies one valley's σ_xy where its partner would cancel it
  (``degeneracy = 4`` on one BM valley gives σ_xy = −4 e²/h at neutrality with a sublattice
  mass): :func:`check_flavours` warns and names ``valley = "both"``.

Warnings summarise: a count, index ranges (:func:`describe_indices`, "bands 0-119, 124-243
(240 of 244)") and the worst value, never one entry per band.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.geometry.chern import GROUP_MAX
from qgt_mpi.solvers import is_windowed

UNDEFINED_IF_NO_SIGMA = ("seebeck", "kappa_xx", "lorenz_ratio")
# Full-tensor outputs (transport/tensors.py) that divide by det sigma or by a component of
# sigma: NaN (or inf, written as NaN) where that vanishes; flagged like the three above.
UNDEFINED_IF_SINGULAR = ("seebeck_xx", "seebeck_xy", "kappa_xx_full", "kappa_xy",
                         "lorenz_ratio_xx_full", "lorenz_ratio_xy")
UNDEFINED = UNDEFINED_IF_NO_SIGMA + UNDEFINED_IF_SINGULAR  # every *_undefined mask


def undefined_meaning(key: str) -> str:
    """The ``meaning`` attribute of ``<key>_undefined``."""
    if key in UNDEFINED_IF_NO_SIGMA:
        return f"1 where {key} is undefined (sigma_xx = 0) and written as NaN"
    return (f"1 where {key} is undefined (the sigma tensor or the component it divides by "
            "is singular) and written as NaN")
MIN_GRID = 6  # points per direction below which no BZ integral is converged
GAP_RELATIVE_FLOOR = 1e-9  # gap must exceed this fraction of the energy scale
MAX_PLAQUETTE_FLUX = 0.5  # |Berry flux| per plaquette (units of π) above which C is doubtful
MAX_RANGES = 8  # index ranges written out in one warning; the rest are counted
EDGE_TOL = 1e-10  # meV: a window band this close to an outside one at one k is cut from it


def check_flavours(log: logging.Logger, model, degeneracy: float) -> bool:
    """Warn when ``degeneracy`` counts a valley the model does not contain; True if warned.

    The flavours a model leaves out are its spin states only (``spin_per_valley``: 2 for
    graphene, 1 for spin-valley-locked TMD valence bands), so ``degeneracy`` above that counts
    valleys; with one valley in the model that valley's Chern numbers are multiplied where its
    time-reversal partner's would cancel them. Models without ``valleys`` and
    ``spin_per_valley`` (tight-binding, atomistic TBG with both valleys in its cell, files) are
    not judged.
    """
    valleys = getattr(model, "valleys", None)
    spin = getattr(model, "spin_per_valley", None)
    if valleys is None or spin is None or degeneracy <= spin:
        return False
    held = "both valleys" if len(valleys) == 2 else f"one valley ({valleys[0]:+d})"
    advice = ("" if len(valleys) == 2 else 'use valley = "both" and ')
    log.warning("warning: degeneracy = %g counts flavours the model does not contain: it holds "
                "%s, each with %d spin state(s) outside the model (at most degeneracy = %d); "
                "a valley counted by degeneracy has the Chern numbers of the one computed, "
                "not the opposite ones of its time-reversal partner, so sigma_xy and the Hall "
                "channels are multiplied where they would cancel: %sdegeneracy = %d for a "
                "valley-unpolarised result", degeneracy, held, spin, spin, advice, spin)
    return True


def index_ranges(indices) -> list[tuple[int, int]]:
    """Sorted distinct integers as inclusive runs: [0, 1, 2, 5, 7, 8] → [(0, 2), (5, 5), (7, 8)]."""
    values = np.unique(np.asarray(indices, dtype=int))
    if values.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(values) != 1)
    first = np.concatenate([[0], breaks + 1])
    last = np.concatenate([breaks, [values.size - 1]])
    return [(int(values[a]), int(values[b])) for a, b in zip(first, last, strict=True)]


def format_ranges(ranges: list[tuple[int, int]], limit: int = MAX_RANGES) -> str:
    """"0-119, 124-243" (at most ``limit`` runs written, then "... and N more")."""
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit])
    if len(ranges) > limit:
        text += f", ... and {len(ranges) - limit} more"
    return text


def describe_indices(indices, total: int, noun: str = "band") -> str:
    """"bands 0-119, 124-243 (240 of 244)" or "band 5 (1 of 244)"."""
    ranges = index_ranges(indices)
    count = sum(b - a + 1 for a, b in ranges)
    plural = noun if count == 1 else noun + "s"
    return f"{plural} {format_ranges(ranges)} ({count} of {total})"


def flag_undefined(transport: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Set undefined S, κ, L/L_0 (and the full-tensor outputs present) to NaN in place;
    return their masks (True = undefined)."""
    no_sigma = transport["sigma_xx"] == 0.0
    masks = {}
    for key in UNDEFINED:
        if key not in transport:
            continue
        bad = ~np.isfinite(transport[key])
        if key in UNDEFINED_IF_NO_SIGMA:
            bad = bad | no_sigma
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
        worst = coarse[np.argmax(step[coarse])]
        reasons.append(f"{describe_indices(coarse, len(step))} change by up to "
                       f"{step[worst]:.3g} meV (band {worst}) between grid points, more than "
                       f"the narrowest window delta + pi k_B T = {width[coarse].min():.3g} meV")
    return reasons


def apply(result, transport: dict, geometry: dict, grid: tuple[int, int], delta: np.ndarray,
          temperature: np.ndarray, log: logging.Logger, is_root: bool,
          counts: dict[str, int] | None = None) -> None:
    """Add masks, counts and gapped flags to ``result`` (writer.ResultFile); log warnings.

    ``counts`` (``n_undefined_<key>``): the sweep was streamed into the file with its masks
    (run/sweep.py), so only the counts are recorded; otherwise the masks are made here
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
                "axes": attrs.get("axes", ""), "meaning": undefined_meaning(key)})
        counts = {f"n_undefined_{k}": int(m.sum()) for k, m in masks.items()}
    tr_attrs.update(counts)
    n_bad = max((counts.get(f"n_undefined_{k}", 0) for k in UNDEFINED_IF_NO_SIGMA),
                default=0)
    singular = [k for k in UNDEFINED_IF_SINGULAR if counts.get(f"n_undefined_{k}", 0)]
    n_sing = max((counts[f"n_undefined_{k}"] for k in singular), default=0)
    tensors = (f"; full-tensor outputs undefined (singular sigma) at up to {n_sing} points: "
               f"{', '.join(singular)}" if singular else "")
    if n_bad:
        warn("warning: transport: %d sweep points have sigma_xx = 0 or undefined ratios: "
             "seebeck, kappa_xx and lorenz_ratio are written as NaN there and flagged in "
             "/transport/*_undefined%s", n_bad, tensors)
    elif singular:
        warn("warning: transport: %s (written as NaN, flagged in /transport/*_undefined)",
             tensors[2:])
    _geometry_flags(result, geometry, grid, delta, temperature, warn)


def _geometry_flags(result, geometry, grid, delta, temperature, warn) -> None:
    """Gapped flags; warnings on touching groups, ungapped bands, unresolved fluxes, bands
    without curvature and coarse grids."""
    geo = result.groups["geometry"]
    width = geometry["bandwidth"]
    nb = len(width)
    undefined = np.asarray(geometry.get("band_undefined", np.zeros(nb, bool)), dtype=bool)
    scale = float(np.max(np.abs([geometry["band_min"], geometry["band_max"]])))
    # gaps inside a group resolved by a symmetry operator (theory §5.7) do not count: its
    # bands are the operator's, whose Chern numbers are invariants while the split holds
    open_gap = geometry.get("open_gap", geometry["min_gap"])
    gapped = gapped_bands(open_gap, width, grid, scale)
    geo["chern_gapped"] = (gapped.astype(np.uint8), {
        "axes": "band",
        "meaning": "1 if the band is separated from its neighbours on this grid (its Chern "
                   "number is a topological invariant); 0: the Chern number is not"})
    where = f"on this {grid[0]}x{grid[1]} grid"
    _warn_touching(geometry, undefined, where, warn)
    loose = np.flatnonzero(~gapped & ~undefined)
    if loose.size:
        warn("warning: geometry: %s not separated from their neighbours %s%s: their Chern "
             "numbers are not invariants (flag /geometry/chern_gapped = 0)",
             describe_indices(loose, nb), where, _smallest_gap(open_gap, loose))
    _warn_flux(geometry, nb, where, warn)
    ratio = np.asarray(geometry["trace_violation"], dtype=float)
    if not np.all(np.isfinite(ratio)):
        attrs = geo["trace_violation"][1]
        geo["trace_violation"] = (np.where(np.isfinite(ratio), ratio, np.nan), attrs)
        result.group_attrs.setdefault("geometry", {})["n_undefined_trace_violation"] = int(
            (~np.isfinite(ratio)).sum())
        flat = np.flatnonzero(~np.isfinite(ratio) & ~undefined)
        if flat.size:
            warn("warning: geometry: trace_violation undefined (no Berry curvature on the "
                 "grid) for %s; written as NaN", describe_indices(flat, nb))
    reasons = coarse_grid_reasons(grid, width, delta, temperature)
    if reasons:
        warn("warning: k-grid %dx%d may be too coarse for converged results: %s", grid[0],
             grid[1], "; ".join(reasons))


def _smallest_gap(min_gap, bands: np.ndarray) -> str:
    """"; smallest direct gap X meV above band n" over the gaps next to ``bands``."""
    gaps = np.asarray(min_gap, dtype=float)
    near = np.unique(np.concatenate([bands - 1, bands]))
    near = near[(near >= 0) & (near < gaps.size)]
    if not near.size:
        return ""
    n = int(near[np.argmin(gaps[near])])
    return f"; smallest direct gap {gaps[n]:.3g} meV above band {n}"


def _warn_touching(geometry, undefined: np.ndarray, where: str, warn) -> None:
    """One line on the groups of touching bands (theory §5.7)."""
    if not undefined.any():
        return
    bands = np.asarray(geometry["group_bands"], dtype=int)
    gaps = np.asarray(geometry["min_gap"], dtype=float)
    closed = np.flatnonzero(np.asarray(geometry["touching_gaps"], dtype=bool))
    n = closed[np.argmin(gaps[closed])] if closed.size else 0
    ranges = format_ranges([(int(a), int(b)) for a, b in bands])
    missing = int((~np.asarray(geometry["group_computed"], dtype=bool)).sum())
    note = (f"; {missing} group(s) of more than {GROUP_MAX} bands have no group numbers (NaN)"
            if missing else "")
    warn("warning: geometry: %s touch %s, in %d group(s) (bands %s; smallest gap %.3g meV "
         "above band %d): their per-band Chern numbers, curvature, metric and trace condition "
         "are undefined and written as NaN (/geometry/band_undefined); the groups' numbers "
         "are /geometry/group_*%s", describe_indices(np.flatnonzero(undefined), undefined.size),
         where, len(bands), ranges, gaps[n] if gaps.size else 0.0, n, note)


def _warn_flux(geometry, nb: int, where: str, warn) -> None:
    """One line on bands and touching groups whose largest plaquette flux is near π."""
    flux = np.asarray(geometry["chern_max_flux"][:nb], dtype=float)
    group_flux = np.asarray(geometry.get("group_chern_max_flux", np.zeros(0)), dtype=float)
    with np.errstate(invalid="ignore"):
        coarse = np.flatnonzero(flux > MAX_PLAQUETTE_FLUX)
        groups = np.flatnonzero(group_flux > MAX_PLAQUETTE_FLUX)
    if not coarse.size and not groups.size:
        return
    worst = float(np.nanmax(np.concatenate([flux[coarse], group_flux[groups]])))
    what = [describe_indices(coarse, nb)] if coarse.size else []
    if groups.size:
        bands = np.asarray(geometry["group_bands"], dtype=int)[groups]
        what.append(f"touching group(s) of bands {format_ranges([tuple(b) for b in bands])}")
    warn("warning: geometry: the Berry flux through one plaquette reaches %.2f pi for %s %s: "
         "their link Chern numbers may be wrong (refine the grid; /geometry/chern_max_flux, "
         "group_chern_max_flux)", worst, " and ".join(what), where)


def window_isolated(geometry: dict) -> bool:
    """Whether the window holds the same bands at every k (theory §5.5, Eq. 5.5a).

    Per k, the window's energies lie strictly inside that k's outside edges (direct gaps
    ``window_edge_gap`` > EDGE_TOL); over the grid, the window's energy range is separated
    from the outside edges' ranges by more than ``window_band_step``, the largest change of a
    band between neighbouring k-points, so no band can enter or leave the window between
    neighbours. Dicts without the per-k entries get the range test alone.
    """
    below, above = geometry["window_edges"]
    step = float(geometry.get("window_band_step", 0.0))
    direct = np.asarray(geometry.get("window_edge_gap", [np.inf, np.inf]), dtype=float)
    lo, hi = float(geometry["band_min"].min()), float(geometry["band_max"].max())
    return bool(direct.min() > EDGE_TOL and lo - below > step and above - hi > step)


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
        direct = np.asarray(geometry.get("window_edge_gap", [np.inf, np.inf]), dtype=float)
        log.warning("the solver window is not an isolated group of bands: its bands reach "
                    "%.6g .. %.6g meV while bands outside it reach %.6g (below) and %.6g "
                    "(above) over the grid (smallest direct gap at one k: %.3g below, %.3g "
                    "above; a window band moves by up to %.3g meV between neighbouring "
                    "k-points), so different k-points may hold different bands in the window; "
                    "per-band results and transport are not meaningful (choose nev to hold "
                    "whole isolated band groups)", geometry["band_min"].min(),
                    geometry["band_max"].max(), below, above, direct[0], direct[1],
                    float(geometry.get("window_band_step", 0.0)))
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
