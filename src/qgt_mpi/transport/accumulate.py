"""Transport k-sums for a whole sweep: deposit per batch, reduce once, evaluate in units."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.transport.binning import (
    N_SLOTS,
    NCOMP,
    Cells,
    CellStore,
    channels,
    deposit_occupation,
    deposit_weights,
)
from qgt_mpi.transport.energy_cells import EnergyLattice
from qgt_mpi.transport.evaluate import PointCache, evaluate_channel, evaluate_points
from qgt_mpi.transport.observables import SIGMA_PER_SUM
from qgt_mpi.transport.points import split_points
from qgt_mpi.transport.tree import CellTree
from qgt_mpi.transport.weights import DENSITY, DENSITY_WEIGHT, add_far_pairs, band_weights

ETA_DEG = 0.02  # near-degenerate pairs: |z_n − z_m| < η_deg (min δ + π k_B T_min)
BAND_OCCUPATION_MAX = 8  # per-band occupations (the `filling` output) up to this many bands
_PAIR_ELEMENTS = 1 << 21  # k-points × band pairs per weight sub-batch (bounded memory)


class TransportSums:
    """Accumulates the theory §4 k-sums of one run for every (μ, δ, T) of the sweep.

    Parameters
    ----------
    temperature : (n_T,) K; mu : (n_mu,) meV; delta : (n_delta, n_bands) meV.
    delta_out : (n_delta,) broadening of bands outside a solver window [meV], or None.
    chern_below : total Chern number of the filled bands below a window (their Hall
        response −C_below e²/h, theory §5), or None when excluded.
    filling_bands : bands of a fixed-filling sweep (μ is solved after the k-pass, so the
        cells are uniform, lattice.EnergyLattice ``anywhere``), or None.

    Per-band occupations (the ``filling`` output) are kept for every band when there are at
    most BAND_OCCUPATION_MAX bands, else for the ``filling_bands`` only: they cost one
    evaluation per band, while everything else is evaluated per broadening channel.
    """

    def __init__(self, temperature: np.ndarray, mu: np.ndarray, delta: np.ndarray,
                 delta_out: np.ndarray | None = None, chern_below: int | None = None,
                 filling_bands: list[int] | None = None) -> None:
        self.delta_out = None if delta_out is None else np.asarray(delta_out, dtype=float)
        self.chern_below = chern_below
        self.temperature = np.asarray(temperature, dtype=float)
        self.mu = np.asarray(mu, dtype=float)
        self.delta = np.asarray(delta, dtype=float)
        nb = self.delta.shape[1]
        kt_min = K_B_MEV_PER_K * float(self.temperature.min())
        self.lattice = EnergyLattice(self.mu, float(self.delta.min()) + math.pi * kt_min,
                                     anywhere=filling_bands is not None)
        self.grid = (self.lattice.h, self.lattice.e0)
        self.near_tol = ETA_DEG * (self.delta.min(axis=1) + math.pi * kt_min)
        self.chan_of, self.chan_choice, self.chan_delta = channels(self.delta)
        self.moments = CellStore(self.chan_delta.size, NCOMP, N_SLOTS)
        occ = list(range(nb)) if nb <= BAND_OCCUPATION_MAX else sorted(filling_bands or [])
        self.occ_bands = np.array(occ, dtype=np.int64)
        self.occupation = CellStore(len(occ), 1, N_SLOTS, float) if occ else None
        self.sweep_done: np.ndarray | None = None  # units evaluated (restored on restart)
        self.n_cells = 0  # occupied cells of the reduced tree (known after reduce)

    @property
    def stores(self) -> dict[str, CellStore | None]:
        """The moment stores by checkpoint name."""
        return {"cells": self.moments, "occupation": self.occupation}

    def add(self, energies: np.ndarray, products: dict[str, np.ndarray],
            outside: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Deposit one batch (energies (nk, nb), pair products of geometry.bands). Local.

        ``outside`` = (metric_out, curvature_out) of a windowed solve adds the pairs with
        bands outside the window (weights.add_far_pairs, theory §5). Weights are formed in
        sub-batches of at most _PAIR_ELEMENTS (k, n, m) entries (bounded memory).
        """
        nk, nb = energies.shape
        delta_out = self.delta_out
        if outside is not None and delta_out is None:
            raise ValueError("out-of-window pairs need delta_out (run.setup.window_terms)")
        step = max(1, _PAIR_ELEMENTS // max(nb * nb, 1))
        for k0 in range(0, nk, step):
            sub = slice(k0, min(k0 + step, nk))
            cells = Cells(self.lattice, energies[sub])
            for i, delta in enumerate(self.delta):
                weights = band_weights(energies[sub], delta, products["M_xx"][sub],
                                       products["M_yy"][sub], products["N_xy"][sub],
                                       float(self.near_tol[i]))
                if outside is not None and delta_out is not None:
                    add_far_pairs(weights, outside[0][sub], outside[1][sub],
                                  float(delta_out[i]))
                deposit_weights(self.moments, cells, self.chan_of[i], weights)
            if self.occupation is not None:
                members = np.zeros((self.occ_bands.size, nb), dtype=bool)
                members[np.arange(self.occ_bands.size), self.occ_bands] = True
                deposit_occupation(self.occupation, cells, members)

    def reduce(self, comm: MPI.Comm) -> ReducedSums:
        """Global moments as cell trees (same on every rank). Collective."""
        cells = self.moments.reduce(comm)  # then the occupations: the order of self.stores
        occupation = None if self.occupation is None else self.occupation.reduce(comm)
        reduced = ReducedSums(self, cells, occupation)
        self.n_cells = reduced.n_cells
        return reduced

    def add_below(self, hall: np.ndarray, temperature: np.ndarray) -> None:
        """Filled bands below a solver window: σ_xy(ε) = −C_below e²/h for every ε in the window
        (theory §5), so the Hall energy moments get −C_below ∫(ε − μ)^a (−f') dε: a = 0 that
        constant, a = 1 zero, a = 2 the constant times π²(k_BT)²/3 (theory §4 full tensors).
        In place on ``hall`` (3, ..., n_T) normalised sums; ``temperature`` the last axis [K].
        """
        if self.chern_below is None:
            return
        const = -self.chern_below / SIGMA_PER_SUM
        kt = K_B_MEV_PER_K * np.asarray(temperature, dtype=float)
        hall[0] += const
        hall[2] += const * math.pi**2 * kt**2 / 3.0


class ReducedSums:
    """The reduced moments of one run (point masses and cell trees, points.py, tree.py) and
    the sums at any (δ, T, μ). Construction is local (identical on every rank)."""

    def __init__(self, sums: TransportSums, cells: tuple, occupation: tuple | None) -> None:
        self.sums = sums
        keys, data, emin, emax = cells
        self.n_k = self._k_points(data)
        self.points = split_points(sums.lattice, keys, data, emin, emax, DENSITY, self.n_k)
        self.tree = CellTree(sums.lattice, *_nonzero(keys, data))
        self.occ_points, self.occ_tree, self.occ_span = [], None, np.zeros((0, 2))
        if occupation is not None:
            keys, data, emin, emax = occupation
            held = data[:, :, 0, 0] != 0  # (cells, bands): the band deposited there
            self.occ_span = np.array([[emin[h].min(), emax[h].max()] if h.any() else
                                      [np.nan, np.nan] for h in held.T])
            self.occ_points = split_points(sums.lattice, keys, data, emin, emax, 0, self.n_k)
            self.occ_tree = CellTree(sums.lattice, *_nonzero(keys, data))
        self.n_cells = sum(j.size for j, _ in self.tree.levels)

    def _k_points(self, data: np.ndarray) -> int:
        """N_k: every k deposits DENSITY_WEIGHT at order 0 on each band (exact after rounding).

        Restart-safe: the count travels with the checkpointed moments.
        """
        s = self.sums
        chans = np.flatnonzero(s.chan_choice == 0)
        total = data[:, chans, DENSITY, 0].real.sum() if data.size else 0.0
        return round(float(total) / (DENSITY_WEIGHT * s.delta.shape[1]))

    def point(self, i_d: int, temps: np.ndarray, mu: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Sums at δ choice ``i_d`` and temperatures ``temps`` (indices, n_T) over ``mu``
        ((n,) for every T, or (n, n_T)): symmetric (3, 4, n, n_T), Hall (3, n, n_T) and
        occupation (n, n_T) summed over bands, and the per-band occupations (n_occ, n, n_T)
        or None (see TransportSums). Point masses are evaluated for the whole block at once,
        the cell trees per temperature. Local."""
        s = self.sums
        kts = K_B_MEV_PER_K * s.temperature[np.atleast_1d(temps)]
        mu = np.asarray(mu, dtype=float)
        grid = np.broadcast_to(mu if mu.ndim == 2 else mu[:, None], (mu.shape[0], kts.size))
        sym, hall = np.zeros((3, 4, *grid.shape)), np.zeros((3, *grid.shape))
        dens, cache = np.zeros(grid.shape), PointCache()
        for ch in np.flatnonzero(s.chan_choice == i_d):
            delta = float(s.chan_delta[ch])
            for j, kt in enumerate(kts):
                a, b, c = evaluate_channel(self.tree, int(ch), delta, grid[:, j], kt)
                sym[..., j] += a
                hall[..., j] += b
                dens[..., j] += c
            a, b, c = evaluate_points(self.points[ch], delta, grid, kts, cache=cache)
            sym += a
            hall += b
            dens += c
        return sym, hall, dens, self.occupations(i_d, kts, grid, cache)

    def occupations(self, i_d: int, kts: np.ndarray, grid: np.ndarray, cache: PointCache
                    ) -> np.ndarray | None:
        """Σ_k n_b(k) of every band kept (n_occ, n_μ, n_T), or None, at k_BT ``kts`` over the
        (n_μ, n_T) ``grid`` (see point; ``cache`` its point tables); bands sharing δ share
        one kernel table (evaluate.evaluate_channel with a tuple of channels). Local."""
        s = self.sums
        if self.occ_tree is None:
            return None
        out = np.zeros((s.occ_bands.size, *grid.shape))
        deltas = s.delta[i_d, s.occ_bands]
        for value in np.unique(deltas):
            rows = np.flatnonzero(deltas == value)
            for j, kt in enumerate(kts):
                out[rows, :, j] = evaluate_channel(self.occ_tree, tuple(int(r) for r in rows),
                                                   float(value), grid[:, j], kt,
                                                   density_only=True)[2]
            for r in rows:
                out[r] += evaluate_points(self.occ_points[r], float(value), grid, kts,
                                          density_only=True, cache=cache)[2]
        return out

    def band_occupation(self, i_d: int, i_t: int, band: int, mu: np.ndarray) -> np.ndarray:
        """Σ_k n_band(k) at ``mu`` (times N_k; divide by n_k for the occupation). Local."""
        s = self.sums
        row = int(np.searchsorted(s.occ_bands, band))
        if self.occ_tree is None or row >= s.occ_bands.size or s.occ_bands[row] != band:
            raise ValueError(f"no occupation moments kept for band {band}")
        kt = K_B_MEV_PER_K * float(s.temperature[i_t])
        mu, delta = np.atleast_1d(np.asarray(mu, dtype=float)), float(s.delta[i_d, band])
        return (evaluate_channel(self.occ_tree, row, delta, mu, kt, density_only=True)[2]
                + evaluate_points(self.occ_points[row], delta, mu, kt, density_only=True)[2][:, 0])


def _nonzero(keys: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leaves that still hold moments (point masses moved out leave empty cells)."""
    keep = np.any(data != 0, axis=tuple(range(1, data.ndim)))
    return keys[keep], data[keep]
