"""Transport k-sums for a whole sweep: deposit per batch, reduce once, evaluate, convert."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.transport.binning import CellMoments
from qgt_mpi.transport.evaluate import evaluate_channel
from qgt_mpi.transport.lattice import EnergyLattice
from qgt_mpi.transport.observables import transport_quantities
from qgt_mpi.transport.stream import MemorySink, run_units, sweep_units
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
        self.sweep_done: np.ndarray | None = None  # units evaluated (restored on restart)
        self.n_cells = 0
        self.evaluate_seconds = 0.0

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

    def finish(self, comm: MPI.Comm, norm: float, degeneracy: float, sink=None,
               log: logging.Logger | None = None, percent: float = 10.0, stop=None,
               on_stop=None, due=None) -> dict[str, np.ndarray] | None:
        """Reduce over ranks and evaluate every sweep point (SPEC §4 observables). Collective.

        ``norm`` is N_k·A_c (SPEC §1 BZ sums). Units still to do (``self.sweep_done``
        False) are evaluated in rounds (stream.py) into ``sink``; with no sink they are
        gathered in memory and returned (same arrays on every rank), else None.
        """
        t0 = time.perf_counter()
        tree = self.tree(self.moments.reduce(comm))
        self.n_cells = sum(j.size for j, _ in tree.levels)
        units = self.units()
        if self.sweep_done is None:
            self.sweep_done = np.zeros(len(units), dtype=bool)
        memory = sink is None
        if memory:
            sink = MemorySink((self.mu.size, len(self.delta), self.temperature.size))
        todo = [u for u in range(len(units)) if not self.sweep_done[u]]
        run_units(comm, lambda unit: self._unit(tree, unit, norm, degeneracy), units, todo,
                  sink, log or logging.getLogger("qgt_mpi"), percent, stop, on_stop, due)
        self.sweep_done[:] = True
        self.evaluate_seconds = time.perf_counter() - t0
        return sink.result(comm) if memory else None

    def units(self) -> list[tuple[int, int, slice]]:
        """Work units of the sweep (stream.sweep_units)."""
        return sweep_units(self.mu.size, len(self.delta), self.temperature.size)

    def _unit(self, tree: CellTree, unit, norm: float, degeneracy: float
              ) -> dict[str, np.ndarray]:
        """Observables of one unit (local); refuses non-finite σ."""
        i_d, i_t, mus = unit
        sym, hall = self._point(tree, i_d, i_t, mus)
        out = transport_quantities(sym[..., None] / norm, hall[..., None] / norm,
                                   self.temperature[i_t : i_t + 1], degeneracy)
        for key in ("sigma_xx", "sigma_xy"):
            if not np.all(np.isfinite(out[key])):
                raise FloatingPointError(f"non-finite {key} after evaluation of the kernels")
        return {k: v[:, 0] for k, v in out.items()}

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
