"""BZ-integrated geometry and band diagnostics accumulated over batches (theory §5).

Per band n (and per link group): Chern number from link variables, integrated curvature
(1/2π) Σ Ω ΔA, integrated metric ∫ g_ij d²k/(2π)², Ω_I = A_c ∫ Tr g d²k/(2π)² against its
bound |C| A_c/(2π) (the precise form of the paper's Eq. 5), the trace-condition violation
max_k |Tr g − |Ω|| / <|Ω|>, plus band extents, bandwidths and direct gaps.
"""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel import allreduce_array, allreduce_sum


class GeometrySummary:
    """Accumulates per-band sums on this rank; :meth:`finish` reduces them (collective)."""

    def __init__(self, nbands: int, ngroups: int) -> None:
        self.nb = nbands
        self.count = 0
        self.sums = np.zeros((5, nbands))  # Ω, |Ω|, g_xx, g_yy, g_xy
        self.flux = np.zeros(ngroups)
        self.max_flux = np.zeros(ngroups)  # largest |flux| through one plaquette [rad]
        self.emin = np.full(nbands, np.inf)
        self.emax = np.full(nbands, -np.inf)
        self.gap = np.full(max(nbands - 1, 1), np.inf)
        self.violation = np.zeros(nbands)
        self.skipped = 0
        self.out_sums = np.zeros((3, nbands))  # window solves: Ω_out, g_out_xx, g_out_yy
        self.edges = np.array([-np.inf, np.inf])  # highest band below, lowest above window

    def add(self, energies, curvature, metric, flux, skipped: int = 0, eig=None) -> None:
        """Add one batch: energies/curvature (nk, nb), metric (nk, nb, 3), flux (nk, ngroups).

        ``eig`` (Eigenpairs) of a windowed solve adds its out-of-window parts and edges.
        """
        if energies.shape[0] == 0:
            return
        if eig is not None and eig.windowed:
            self.out_sums += np.stack([eig.curvature_out.sum(axis=0),
                                       *eig.metric_out[..., :2].sum(axis=0).T])
            below, above = eig.outside[:, 0], eig.outside[:, 1]
            self.edges = np.array([np.nanmax(np.append(below, self.edges[0])),
                                   np.nanmin(np.append(above, self.edges[1]))])
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
            self.gap = np.minimum(self.gap, np.diff(energies, axis=1).min(axis=0))
        trace = metric[..., 0] + metric[..., 1]
        self.violation = np.maximum(
            self.violation, np.abs(trace - np.abs(curvature)).max(axis=0)
        )
        self.skipped += skipped

    def reduced_state(self, comm: MPI.Comm) -> dict[str, np.ndarray]:
        """Raw sums, extrema and counts reduced over ranks. Collective over ``comm``."""
        return {
            "geo_sums": allreduce_array(comm, self.sums),
            "geo_flux": allreduce_array(comm, self.flux),
            "geo_max_flux": allreduce_array(comm, self.max_flux, MPI.MAX),
            "geo_emin": allreduce_array(comm, self.emin, MPI.MIN),
            "geo_emax": allreduce_array(comm, self.emax, MPI.MAX),
            "geo_gap": allreduce_array(comm, self.gap, MPI.MIN),
            "geo_violation": allreduce_array(comm, self.violation, MPI.MAX),
            "geo_skipped": np.array(allreduce_sum(comm, self.skipped)),
            "geo_out_sums": allreduce_array(comm, self.out_sums),
            "geo_edges": np.array([allreduce_array(comm, self.edges[:1], MPI.MAX)[0],
                                   allreduce_array(comm, self.edges[1:], MPI.MIN)[0]]),
        }

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Fold a checkpoint's reduced state into this rank (call on one rank only)."""
        self.sums += state["geo_sums"]
        self.flux += state["geo_flux"]
        if "geo_max_flux" in state:  # checkpoints written before this diagnostic lack it
            self.max_flux = np.maximum(self.max_flux, state["geo_max_flux"])
        self.emin = np.minimum(self.emin, state["geo_emin"])
        self.emax = np.maximum(self.emax, state["geo_emax"])
        self.gap = np.minimum(self.gap, state["geo_gap"])
        self.violation = np.maximum(self.violation, state["geo_violation"])
        self.skipped += int(state["geo_skipped"])
        if "geo_out_sums" in state:
            self.out_sums += state["geo_out_sums"]
            self.edges = np.array([max(self.edges[0], state["geo_edges"][0]),
                                   min(self.edges[1], state["geo_edges"][1])])

    def finish(self, comm: MPI.Comm, nk_total: int, cell_area: float) -> dict[str, np.ndarray]:
        """Reduce over ranks and return the theory §5 diagnostics. Collective over ``comm``."""
        st = self.reduced_state(comm)
        sums, flux, emin, emax = st["geo_sums"], st["geo_flux"], st["geo_emin"], st["geo_emax"]
        gap, worst, skipped = st["geo_gap"], st["geo_violation"], int(st["geo_skipped"])
        # (1/V)Σ_k → ∫ d²k/(2π)²: divide by N_k A_c (theory §1); area element ΔA = (2π)²/(N_k A_c).
        bz = 1.0 / (nk_total * cell_area)
        chern = np.rint(flux / (2 * math.pi)).astype(int)
        metric_integral = (sums[2:] * bz).T
        trace_integral = metric_integral[:, 0] + metric_integral[:, 1]
        mean_abs_curv = sums[1] / nk_total
        with np.errstate(divide="ignore", invalid="ignore"):
            violation = np.where(mean_abs_curv > 0, worst / mean_abs_curv, np.inf)
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
            "degenerate_pairs_skipped": np.array(skipped),
            # Window solves (theory §5): out-of-window share of curvature and metric, and the
            # nearest eigenvalues outside the window over the grid (±inf: none / dense).
            "chern_curvature_out": st["geo_out_sums"][0] * bz * 2 * math.pi,
            "metric_integral_out": (st["geo_out_sums"][1:] * bz).T,
            "window_edges": st["geo_edges"],
        }
