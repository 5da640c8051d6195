"""Transport k-sums for a whole sweep: deposit per batch, reduce once, evaluate, convert."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.parallel import allgather, block_range
from qgt_mpi.parallel.errors import CollectiveError, agreed_local, collective, fail_point
from qgt_mpi.transport.binning import BinnedMoments, bin_grid
from qgt_mpi.transport.evaluate import evaluate_band
from qgt_mpi.transport.observables import SIGMA_PER_SUM, transport_quantities
from qgt_mpi.transport.weights import DENSITY, DENSITY_WEIGHT, add_far_pairs, band_weights

EXIT_INTERRUPTED = 3  # status of a run stopped by a signal (cli.py)
MIN_UNITS = 16  # sweep units at least (μ split when there are few (δ, T) points); more cost
# the sharing of kernel anchors between μ (400² Haldane, 281 μ: 0.05 s at 2 units, 1.07 s at 256)
ETA_DEG = 0.02  # near-degenerate pairs: |z_n − z_m| < η_deg (min δ + π k_B T_min)


def k_point_count(reduced: list[tuple[int, np.ndarray]]) -> int:
    """N_k from the reduced moments: every k deposits DENSITY_WEIGHT at order 0 on each band.

    Restart-safe (the count travels with the checkpointed moments) and exact after rounding.
    """
    _lo, coeff = reduced[0]
    return round(float(coeff[0, :, DENSITY, 0].real.sum()) / DENSITY_WEIGHT)


class TransportSums:
    """Accumulates the theory §4 k-sums of one run for every (μ, δ, T) of the sweep.

    Parameters
    ----------
    temperature : (n_T,) K; mu : (n_mu,) meV; delta : (n_delta, n_bands) meV.
    delta_out : (n_delta,) broadening of bands outside a solver window [meV], or None.
    chern_below : total Chern number of the filled bands below a window (their Hall
        response −C_below e²/h, theory §5), or None when excluded.
    """

    def __init__(self, temperature: np.ndarray, mu: np.ndarray, delta: np.ndarray,
                 delta_out: np.ndarray | None = None, chern_below: int | None = None) -> None:
        self.delta_out = None if delta_out is None else np.asarray(delta_out, dtype=float)
        self.chern_below = chern_below
        self.units_done: dict[int, tuple] = {}  # sweep units restored from a checkpoint (rank 0)
        self.units_skip: set[int] = set()  # their indices (every rank)
        self.temperature = np.asarray(temperature, dtype=float)
        self.mu = np.asarray(mu, dtype=float)
        self.delta = np.asarray(delta, dtype=float)
        kt_min = K_B_MEV_PER_K * float(self.temperature.min())
        self.grid = bin_grid(self.delta, kt_min, self.mu)
        self.near_tol = ETA_DEG * (self.delta.min(axis=1) + math.pi * kt_min)
        self.moments = BinnedMoments(len(self.delta), self.delta.shape[1], *self.grid)

    def add(self, energies: np.ndarray, products: dict[str, np.ndarray],
            outside: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Deposit one batch (energies (nk, nb), pair products of geometry.bands). Local.

        ``outside`` = (metric_out, curvature_out) of a windowed solve adds the pairs with
        bands outside the window (weights.add_far_pairs, theory §5).
        """
        for i, delta in enumerate(self.delta):
            weights = band_weights(
                energies,
                delta,
                products["M_xx"],
                products["M_yy"],
                products["N_xy"],
                float(self.near_tol[i]),
            )
            if outside is not None:
                add_far_pairs(weights, *outside, float(self.delta_out[i]))
            self.moments.deposit(i, energies, weights)

    def finish(self, comm: MPI.Comm, norm: float, degeneracy: float, stop=None,
               on_stop=None) -> dict[str, np.ndarray]:
        """Reduce over ranks and evaluate every sweep point; returns theory §4 observables.

        Collective over ``comm``. ``norm`` is N_k·A_c (theory §1 BZ sums). The work units,
        (δ, T) points cut into μ blocks when there are fewer points than ranks, are shared
        out over ranks, evaluated in rounds of one unit per rank (errors and the stop flag
        ``stop`` agreed after every round, so a failure or a signal on one rank stops all
        within one unit's time) and gathered, so every rank returns the same arrays. On a
        stop the finished units go to ``on_stop(units)`` (rank 0; the checkpoint) and
        CollectiveError(status 3) is raised; units restored into ``units_done`` are skipped.
        """
        reduced = self.moments.reduce(comm)
        n_k = k_point_count(reduced)
        n_d, n_t, n_mu = len(self.delta), self.temperature.size, self.mu.size
        units = self._units()
        todo = [u for u in range(len(units)) if u not in self.units_skip]
        mine = todo[comm.rank :: comm.size]
        local: dict = {}
        for r in range(math.ceil(len(todo) / comm.size)):

            def one_unit(r=r) -> dict:
                fail_point(comm, "evaluation")
                return {mine[r]: self._point(reduced, *units[mine[r]])} if r < len(mine) else {}

            local.update(agreed_local(comm, one_unit))  # agree before any exchange
            if stop is not None and any(allgather(comm, bool(stop))):
                self._stopped(comm, local, stop, on_stop)
        local.update(self.units_done if comm.rank == 0 else {})
        sym = np.zeros((3, 4, n_mu, n_d, n_t))
        hall = np.zeros((3, n_mu, n_d, n_t))
        occupation = np.zeros((self.delta.shape[1], n_mu, n_d, n_t))
        for part in allgather(comm, local):
            for u, (s, h, n) in part.items():
                i_d, i_t, mus = units[u]
                sym[:, :, mus, i_d, i_t] = s / norm
                hall[:, mus, i_d, i_t] = h / norm
                occupation[:, mus, i_d, i_t] = n / n_k
        self.add_below(hall)
        return transport_quantities(sym, hall, self.temperature, degeneracy, occupation)

    def add_below(self, hall: np.ndarray) -> None:
        """Filled bands below a solver window: σ_xy(ε) = −C_below e²/h for every ε in the window
        (theory §5), so the Hall energy moments get −C_below ∫(ε − μ)^a (−f') dε: a = 0 that
        constant, a = 1 zero, a = 2 the constant times π²(k_BT)²/3 (theory §4 full tensors).
        In place on ``hall`` (3, n_mu, n_delta, n_T), in units of the normalised sums.
        """
        if self.chern_below is None:
            return
        const = -self.chern_below / SIGMA_PER_SUM
        kt = K_B_MEV_PER_K * self.temperature
        hall[0] += const
        hall[2] += const * math.pi**2 * kt**2 / 3.0

    def _stopped(self, comm: MPI.Comm, local: dict, stop, on_stop) -> None:
        """Hand every rank's finished units to ``on_stop`` (rank 0), then raise status 3."""
        done = {u: v for part in allgather(comm, local) for u, v in part.items()}
        done.update(self.units_done)  # rank 0 holds the restored units
        n_done = len(done) if comm.rank == 0 else len(done) + len(self.units_skip)
        if on_stop is not None:
            with collective(comm):
                if comm.rank == 0:
                    on_stop(done)
        raise CollectiveError(f"interrupted by {stop.name or 'a signal'} during the sweep "
                              f"evaluation ({n_done} of {len(self._units())} units kept "
                              "with the k-pass in the checkpoint); rerun the same command to "
                              "continue", status=EXIT_INTERRUPTED)

    @property
    def n_units(self) -> int:
        """Number of sweep units (see :meth:`_units`)."""
        return len(self._units())

    def _units(self) -> list[tuple[int, int, slice]]:
        """(δ index, T index, μ slice) work units, at least MIN_UNITS when there are enough μ.

        Independent of the number of ranks, so a stopped evaluation resumes on any count.
        """
        n_points = len(self.delta) * self.temperature.size
        n_split = min(self.mu.size, max(1, math.ceil(MIN_UNITS / n_points)))
        edges = [block_range(self.mu.size, n_split, r) for r in range(n_split)]
        return [(i_d, i_t, slice(*e)) for i_d in range(len(self.delta))
                for i_t in range(self.temperature.size) for e in edges]

    def _point(self, reduced, i_d: int, i_t: int, mus: slice | np.ndarray = slice(None)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sums at one (δ, T) over the μ in ``mus`` (a slice of the sweep, or explicit μ
        values): symmetric and Hall summed over bands, occupation per band."""
        kt = K_B_MEV_PER_K * self.temperature[i_t]
        mu = self.mu[mus] if isinstance(mus, slice) else np.asarray(mus, dtype=float)
        sym = np.zeros((3, 4, mu.size))
        hall = np.zeros((3, mu.size))
        occupation = np.zeros((len(reduced), mu.size))
        for band, (lo, coeff) in enumerate(reduced):
            s, h, n = evaluate_band(lo, coeff[i_d], self.grid, float(self.delta[i_d, band]),
                                    mu, kt)
            sym += s
            hall += h
            occupation[band] = n
        return sym, hall, occupation
