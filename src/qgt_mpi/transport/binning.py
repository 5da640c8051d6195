"""Energy-binned Taylor moments of the per-band weights (the k-sum representation).

Why this representation (theory §4: the k-pass and the sweep must not be multiplied together):
the kernels depend on k only through ε_n(k), and on the line Im ζ = −δ_n they are analytic
within a radius R = δ_n + π k_B T of any point (the nearest poles of the digamma family are
the Matsubara frequencies). Each weight B(k) is therefore deposited into the bin j of width
h ≤ η R that holds ε_n(k), as Taylor moments

    c_{j,q} += B^(d)(k) s^p / p!,   q = d + p,  s = ε_n(k) − j h,  |s| ≤ h/2,

so that Σ_k B(k) F^(d)(ε_n(k) − μ) = Σ_j Σ_q c_{j,q} F^(q)(j h − μ) up to a truncation error
bounded by (h / 2R)^(P+1) / (1 − h/2R) relative to Σ_k |B F| (Cauchy's estimate; with
η = 0.05 and P = 7 that is 1.5e-13). The sweep then costs (occupied bins) × (sweep points)
instead of (k-points) × (sweep points); flat bands occupy one bin each and are exact.
Bins are global (index j = rint(ε/h) on every rank), so the moments of all ranks add up
with one reduction and the result does not depend on the decomposition.
"""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel.comm import allreduce_array, allreduce_max, allreduce_min
from qgt_mpi.parallel.errors import agreed_local, fail_point
from qgt_mpi.transport.weights import COMPONENTS, N_NEAR_ORDERS, BandWeights

ETA_BIN = 0.05  # bin width in units of the smallest analyticity radius R of the sweep
P_BIN = 7  # Taylor order of the bin offsets
N_SLOTS = N_NEAR_ORDERS + P_BIN + 1  # kernel derivative orders a bin can carry
NCOMP = len(COMPONENTS)


def taylor_powers(s: np.ndarray, order: int) -> np.ndarray:
    """(len(s), order+1) array of s^p / p!."""
    out = np.empty((s.size, order + 1))
    out[:, 0] = 1.0
    for p in range(1, order + 1):
        out[:, p] = out[:, p - 1] * s / p
    return out


