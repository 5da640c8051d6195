"""Taylor moments of the per-band weights in adaptive energy cells (the k-sum representation).

Each weight B(k) of band n (theory §4, weights.py) is deposited into the leaf cell of
energy_cells.py that holds ε_n(k), as Taylor moments about the cell centre

    c_{cell,ch,q} += B^(d)(k) s^p / p!,   q = d + p,  s = ε_n(k) − centre,

so that Σ_k B(k) F^(d)(ε_n(k) − μ) = Σ_cells Σ_q c_q F^(q)(centre − μ) up to the bound of
lattice.truncation_bound (1.0e-13 relative to Σ_k |B| max|F|). Moments are kept per
*channel*, one per (δ choice, δ value): bands sharing a broadening have the same kernels
F(ε − μ − iδ), so their moments add here and the evaluation cost does not depend on the
number of bands (theory §4.3). The per-band occupations that the ``filling`` output and the
fixed-filling solver need are a second, real-valued store (:class:`CellStore` with one
component, the DENSITY weight) whose channels are single bands or band groups.
Cells are global (functions of the sweep only), so ranks' moments add up with one reduction
over the union of their cells and the result does not depend on the decomposition.
Memory: (occupied leaves) × channels × components × slots numbers.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qgt_mpi.parallel.comm import allreduce_array, allunion
from qgt_mpi.parallel.errors import agreed_local, fail_point
from qgt_mpi.transport.energy_cells import P_CELL, EnergyLattice, encode
from qgt_mpi.transport.weights import COMPONENTS, DENSITY_WEIGHT, N_NEAR_ORDERS, BandWeights

N_SLOTS = N_NEAR_ORDERS + P_CELL + 1  # kernel derivative orders a cell can carry
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
    choice: list[int] = []
    value: list[float] = []
    for i, row in enumerate(delta):
        uniq, inv = np.unique(row, return_inverse=True)
        of[i] = len(value) + inv
        choice += [i] * uniq.size
        value += uniq.tolist()
    return of, np.array(choice, dtype=np.int64), np.array(value, dtype=float)


class Cells:
    """Leaf cells of one batch of energies (nk, nb): sorted keys, row of each energy, offsets,
    and the lowest and highest energy of each cell (points.py)."""

    def __init__(self, lattice: EnergyLattice, energies: np.ndarray) -> None:
        level, j = lattice.leaves(energies)
        self.offsets = lattice.offsets(energies, level, j)
        self.keys, row = np.unique(encode(level, j), return_inverse=True)
        self.row = row.reshape(energies.shape)
        self.powers = taylor_powers(self.offsets.ravel(), P_CELL)  # (nk*nb, P+1)
        order = np.argsort(row.ravel(), kind="stable")  # energies grouped by cell
        starts = np.searchsorted(row.ravel()[order], np.arange(self.keys.size))
        grouped = np.asarray(energies, dtype=float).ravel()[order]
        self.emin = np.minimum.reduceat(grouped, starts) if grouped.size else grouped
        self.emax = np.maximum.reduceat(grouped, starts) if grouped.size else grouped


class CellStore:
    """This rank's moments ``data[cell, channel, component, q]`` over sorted cell ``keys``."""

    def __init__(self, n_channels: int, n_comp: int, slots: int, dtype=complex) -> None:
        self.shape = (n_channels, n_comp, slots)
        self.keys = np.zeros(0, np.int64)
        self.data = np.zeros((0, *self.shape), dtype)
        self.emin, self.emax = np.zeros(0), np.zeros(0)  # energy range of each cell

    def add(self, cells: Cells, flat_rows: np.ndarray, values: np.ndarray) -> None:
        """Scatter-add ``values`` (n, channels·comp·slots layout given by ``flat_rows``).

        ``flat_rows`` are indices into the batch array (batch cells × channel × comp × slot),
        one bincount per real/imaginary part. Local.
        """
        size = cells.keys.size * int(np.prod(self.shape))
        total = np.bincount(flat_rows, weights=values.real, minlength=size)
        if np.iscomplexobj(self.data):
            total = total + 1j * np.bincount(flat_rows, weights=values.imag, minlength=size)
        self.merge(cells.keys, total.reshape(cells.keys.size, *self.shape), cells.emin,
                   cells.emax)

    def merge(self, ukeys: np.ndarray, batch: np.ndarray, emin: np.ndarray,
              emax: np.ndarray) -> None:
        """Add a batch's cells into the store, growing it to the union of cells."""
        if ukeys.size == 0:
            return
        union = np.union1d(self.keys, ukeys)
        if union.size != self.keys.size:
            where = np.searchsorted(union, self.keys)
            grown = np.zeros((union.size, *self.shape), self.data.dtype)
            grown[where] = self.data
            lo, hi = np.full(union.size, np.inf), np.full(union.size, -np.inf)
            lo[where], hi[where] = self.emin, self.emax
            self.keys, self.data, self.emin, self.emax = union, grown, lo, hi
        rows = np.searchsorted(self.keys, ukeys)
        self.data[rows] += batch
        self.emin[rows] = np.minimum(self.emin[rows], emin)
        self.emax[rows] = np.maximum(self.emax[rows], emax)

    def reduce(self, comm: MPI.Comm) -> tuple[np.ndarray, ...]:
        """Global (keys, moments, emin, emax) over the union of every rank's cells. Collective.

        The union of every rank's cell keys (parallel.comm.allunion: a tree merge, no
        P-sized gather), then one sum-reduction in the union layout (ranks with no k-points
        contribute zeros) and a min/max reduction of the energy ranges.
        """
        union = allunion(comm, self.keys)

        def padded() -> tuple[np.ndarray, np.ndarray]:
            fail_point(comm, "reduction")
            where = np.searchsorted(union, self.keys)
            full = np.zeros((union.size, *self.shape), self.data.dtype)
            full[where] = self.data
            span = np.full((2, union.size), np.inf)
            span[0, where], span[1, where] = self.emin, -self.emax
            return full, span

        full, span = agreed_local(comm, padded)
        span = allreduce_array(comm, span, MPI.MIN)
        return union, allreduce_array(comm, full), span[0], -span[1]


