"""BZ-integrated geometry and band diagnostics accumulated over batches (theory §5).

Per band n (and per link group): Chern number from link variables, integrated curvature
(1/2π) Σ Ω ΔA, integrated metric ∫ g_ij d²k/(2π)², Ω_I = A_c ∫ Tr g d²k/(2π)² against its
bound |C| A_c/(2π) (the precise form of the paper's Eq. 5), the trace-condition violation
max_k |Tr g − |Ω|| / <|Ω|>, plus band extents, bandwidths and direct gaps.

Touching bands (theory §5.7): every contiguous group of up to GROUP_MAX bands is accumulated
too (link flux, group curvature and metric, trace condition); :meth:`GeometrySummary.finish`
finds the gaps that close on the grid (Eq. 5.7b), reports the groups they join and writes the
per-band numbers of their bands as NaN (``band_undefined``). Windowed solves also record the
direct gaps to the outside bands and the band slopes that decide ``window_isolated`` (§5.5).
"""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.geometry.bands import gap_pair_bound, group_geometry
from qgt_mpi.geometry.chern import touching_candidates
from qgt_mpi.parallel import allreduce_array, allreduce_sum
from qgt_mpi.solvers.base import Eigenpairs

TOUCH_ATOL = 1e-10  # meV: a gap this small is a degeneracy (band_geometry skips such pairs)
TOUCH_RTOL = 1e-2  # a touching gap is below this fraction of the bands' energy range ...
TOUCH_POINT = 1e3  # ... and one pair's term at one grid point, ΔA·Tr G^nm, exceeds this:
# the gap is below |v_nm| h/32 (h = √ΔA), the 1/Δε² peak far narrower than the grid (Eq. 5.7b)
CURVATURE_FLOOR = 1e-9  # <|Ω|> below this × <Tr g>: no curvature (trace condition undefined)
# Per-band results that are undefined for a band inside a touching group (theory §5.7).
PER_BAND_KEYS = ("chern_curvature", "metric_integral", "trace_integral", "omega_I",
                 "omega_I_bound", "trace_violation")


