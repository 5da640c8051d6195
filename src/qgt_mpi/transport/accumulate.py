"""Transport k-sums for a whole sweep: deposit per batch, reduce once, evaluate, convert."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.parallel import allgather, block_range
from qgt_mpi.transport.binning import CellMoments
from qgt_mpi.transport.evaluate import evaluate_channel
from qgt_mpi.transport.lattice import EnergyLattice
from qgt_mpi.transport.observables import transport_quantities
from qgt_mpi.transport.tree import CellTree
from qgt_mpi.transport.weights import band_weights

_PAIR_ELEMENTS = 1 << 21  # k-points × band pairs per weight sub-batch (bounded memory)

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
        self.lattice = EnergyLattice(self.mu, float(self.delta.min()) + math.pi * kt_min)
        self.grid = (self.lattice.h, self.lattice.e0)
        self.near_tol = ETA_DEG * (self.delta.min(axis=1) + math.pi * kt_min)
        self.moments = CellMoments(self.lattice, self.delta)

    def add(self, energies: np.ndarray, products: dict[str, np.ndarray]) -> None:
        """Deposit one batch (energies (nk, nb), pair products of geometry.bands). Local.

        Weights are formed in sub-batches of at most _PAIR_ELEMENTS (k, n, m) entries, so
        100 bands (10⁴ pairs per k-point) stay in bounded memory.
        """
        nk, nb = energies.shape
        step = max(1, _PAIR_ELEMENTS // max(nb * nb, 1))
        for k0 in range(0, nk, step):
            sub = slice(k0, min(k0 + step, nk))
            weights = [band_weights(energies[sub], delta, products["M_xx"][sub],
                                    products["M_yy"][sub], products["N_xy"][sub],
                                    float(self.near_tol[i]))
                       for i, delta in enumerate(self.delta)]
            self.moments.deposit(energies[sub], weights)

    def finish(self, comm: MPI.Comm, norm: float, degeneracy: float) -> dict[str, np.ndarray]:
        """Reduce over ranks and evaluate every sweep point; returns SPEC §4 observables.

        Collective over ``comm``. ``norm`` is N_k·A_c (SPEC §1 BZ sums). The work units,
        (δ, T) points cut into μ blocks when there are fewer points than ranks, are shared
        out over ranks and gathered, so every rank returns the same arrays.
        """
        reduced = self.tree(self.moments.reduce(comm))
        n_d, n_t, n_mu = len(self.delta), self.temperature.size, self.mu.size
        units = self._units(comm.size)
        start, stop = block_range(len(units), comm.size, comm.rank)
        local = {u: self._point(reduced, *units[u]) for u in range(start, stop)}
        sym = np.zeros((3, 4, n_mu, n_d, n_t))
        hall = np.zeros((n_mu, n_d, n_t))
        for part in allgather(comm, local):
            for u, (s, h) in part.items():
                i_d, i_t, mus = units[u]
                sym[:, :, mus, i_d, i_t] = s / norm
                hall[mus, i_d, i_t] = h / norm
        return transport_quantities(sym, hall, self.temperature, degeneracy)

    def _units(self, ranks: int) -> list[tuple[int, int, slice]]:
        """(δ index, T index, μ slice) work units: at least ``ranks`` of them when possible."""
        n_points = len(self.delta) * self.temperature.size
        n_split = min(self.mu.size, max(1, math.ceil(ranks / n_points)))
        edges = [block_range(self.mu.size, n_split, r) for r in range(n_split)]
        return [(i_d, i_t, slice(*e)) for i_d in range(len(self.delta))
                for i_t in range(self.temperature.size) for e in edges]

    def tree(self, reduced: tuple[np.ndarray, np.ndarray]) -> CellTree:
        """The cell tree of reduced moments (identical on every rank). Local."""
        return CellTree(self.lattice, *reduced)

    def _point(self, tree: CellTree, i_d: int, i_t: int, mus: slice = slice(None)
               ) -> tuple[np.ndarray, np.ndarray]:
        """Sums at one (δ, T) over the μ in ``mus``, summed over the channels of δ choice i_d."""
        kt = K_B_MEV_PER_K * self.temperature[i_t]
        mu = self.mu[mus]
        sym = np.zeros((3, 4, mu.size))
        hall = np.zeros(mu.size)
        store = self.moments
        for ch in np.flatnonzero(store.chan_choice == i_d):
            out = evaluate_channel(tree, int(ch), float(store.chan_delta[ch]), mu, kt)
            sym += out["K"]
            hall += out["Lambda"][0, 0]
        return sym, hall