def deposit_weights(store: CellStore, cells: Cells, chan: np.ndarray,
                    weights: BandWeights) -> None:
    """Add one δ choice's weights of a batch; ``chan`` (nb,) the channel of each band. Local.

    Orders 0 and 1 of the regular weights fill slots 0..P+1; the near-degenerate series
    (weights.py, orders up to N_NEAR_ORDERS) fill the rest with their offsets.
    """
    nk, nb = cells.row.shape
    n_ch, n_comp, slots = store.shape
    cell = (cells.row * n_ch + chan[None, :]).ravel()  # (nk*nb,)
    batch = _cell_sums(cell, cells.keys.size * n_ch, weights.regular.reshape(nk * nb, n_comp, 2),
                       cells.powers, slots)
    store.merge(cells.keys, batch.reshape(cells.keys.size, *store.shape), cells.emin,
                cells.emax)
    if weights.near_k.size:
        kk, nn = weights.near_k, weights.near_n
        pw = cells.powers.reshape(nk, nb, -1)[kk, nn]
        near = np.zeros((kk.size, n_comp, slots), complex)
        for d in range(N_NEAR_ORDERS + 1):
            near[:, :, d : d + P_CELL + 1] += weights.near[:, :, d, None] * pw[:, None, :]
        cell = cells.row[kk, nn] * n_ch + chan[nn]
        cols = np.arange(n_comp * slots)
        store.add(cells, (cell[:, None] * (n_comp * slots) + cols[None, :]).ravel(),
                  near.ravel())


def deposit_occupation(store: CellStore, cells: Cells, members: np.ndarray) -> None:
    """Add the DENSITY weight of every (k, band) to the occupation channels. Local.

    ``members`` (n_channels, nb) bool: which bands each channel sums (one band, or a group).
    """
    n_ch, _, slots = store.shape
    nk, nb = cells.row.shape
    ch, band = np.nonzero(members)
    cell = (cells.row[:, band] * n_ch + ch[None, :]).ravel()  # (nk * n_pairs,)
    pw = cells.powers.reshape(nk, nb, -1)[:, band].reshape(cell.size, -1)
    weight = np.zeros((cell.size, 1, 2))
    weight[:, 0, 0] = DENSITY_WEIGHT
    batch = _cell_sums(cell, cells.keys.size * n_ch, weight, pw, slots)
    store.merge(cells.keys, batch.real.reshape(cells.keys.size, *store.shape), cells.emin,
                cells.emax)


def _cell_sums(cell: np.ndarray, n_rows: int, w: np.ndarray, powers: np.ndarray,
               slots: int) -> np.ndarray:
    """Σ_i w[i, c, d] s_i^p/p! into slot d + p of row ``cell[i]``; (n_rows, n_comp, slots).

    One sparse (rows × entries) @ (entries × powers) product per component and order d
    (d = 0, 1: the regular weights), so no (entries × component × slot) temporaries.
    """
    order = np.argsort(cell, kind="stable")
    indptr = np.searchsorted(cell[order], np.arange(n_rows + 1))
    w = w[order]
    out = np.zeros((n_rows, w.shape[1], slots), complex)
    for c in range(w.shape[1]):
        for d in (0, 1):
            if np.any(w[:, c, d]):
                mat = sp.csr_matrix((w[:, c, d], order, indptr), shape=(n_rows, cell.size))
                out[:, c, d : d + P_CELL + 1] += mat @ powers
    return out


def moments_state(stores: dict[str, CellStore | None], comm: MPI.Comm) -> dict[str, np.ndarray]:
    """Checkpoint arrays of the reduced stores (collective: reduces each store)."""
    state = {}
    for name, store in stores.items():
        if store is not None:
            keys, data, emin, emax = store.reduce(comm)
            state.update({f"{name}_keys": keys, f"{name}_moments": data,
                          f"{name}_range": np.stack([emin, emax])})
    return state


def restore_state(stores: dict[str, CellStore | None], state: dict[str, np.ndarray]) -> None:
    """Add checkpointed global moments to this rank's stores (call on one rank only)."""
    for name, store in stores.items():
        if store is not None and f"{name}_keys" in state:
            store.merge(np.asarray(state[f"{name}_keys"], np.int64), state[f"{name}_moments"],
                        *state[f"{name}_range"])