class GeometrySummary:
    """Accumulates per-band sums on this rank; :meth:`finish` reduces them (collective)."""

    def __init__(self, nbands: int, ngroups: int) -> None:
        self.nb = nbands
        self.ngroups = ngroups
        self.count = 0
        self.sums = np.zeros((5, nbands))  # Ω, |Ω|, g_xx, g_yy, g_xy
        self.flux = np.zeros(ngroups)
        self.max_flux = np.zeros(ngroups)  # largest |flux| through one plaquette [rad]
        self.emin = np.full(nbands, np.inf)
        self.emax = np.full(nbands, -np.inf)
        self.gap = np.full(max(nbands - 1, 1), np.inf)
        # the same, over the gaps not inside a resolved degenerate group (theory §5.7, Eq.
        # 5.7c): such a group has a basis and per-band numbers, so its gaps do not "touch"
        self.open_gap = np.full(max(nbands - 1, 1), np.inf)
        self.violation = np.zeros(nbands)
        self.skipped = 0
        self.out_sums = np.zeros((3, nbands))  # window solves: Ω_out, g_out_xx, g_out_yy
        self.edges = np.array([-np.inf, np.inf])  # highest band below, lowest above window
        self.edge_gap = np.array([np.inf, np.inf])  # smallest direct gap to them at one k
        self.slope = 0.0  # largest |∇ε_n| of a window band [meV × length]
        # touching groups (theory §5.7): candidate groups and the pair bound across each gap
        self.candidates = touching_candidates(nbands)
        ncand = len(self.candidates)
        self.gap_bound = np.zeros(max(nbands - 1, 0))
        self.group_sums = np.zeros((5, ncand))  # Ω_G, |Ω_G|, g_xx, g_yy, g_xy
        self.group_violation = np.zeros(ncand)
        self.group_flux = np.zeros(ncand)
        self.group_max_flux = np.zeros(ncand)
        self.group_count = 0  # k-points whose candidate groups were accumulated

    def add(self, energies: np.ndarray, curvature: np.ndarray, metric: np.ndarray,
            flux: np.ndarray, skipped: int = 0, eig: Eigenpairs | None = None) -> None:
        """Add one batch: energies/curvature (nk, nb), metric (nk, nb, 3), flux (nk, ngroups).

        ``flux`` may carry the fluxes of ``self.candidates`` after its ``ngroups`` columns
        (the k-pass calls ``plaquette_flux(..., candidates=self.candidates)``). ``eig``
        (Eigenpairs, with velocities) adds the touching-group sums (theory §5.7); a windowed
        solve also adds its out-of-window parts, edges, edge gaps and band slopes (§5.5).
        """
        if energies.shape[0] == 0:
            return
        flux, group_flux = flux[:, : self.ngroups], flux[:, self.ngroups :]
        if eig is not None and eig.windowed:
            self._add_window(energies, eig)
        self.count += energies.shape[0]
        self.sums[0] += curvature.sum(axis=0)
        self.sums[1] += np.abs(curvature).sum(axis=0)
        self.sums[2:] += metric.sum(axis=0).T
        self.flux += flux.sum(axis=0)
        if flux.size:
            self.max_flux = np.maximum(self.max_flux, np.abs(flux).max(axis=0))
        self.emin = np.minimum(self.emin, energies.min(axis=0))
        self.emax = np.maximum(self.emax, energies.max(axis=0))
        if self.nb > 1:
            diffs = np.diff(energies, axis=1)
            self.gap = np.minimum(self.gap, diffs.min(axis=0))
            if eig is not None and eig.groups is not None:
                g = eig.groups
                diffs = np.where((g[:, 1:] == g[:, :-1]) & (g[:, 1:] >= 0), np.inf, diffs)
            self.open_gap = np.minimum(self.open_gap, diffs.min(axis=0))
        trace = metric[..., 0] + metric[..., 1]
        self.violation = np.maximum(
            self.violation, np.abs(trace - np.abs(curvature)).max(axis=0)
        )
        self.skipped += skipped
        if eig is not None and eig.velocities is not None:
            self._add_groups(eig, group_flux)

    def _add_window(self, energies: np.ndarray, eig: Eigenpairs) -> None:
        """Out-of-window sums, outside edges, direct edge gaps and slopes (theory §5.4-5.5)."""
        curvature_out, metric_out, outside = eig.curvature_out, eig.metric_out, eig.outside
        if curvature_out is None or metric_out is None or outside is None:
            raise ValueError("a window solve needs its out-of-window parts and edges")
        self.out_sums += np.stack([curvature_out.sum(axis=0),
                                   *metric_out[..., :2].sum(axis=0).T])
        below, above = outside[:, 0], outside[:, 1]
        self.edges = np.array([np.nanmax(np.append(below, self.edges[0])),
                               np.nanmin(np.append(above, self.edges[1]))])
        gaps = np.stack([energies[:, 0] - below, above - energies[:, -1]])  # NaN: none
        self.edge_gap = np.minimum(self.edge_gap,
                                   np.where(np.isnan(gaps), np.inf, gaps).min(axis=1))
        if eig.velocities is not None:  # Hellmann-Feynman: ∂_i ε_n = v^i_nn (theory §1)
            slope = np.hypot(*np.diagonal(eig.velocities, axis1=-2, axis2=-1).real)
            self.slope = max(self.slope, float(slope.max(initial=0.0)))

    def _add_groups(self, eig: Eigenpairs, group_flux: np.ndarray) -> None:
        """Pair bound across each gap; candidate groups' geometry and fluxes (theory §5.7)."""
        self.gap_bound = np.maximum(self.gap_bound, gap_pair_bound(eig))
        if not self.candidates or group_flux.shape[1] != len(self.candidates):
            return  # no candidate fluxes from this caller: group numbers stay undefined
        curvature, metric = group_geometry(eig, self.candidates)
        trace = metric[..., 0] + metric[..., 1]
        self.group_sums += np.stack([curvature.sum(axis=0), np.abs(curvature).sum(axis=0),
                                     *metric.sum(axis=0).T])
        self.group_violation = np.maximum(
            self.group_violation, np.abs(trace - np.abs(curvature)).max(axis=0))
        self.group_flux += group_flux.sum(axis=0)
        self.group_max_flux = np.maximum(self.group_max_flux, np.abs(group_flux).max(axis=0))
        self.group_count += eig.energies.shape[0]

    def reduced_state(self, comm: MPI.Comm) -> dict[str, np.ndarray]:
        """Raw sums, extrema and counts reduced over ranks. Collective over ``comm``."""
        return {
            "geo_sums": allreduce_array(comm, self.sums),
            "geo_flux": allreduce_array(comm, self.flux),
            "geo_max_flux": allreduce_array(comm, self.max_flux, MPI.MAX),
            "geo_emin": allreduce_array(comm, self.emin, MPI.MIN),
            "geo_emax": allreduce_array(comm, self.emax, MPI.MAX),
            "geo_gap": allreduce_array(comm, self.gap, MPI.MIN),
            "geo_open_gap": allreduce_array(comm, self.open_gap, MPI.MIN),
            "geo_violation": allreduce_array(comm, self.violation, MPI.MAX),
            "geo_skipped": np.array(allreduce_sum(comm, self.skipped)),
            "geo_out_sums": allreduce_array(comm, self.out_sums),
            "geo_edges": np.array([allreduce_array(comm, self.edges[:1], MPI.MAX)[0],
                                   allreduce_array(comm, self.edges[1:], MPI.MIN)[0]]),
            "geo_edge_gap": allreduce_array(comm, self.edge_gap, MPI.MIN),
            "geo_slope": allreduce_array(comm, np.array([self.slope]), MPI.MAX),
            "geo_gap_bound": allreduce_array(comm, self.gap_bound, MPI.MAX),
            "geo_group_sums": allreduce_array(comm, self.group_sums),
            "geo_group_violation": allreduce_array(comm, self.group_violation, MPI.MAX),
            "geo_group_flux": allreduce_array(comm, self.group_flux),
            "geo_group_max_flux": allreduce_array(comm, self.group_max_flux, MPI.MAX),
            "geo_group_count": np.array(allreduce_sum(comm, self.group_count)),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Fold a checkpoint's reduced state (:meth:`reduced_state`, every key present:
        io/checkpoint.py refuses older formats) into this rank (call on one rank only)."""
        self.sums += state["geo_sums"]
        self.flux += state["geo_flux"]
        self.max_flux = np.maximum(self.max_flux, state["geo_max_flux"])
        self.emin = np.minimum(self.emin, state["geo_emin"])
        self.emax = np.maximum(self.emax, state["geo_emax"])
        self.gap = np.minimum(self.gap, state["geo_gap"])
        self.open_gap = np.minimum(self.open_gap, state["geo_open_gap"])
        self.violation = np.maximum(self.violation, state["geo_violation"])
        self.skipped += int(state["geo_skipped"])
        self.out_sums += state["geo_out_sums"]
        self.edges = np.array([max(self.edges[0], state["geo_edges"][0]),
                               min(self.edges[1], state["geo_edges"][1])])
        # touching groups and window edges (theory §5.5, §5.7)
        self.edge_gap = np.minimum(self.edge_gap, state["geo_edge_gap"])
        self.slope = max(self.slope, float(state["geo_slope"][0]))
        self.gap_bound = np.maximum(self.gap_bound, state["geo_gap_bound"])
        self.group_sums += state["geo_group_sums"]
        self.group_violation = np.maximum(self.group_violation, state["geo_group_violation"])
        self.group_flux += state["geo_group_flux"]
        self.group_max_flux = np.maximum(self.group_max_flux, state["geo_group_max_flux"])
        self.group_count += int(state["geo_group_count"])

    def finish(self, comm: MPI.Comm, nk_total: int, cell_area: float) -> dict[str, np.ndarray]:
        """Reduce over ranks and return the theory §5 diagnostics. Collective over ``comm``.

        Per-band numbers of bands inside a touching group (``band_undefined``) are NaN; the
        raw link data ``chern_groups`` and ``chern_flux`` are left as computed.
        """
        out = self._finish(self.reduced_state(comm), nk_total, cell_area)
        undefine_bands(out, out["band_undefined"])
        return out

    def _finish(self, st: dict[str, np.ndarray], nk_total: int, cell_area: float) -> dict:
        """The diagnostics of the reduced state ``st``. Local."""
        sums, flux, emin, emax = st["geo_sums"], st["geo_flux"], st["geo_emin"], st["geo_emax"]
        gap, worst, skipped = st["geo_gap"], st["geo_violation"], int(st["geo_skipped"])
        # (1/V)Σ_k → ∫ d²k/(2π)²: divide by N_k A_c (theory §1); area element ΔA = (2π)²/(N_k A_c).
        bz = 1.0 / (nk_total * cell_area)
        with np.errstate(invalid="ignore"):  # NaN flux: undefined bands (band_undefined)
            chern = np.rint(flux / (2 * math.pi)).astype(int)
        metric_integral = (sums[2:] * bz).T
        trace_integral = metric_integral[:, 0] + metric_integral[:, 1]
        violation = trace_violation(worst, sums, nk_total)
        return {
            "chern_flux": flux / (2 * math.pi),
            # Largest |Berry flux| through one plaquette, in units of π: the link Chern number
            # counts each plaquette's flux modulo 2π, so a flux near ±π is ambiguous.
            "chern_max_flux": st["geo_max_flux"] / math.pi,
            "chern_groups": chern,
            "chern_curvature": sums[0] * bz * 2 * math.pi,  # (1/2π) Σ Ω ΔA
            "metric_integral": metric_integral,
            "trace_integral": trace_integral * 2 * math.pi,  # (1/2π)∫Tr g d²k ≥ |C|
            "omega_I": cell_area * trace_integral,
            "omega_I_bound": np.abs(chern[: self.nb]) * cell_area / (2 * math.pi),
            "trace_violation": violation,
            "band_min": emin,
            "band_max": emax,
            "bandwidth": emax - emin,
            "min_gap": gap[: max(self.nb - 1, 0)],
            # the gaps that are not inside a resolved degenerate group (theory §5.7, Eq. 5.7c)
            "open_gap": st["geo_open_gap"][: max(self.nb - 1, 0)],
            "degenerate_pairs_skipped": np.array(skipped),
            # Window solves (theory §5): out-of-window share of curvature and metric, and the
            # nearest eigenvalues outside the window over the grid (±inf: none / dense).
            "chern_curvature_out": st["geo_out_sums"][0] * bz * 2 * math.pi,
            "metric_integral_out": (st["geo_out_sums"][1:] * bz).T,
            "window_edges": st["geo_edges"],
            # Smallest direct gap to them at one k, and the largest change of a window band
            # between neighbouring k-points, |∇ε| h with h = sqrt(ΔA) (theory §5.5, Eq. 5.5a).
            "window_edge_gap": st["geo_edge_gap"],
            # (or π W/√N_k with W the widest window band, when larger: at high-symmetry grid
            # points ∇ε = 0, e.g. every point of a 2×2 grid; Eq. 5.5a)
            "window_band_step": max(float(st["geo_slope"][0]) * 2 * math.pi * math.sqrt(bz),
                                    math.pi * float(np.max(emax - emin, initial=0.0))
                                    / math.sqrt(max(nk_total, 1))),
        } | self._touching(st, nk_total, bz)

    def _touching(self, st: dict[str, np.ndarray], nk_total: int, bz: float) -> dict:
        """Touching groups, their numbers and the per-band mask (theory §5.7). Local."""
        scale = float(st["geo_emax"].max() - st["geo_emin"].min()) if self.nb else 0.0
        closed = touching_gaps(st["geo_open_gap"][: max(self.nb - 1, 0)], st["geo_gap_bound"],
                               scale, (2 * math.pi) ** 2 * bz)
        groups = touching_groups(closed)
        undefined = np.zeros(self.nb, bool)
        for lo, hi in groups:
            undefined[lo:hi] = True
        return {"touching_gaps": closed, "band_undefined": undefined,
                **group_numbers(st, self.candidates, groups, nk_total, bz)}


def touching_gaps(min_gap: np.ndarray, bound: np.ndarray, scale: float, area: float
                  ) -> np.ndarray:
    """Gaps closed by a touching on the grid, (nb − 1,) bool (theory §5.7, Eq. 5.7b).

    Gap n (between bands n and n + 1) is closed when its smallest value on the grid is at
    most TOUCH_ATOL, or at most TOUCH_RTOL × ``scale`` (the bands' energy range) while a pair
    across it has ``area`` × Tr G^nm > TOUCH_POINT at some k (``bound``: gap_pair_bound).
    """
    near = min_gap <= TOUCH_RTOL * scale
    return (min_gap <= TOUCH_ATOL) | (near & (area * bound > TOUCH_POINT))


def touching_groups(closed: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs (lo, hi) of bands lo..hi−1 joined by closed gaps (two or more bands)."""
    groups, lo = [], 0
    for n in range(len(closed) + 1):
        if n == len(closed) or not closed[n]:
            if n > lo:
                groups.append((lo, n + 1))
            lo = n + 1
    return groups


def group_numbers(st: dict[str, np.ndarray], candidates: list[tuple[int, int]],
                  groups: list[tuple[int, int]], nk_total: int, bz: float) -> dict:
    """Chern number, metric and trace condition of each touching group (theory §5.7).

    Picked from the candidates' sums; a group of more than GROUP_MAX bands, or a pass that
    did not accumulate the candidates at every k-point, has NaN numbers and
    ``group_computed`` false. ``group_bands`` holds the first and last band of each group.
    """
    index = {g: i for i, g in enumerate(candidates)}
    rows = np.array([index.get(g, -1) for g in groups], dtype=int)
    ok = (rows >= 0) & (int(st["geo_group_count"]) == nk_total)

    def take(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return np.where(ok, values[..., np.where(ok, rows, 0)], np.nan) if rows.size else \
            np.zeros((*values.shape[:-1], 0))

    sums, flux = take(st["geo_group_sums"]), take(st["geo_group_flux"]) / (2 * math.pi)
    metric = (sums[2:] * bz).T
    violation = trace_violation(take(st["geo_group_violation"]), sums, nk_total)
    return {
        "group_bands": np.array(groups, dtype=int).reshape(-1, 2) - np.array([0, 1]),
        "group_computed": ok,
        "group_chern": np.rint(flux) + 0.0,  # no "-0"
        "group_chern_flux": flux,
        "group_chern_max_flux": take(st["geo_group_max_flux"]) / math.pi,
        "group_chern_curvature": sums[0] * bz * 2 * math.pi,  # (1/2π) Σ Ω_G ΔA
        "group_metric_integral": metric,
        "group_trace_integral": (metric[:, 0] + metric[:, 1]) * 2 * math.pi,
        "group_trace_violation": np.where(np.isfinite(violation), violation, np.nan),
    }


def trace_violation(worst: np.ndarray, sums: np.ndarray, nk_total: int) -> np.ndarray:
    """max_k |Tr g − |Ω|| / <|Ω|> (theory §5.2); inf where the curvature is nil.

    ``sums`` are Σ_k (Ω, |Ω|, g_xx, g_yy, ...). A band (group) whose <|Ω|> is at most
    CURVATURE_FLOOR × <Tr g> (zero up to rounding, e.g. by C2zT symmetry) has no trace
    condition to violate: the ratio would be rounding noise over rounding noise.
    """
    mean_abs_curv = sums[1] / nk_total
    floor = CURVATURE_FLOOR * (sums[2] + sums[3]) / nk_total
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean_abs_curv > floor, worst / mean_abs_curv, np.inf)


def undefine_bands(out: dict, undefined: np.ndarray) -> None:
    """Write NaN into the per-band results of bands inside touching groups (theory §5.7)."""
    if not undefined.any():
        return  # isolated bands: every number exactly as computed
    for key in PER_BAND_KEYS:
        values = np.array(out[key], dtype=float)
        values[undefined] = np.nan
        out[key] = values
    flux = np.array(out["chern_max_flux"], dtype=float)
    flux[: undefined.size][undefined] = np.nan
    out["chern_max_flux"] = flux