class BinnedMoments:
    """Growing per-band store of Taylor moments ``c[δ, j, component, q]`` on this rank."""

    def __init__(self, n_delta: int, n_bands: int, width: float, origin: float = 0.0) -> None:
        self.width = width
        self.origin = origin
        self.n_delta = n_delta
        self.lo = [0] * n_bands
        self.data = [np.zeros((n_delta, 0, NCOMP, N_SLOTS), complex) for _ in range(n_bands)]

    def _ensure(self, band: int, jmin: int, jmax: int) -> None:
        """Grow band's bin range to cover [jmin, jmax]."""
        cur = self.data[band]
        lo, hi = self.lo[band], self.lo[band] + cur.shape[1] - 1
        if cur.shape[1] and jmin >= lo and jmax <= hi:
            return
        new_lo = min(jmin, lo) if cur.shape[1] else jmin
        new_hi = max(jmax, hi) if cur.shape[1] else jmax
        grown = np.zeros((self.n_delta, new_hi - new_lo + 1, NCOMP, N_SLOTS), complex)
        if cur.shape[1]:
            grown[:, lo - new_lo : lo - new_lo + cur.shape[1]] = cur
        self.data[band], self.lo[band] = grown, new_lo

    def deposit(self, i_delta: int, energies: np.ndarray, weights: BandWeights) -> None:
        """Add one batch's weights for broadening choice ``i_delta``. Local, no communication."""
        nk, nb = energies.shape
        if nk == 0:
            return
        shifted = energies - self.origin
        j = np.rint(shifted / self.width).astype(np.int64)
        s = shifted - j * self.width
        for band in range(nb):
            self._ensure(band, int(j[:, band].min()), int(j[:, band].max()))
            pw = taylor_powers(s[:, band], P_BIN)[:, None, :]
            # Orders 0 and 1 only on this path: slots 0..P_BIN+1 (the rest stay untouched).
            contrib = np.empty((nk, NCOMP, P_BIN + 2), complex)
            contrib[:, :, : P_BIN + 1] = weights.regular[:, band, :, 0, None] * pw
            contrib[:, :, P_BIN + 1] = 0.0
            contrib[:, :, 1:] += weights.regular[:, band, :, 1, None] * pw
            self._add(i_delta, band, j[:, band], contrib)
        self._deposit_near(i_delta, j, s, weights)

    def _deposit_near(self, i_delta: int, j: np.ndarray, s: np.ndarray, w: BandWeights) -> None:
        """Add the near-degenerate series (orders up to N_NEAR_ORDERS) with their offsets."""
        for band in np.unique(w.near_n):
            sel = w.near_n == band
            kk = w.near_k[sel]
            pw = taylor_powers(s[kk, band], P_BIN)
            contrib = np.zeros((kk.size, NCOMP, N_SLOTS), complex)
            for d in range(N_NEAR_ORDERS + 1):
                contrib[:, :, d : d + P_BIN + 1] += w.near[sel, :, d, None] * pw[:, None, :]
            self._add(i_delta, int(band), j[kk, band], contrib)

    def _add(self, i_delta: int, band: int, j: np.ndarray, contrib: np.ndarray) -> None:
        """Scatter-add rows of ``contrib`` (nk, NCOMP, used ≤ N_SLOTS) into bins ``j``.

        One bincount per real/imaginary part over flat (bin, component, slot) indices.
        """
        row = (j - self.lo[band]).astype(np.int64)
        first, last = int(row.min()), int(row.max())
        store = self.data[band][i_delta, first : last + 1]
        used = contrib.shape[2]
        cols = (np.arange(NCOMP)[:, None] * N_SLOTS + np.arange(used)[None, :]).ravel()
        flat = ((row - first)[:, None] * (NCOMP * N_SLOTS) + cols[None, :]).ravel()
        values = contrib.reshape(len(j), NCOMP * used).ravel()
        total = np.bincount(flat, weights=values.real, minlength=store.size)
        total = total + 1j * np.bincount(flat, weights=values.imag, minlength=store.size)
        store += total.reshape(store.shape)

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Add checkpointed global moments to this rank's store (call on one rank only)."""
        for band, lo in enumerate(state["moments_lo"]):
            data = state[f"moments_band{band}"]
            if data.shape[1] == 0:
                continue
            self._ensure(band, int(lo), int(lo) + data.shape[1] - 1)
            start = int(lo) - self.lo[band]
            self.data[band][:, start : start + data.shape[1]] += data

    def reduce(self, comm: MPI.Comm) -> list[tuple[int, np.ndarray]]:
        """Global moments per band as ``(lo, c)`` with c of shape (n_delta, nbins, 5, slots).

        Collective over ``comm``: bin ranges are agreed with MIN/MAX reductions, then one
        sum-reduction per band. Ranks that own no k-points contribute zeros.
        """
        out = []
        for band, local in enumerate(self.data):
            has = local.shape[1] > 0
            lo = allreduce_min(comm, self.lo[band] if has else np.iinfo(np.int64).max)
            top = self.lo[band] + local.shape[1] - 1
            hi = allreduce_max(comm, top if has else np.iinfo(np.int64).min)
            full = agreed_local(comm, lambda b=band, lo=lo, hi=hi: self._padded(comm, b, lo, hi))
            out.append((lo, allreduce_array(comm, full)))
        return out

    def _padded(self, comm: MPI.Comm, band: int, lo: int, hi: int) -> np.ndarray:
        """This rank's moments of ``band`` placed in the global bin range [lo, hi]. Local."""
        fail_point(comm, "reduction")
        local = self.data[band]
        full = np.zeros((self.n_delta, hi - lo + 1, NCOMP, N_SLOTS), complex)
        if local.shape[1] > 0:
            full[:, self.lo[band] - lo : self.lo[band] - lo + local.shape[1]] = local
        return full


def moments_state(reduced: list[tuple[int, np.ndarray]]) -> dict[str, np.ndarray]:
    """Checkpoint arrays of reduced moments (see :meth:`BinnedMoments.reduce`)."""
    state = {"moments_lo": np.array([lo for lo, _ in reduced], dtype=np.int64)}
    for band, (_, data) in enumerate(reduced):
        state[f"moments_band{band}"] = data
    return state


def bin_grid(delta: np.ndarray, kt_min: float, mu: np.ndarray) -> tuple[float, float]:
    """Bin width and origin for a sweep: (h, e0) in meV.

    h ≤ η·min(δ + π k_B T) (theory §3 analyticity radius). The origin is the first chemical
    potential and, for an evenly spaced μ sweep, h divides the μ step, so every μ falls on a
    bin centre and the sweep can reuse kernel values at shared anchors (see evaluate.py).
    """
    h_max = ETA_BIN * (float(np.min(delta)) + math.pi * kt_min)
    mu = np.asarray(mu, dtype=float)
    steps = np.diff(mu)
    if steps.size and steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-10, atol=0):
        return steps[0] / math.ceil(steps[0] / h_max), float(mu[0])
    return h_max, float(mu[0])
