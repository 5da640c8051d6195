"""Taylor moments of the per-band weights in adaptive energy cells (the k-sum representation).

Each weight B(k) of band n (SPEC §4, weights.py) is deposited into the leaf cell of
lattice.py that holds ε_n(k), as Taylor moments about the cell centre

    c_{cell,ch,q} += B^(d)(k) s^p / p!,   q = d + p ≤ d + P,  s = ε_n(k) − centre,

so that Σ_k B(k) F^(d)(ε_n(k) − μ) = Σ_cells Σ_q c_q F^(q)(centre − μ) up to the bound
of lattice.truncation_bound (1.0e-13 relative to Σ_k |B| max|F|). Moments are kept per
*channel* (δ-choice, δ value): bands sharing a broadening δ have the same kernel
F(ε − μ − iδ), so their moments are added here and the evaluation does not depend on the
number of bands. Cells are global (functions of the sweep only), so ranks' moments add up
with one reduction over the union of their cells and the result does not depend on the
decomposition. Memory: (occupied leaves) × channels × 5 × N_SLOTS complex numbers.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel.comm import allgather, allreduce_array
from qgt_mpi.transport.lattice import P_CELL, EnergyLattice, encode
from qgt_mpi.transport.weights import COMPONENTS, N_NEAR_ORDERS, BandWeights

P_BIN = P_CELL  # Taylor order of the cell offsets
N_SLOTS = N_NEAR_ORDERS + P_BIN + 1  # kernel derivative orders a cell can carry
NCOMP = len(COMPONENTS)


def taylor_powers(s: np.ndarray, order: int) -> np.ndarray:
    """(len(s), order+1) array of s^p / p!."""
    out = np.empty((s.size, order + 1))
    out[:, 0] = 1.0
    for p in range(1, order + 1):
        out[:, p] = out[:, p - 1] * s / p
    return out


def channels(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadening channels of a (n_delta, n_bands) δ table.

    Returns (channel of each (choice, band), choice of each channel, δ of each channel).
    """
    of = np.zeros(delta.shape, dtype=np.int64)
    choice, value = [], []
    for i, row in enumerate(delta):
        uniq, inv = np.unique(row, return_inverse=True)
        of[i] = len(value) + inv
        choice += [i] * uniq.size
        value += uniq.tolist()
    return of, np.array(choice, dtype=np.int64), np.array(value, dtype=float)


class CellMoments:
    """This rank's moments ``data[cell, channel, component, q]`` over sorted cell ``keys``."""

    def __init__(self, lattice: EnergyLattice, delta: np.ndarray) -> None:
        self.lattice = lattice
        self.chan_of, self.chan_choice, self.chan_delta = channels(np.asarray(delta, float))
        self.keys = np.zeros(0, np.int64)
        self.data = np.zeros((0, self.n_channels, NCOMP, N_SLOTS), complex)

    @property
    def n_channels(self) -> int:
        """Number of broadening channels."""
        return self.chan_delta.size

    def deposit(self, energies: np.ndarray, weights: list[BandWeights]) -> None:
        """Add one batch's weights (one BandWeights per δ choice). Local, no communication."""
        nk, nb = energies.shape
        if nk == 0:
            return
        level, j = self.lattice.leaves(energies)
        s = self.lattice.offsets(energies, level, j)
        ukeys, row = np.unique(encode(level, j), return_inverse=True)
        row = row.reshape(nk, nb)
        batch = np.zeros((ukeys.size, self.n_channels, NCOMP, N_SLOTS), complex)
        pw = taylor_powers(s.ravel(), P_BIN)  # (nk*nb, P+1)
        for i, w in enumerate(weights):
            cell = (row * self.n_channels + self.chan_of[i][None, :]).ravel()
            for comp in range(NCOMP):
                w0 = w.regular[:, :, comp, 0].ravel()
                w1 = w.regular[:, :, comp, 1].ravel()
                for q in range(P_BIN + 2):
                    v = (w0 * pw[:, q] if q <= P_BIN else 0.0) + (w1 * pw[:, q - 1] if q else 0.0)
                    _scatter(batch, cell, comp, q, v)
            self._near(batch, row, s, w, i)
        self._merge(ukeys, batch)

    def _near(self, batch, row, s, w: BandWeights, i: int) -> None:
        """Add near-degenerate series (orders up to N_NEAR_ORDERS) with their offsets."""
        if w.near_k.size == 0:
            return
        kk, nn = w.near_k, w.near_n
        cell = row[kk, nn] * self.n_channels + self.chan_of[i][nn]
        pw = taylor_powers(s[kk, nn], P_BIN)
        for comp in range(NCOMP):
            for q in range(N_SLOTS):
                v = np.zeros(kk.size, complex)
                for d in range(max(0, q - P_BIN), min(q, N_NEAR_ORDERS) + 1):
                    v += w.near[:, comp, d] * pw[:, q - d]
                _scatter(batch, cell, comp, q, v)

    def _merge(self, ukeys: np.ndarray, batch: np.ndarray) -> None:
        """Add a batch's cells into the store, growing it to the union of cells."""
        union = np.union1d(self.keys, ukeys)
        if union.size != self.keys.size:
            grown = np.zeros((union.size, *self.data.shape[1:]), complex)
            grown[np.searchsorted(union, self.keys)] = self.data
            self.keys, self.data = union, grown
        self.data[np.searchsorted(self.keys, ukeys)] += batch

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Add checkpointed global moments to this rank's store (call on one rank only)."""
        self._merge(np.asarray(state["cell_keys"], np.int64), state["cell_moments"])

    def reduce(self, comm: MPI.Comm) -> tuple[np.ndarray, np.ndarray]:
        """Global (keys, moments) over the union of every rank's cells. Collective.

        One allgather of the cell keys, then one sum-reduction of the moments in the
        union layout (ranks with no k-points contribute zeros).
        """
        union = np.unique(np.concatenate(allgather(comm, self.keys)))
        full = np.zeros((union.size, *self.data.shape[1:]), complex)
        full[np.searchsorted(union, self.keys)] = self.data
        return union, allreduce_array(comm, full)


def _scatter(batch: np.ndarray, cell: np.ndarray, comp: int, q: int, v) -> None:
    """batch[cell // nch, cell % nch, comp, q] += v, summed over repeated cells."""
    if np.isscalar(v) or not np.any(v):
        return
    flat = batch.reshape(-1, NCOMP, N_SLOTS)
    n = flat.shape[0]
    flat[:, comp, q] += np.bincount(cell, weights=v.real, minlength=n)
    flat[:, comp, q] += 1j * np.bincount(cell, weights=v.imag, minlength=n)


def moments_state(reduced: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Checkpoint arrays of reduced moments (see :meth:`CellMoments.reduce`)."""
    return {"cell_keys": reduced[0], "cell_moments": reduced[1]}
