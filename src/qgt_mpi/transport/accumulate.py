"""Transport k-sums for a whole sweep: deposit per batch, reduce once, evaluate, convert."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.parallel import allgather, block_range
from qgt_mpi.transport.binning import BinnedMoments, bin_grid
from qgt_mpi.transport.evaluate import evaluate_band
from qgt_mpi.transport.observables import transport_quantities
from qgt_mpi.transport.weights import band_weights

ETA_DEG = 0.02  # near-degenerate pairs: |z_n − z_m| < η_deg (min δ + π k_B T_min)


class TransportSums:
    """Accumulates the SPEC §4 k-sums of one run for every (μ, δ, T) of the sweep.

    Parameters
    ----------
    temperature : (n_T,) K; mu : (n_mu,) meV; delta : (n_delta, n_bands) meV.
    """

    def __init__(self, temperature: np.ndarray, mu: np.ndarray, delta: np.ndarray) -> None:
        self.temperature = np.asarray(temperature, dtype=float)
        self.mu = np.asarray(mu, dtype=float)
        self.delta = np.asarray(delta, dtype=float)
        kt_min = K_B_MEV_PER_K * float(self.temperature.min())
        self.grid = bin_grid(self.delta, kt_min, self.mu)
        self.near_tol = ETA_DEG * (self.delta.min(axis=1) + math.pi * kt_min)
        self.moments = BinnedMoments(len(self.delta), self.delta.shape[1], *self.grid)

    def add(self, energies: np.ndarray, products: dict[str, np.ndarray]) -> None:
        """Deposit one batch (energies (nk, nb), pair products of geometry.bands). Local."""
        for i, delta in enumerate(self.delta):
            weights = band_weights(
                energies,
                delta,
                products["M_xx"],
                products["M_yy"],
                products["N_xy"],
                float(self.near_tol[i]),
            )
            self.moments.deposit(i, energies, weights)

    def finish(self, comm: MPI.Comm, norm: float, degeneracy: float) -> dict[str, np.ndarray]:
        """Reduce over ranks and evaluate every sweep point; returns SPEC §4 observables.

        Collective over ``comm``. ``norm`` is N_k·A_c (SPEC §1 BZ sums). Sweep points
        (δ, T) are shared out over ranks and gathered, so every rank returns the same arrays.
        """
        reduced = self.moments.reduce(comm)
        n_d, n_t, n_mu = len(self.delta), self.temperature.size, self.mu.size
        start, stop = block_range(n_d * n_t, comm.size, comm.rank)
        local = {}
        for flat in range(start, stop):
            i_d, i_t = divmod(flat, n_t)
            local[flat] = self._point(reduced, i_d, i_t)
        merged: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for part in allgather(comm, local):
            merged.update(part)
        sym = np.zeros((3, 4, n_mu, n_d, n_t))
        hall = np.zeros((n_mu, n_d, n_t))
        for flat, (s, h) in merged.items():
            i_d, i_t = divmod(flat, n_t)
            sym[:, :, :, i_d, i_t] = s / norm
            hall[:, i_d, i_t] = h / norm
        return transport_quantities(sym, hall, self.temperature, degeneracy)

    def _point(self, reduced, i_d: int, i_t: int) -> tuple[np.ndarray, np.ndarray]:
        """Sums at one (δ, T) over all μ, summed over bands."""
        kt = K_B_MEV_PER_K * self.temperature[i_t]
        sym = np.zeros((3, 4, self.mu.size))
        hall = np.zeros(self.mu.size)
        for band, (lo, coeff) in enumerate(reduced):
            s, h = evaluate_band(
                lo, coeff[i_d], self.grid, float(self.delta[i_d, band]), self.mu, kt
            )
            sym += s
            hall += h
        return sym, hall
