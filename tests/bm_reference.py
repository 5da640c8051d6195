"""The Bistritzer–MacDonald model as implemented before the continuum builder (issue 20).

Kept only as the reference the preset `bm_continuum` is compared to (tests/test_continuum.py):
H(k) and ∂H/∂k must agree to 1e-12. Do not edit: it is the frozen old implementation.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from qgt_mpi.models.sparse import SparseModel

A_GRAPHENE = 0.246  # nm (theory §2.5)
HBAR_V = 594.4  # meV·nm


def k_theta(theta_deg: float, a: float = A_GRAPHENE) -> float:
    """k_θ = 2 k_D sin(θ/2), k_D = 4π/(3a) [1/nm] (theory §2.5)."""
    return 2.0 * (4.0 * math.pi / (3.0 * a)) * math.sin(math.radians(theta_deg) / 2.0)


def theta_from_alpha(alpha: float, w1: float, hbar_v: float = HBAR_V) -> float:
    """Twist angle (degrees) with α = w1/(ħv k_θ) at coupling w1 (meV)."""
    s = (w1 / (alpha * hbar_v)) / (2.0 * 4.0 * math.pi / (3.0 * A_GRAPHENE))
    if not 0.0 < s < 1.0:
        raise ValueError(f"alpha = {alpha} with w1 = {w1} meV gives no twist angle")
    return math.degrees(2.0 * math.asin(s))


def hex_shells(shells: int) -> np.ndarray:
    """Integer pairs (n1, n2) with (|n1| + |n2| + |n1 + n2|)/2 ≤ shells; (1 + 3s(s+1), 2)."""
    r = np.arange(-shells, shells + 1)
    n1, n2 = (x.ravel() for x in np.meshgrid(r, r, indexing="ij"))
    keep = (np.abs(n1) + np.abs(n2) + np.abs(n1 + n2)) <= 2 * shells
    return np.column_stack([n1[keep], n2[keep]])


def shifted_index(gvec: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Index of G + n1 b1 + n2 b2 in ``gvec`` for every G, −1 outside the cutoff (vectorised)."""
    span = int(np.abs(gvec).max()) + max(abs(n1), abs(n2)) + 1
    table = np.full((2 * span + 1, 2 * span + 1), -1, dtype=np.int64)
    table[gvec[:, 0] + span, gvec[:, 1] + span] = np.arange(len(gvec))
    return table[gvec[:, 0] + n1 + span, gvec[:, 1] + n2 + span]


def _check(theta, alpha, w1, hbar_v, shells, valley) -> tuple[float, int, int]:
    """Validate the parameters; return (theta in degrees, shells, valley)."""
    given = [x is not None for x in (theta, alpha)]
    if sum(given) != 1:
        raise ValueError("bm_continuum needs exactly one of 'theta' (degrees) or 'alpha'")
    if not hbar_v > 0 or not math.isfinite(hbar_v):
        raise ValueError(f"hbar_v must be > 0 meV·nm, got {hbar_v}")
    if float(shells) != int(shells) or int(shells) < 1:
        raise ValueError(f"shells must be an integer >= 1, got {shells}")
    if valley not in (1, -1, 1.0, -1.0):
        raise ValueError(f"valley must be 1 or -1, got {valley}")
    if given[0]:
        if not 0.0 < float(theta) < 180.0:
            raise ValueError(f"theta must be in (0, 180) degrees, got {theta}")
        return float(theta), int(shells), int(valley)
    if not float(alpha) > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return theta_from_alpha(float(alpha), w1, hbar_v), int(shells), int(valley)


class BMReference(SparseModel):
    """One valley of the BM model as a sparse, k-affine model (theory §2.5); see the module doc.

    Parameters
    ----------
    theta : twist angle (degrees), or None when ``alpha`` is given.
    alpha : chiral coupling α = w1/(ħv k_θ); θ then follows from w1 and ħv.
    w0, w1 : AA and AB interlayer couplings (meV). hbar_v : ħv (meV·nm).
    shells : plane-wave cutoff in hexagonal shells of the moiré reciprocal lattice.
    valley : +1 or −1. mass : sublattice mass (meV), +mass/2 on A, −mass/2 on B, both layers.

    Raises
    ------
    ValueError for inconsistent or out-of-range parameters.
    """

    _h0: np.ndarray  # (nnz,) H(k) = H0 + k_x Hx + k_y Hy on the pattern (_assemble)
    _hx: np.ndarray
    _hy: np.ndarray

    def __init__(self, theta: float | None = None, alpha: float | None = None,
                 w0: float = 88.0, w1: float = 110.0, hbar_v: float = HBAR_V,
                 shells: float = 3, valley: float = 1, mass: float = 0.0) -> None:
        self.theta, self.shells, self.valley = _check(theta, alpha, w1, hbar_v, shells, valley)
        self.w0, self.w1, self.hbar_v, self.mass = float(w0), float(w1), float(hbar_v), float(mass)
        self.k_theta = k_theta(self.theta)
        self.alpha = self.w1 / (self.hbar_v * self.k_theta)
        s3 = math.sqrt(3.0)
        self.q = self.k_theta * np.array([[0.0, -1.0], [s3 / 2, 0.5], [-s3 / 2, 0.5]])
        self.b = np.array([self.q[1] - self.q[0], self.q[2] - self.q[0]])
        self.lattice = 2.0 * np.pi * np.linalg.inv(self.b).T
        self.gvec = hex_shells(self.shells)
        self.positions = np.zeros((4 * len(self.gvec), 2))
        self._assemble()
        if self.valley == -1:  # H_−(k) = H_+(2M − k)*, 2M = b1 + b2
            two_m = self.b[0] + self.b[1]
            self._h0 = np.conj(self._h0 + two_m[0] * self._hx + two_m[1] * self._hy)
            self._hx, self._hy = -np.conj(self._hx), -np.conj(self._hy)
        self._finish_pattern()
        sign = np.where(np.arange(self.norb) % 2 == 0, 1.0, -1.0)
        layer = np.where(np.arange(self.norb) < self.norb // 2, 1.0, -1.0)
        self.operators = {"sublattice": sp.diags(sign).tocsr(), "layer": sp.diags(layer).tocsr()}
        # chiral limit (w0 = 0): σ_z anticommutes with the kinetic and AB terms, so the flat
        # bands' degenerate pair is resolved into its sublattice-polarised states (theory §5.7)
        self.resolve_default = "sublattice" if self.w0 == 0.0 else None
        self.info = {"kind": "bm_continuum", "length_unit": "nm", "theta": self.theta,
                     "alpha": self.alpha,
                     "w0": self.w0, "w1": self.w1, "hbar_v": self.hbar_v, "shells": self.shells,
                     "valley": self.valley, "mass": self.mass, "k_theta": self.k_theta,
                     "moire_length": 4.0 * math.pi / (3.0 * self.k_theta)}

    def _assemble(self) -> None:
        """Pattern (CSR order) and the value arrays H0, Hx, Hy of valley +1."""
        ng, hv = len(self.gvec), self.hbar_v
        site = self.gvec @ self.b  # (ng, 2)
        p0 = np.concatenate([site + self.q[0], site + 2 * self.q[0]])  # p − k per site
        sites = np.arange(2 * ng)
        a_idx, b_idx = 2 * sites, 2 * sites + 1
        m2 = np.full(2 * ng, self.mass / 2)
        entries = [  # (row, col, H0, Hx, Hy): Dirac blocks ħv σ·(k + p0) + (m/2) σz
            (a_idx, a_idx, m2 + 0j, 0 * m2, 0 * m2), (b_idx, b_idx, -m2 + 0j, 0 * m2, 0 * m2),
            (a_idx, b_idx, hv * (p0[:, 0] - 1j * p0[:, 1]), hv + 0 * m2, -1j * hv + 0 * m2),
            (b_idx, a_idx, hv * (p0[:, 0] + 1j * p0[:, 1]), hv + 0 * m2, 1j * hv + 0 * m2)]
        shifts = [(0, 0), (1, 0), (0, 1)]  # G' − G for q1, q2, q3
        for j, (s1, s2) in enumerate(shifts):  # three couplings: a fixed loop, not over orbitals
            phi = 2.0 * math.pi * j / 3.0
            tj = np.array([[self.w0, self.w1 * np.exp(-1j * phi)],
                           [self.w1 * np.exp(1j * phi), self.w0]])
            target = shifted_index(self.gvec, s1, s2)
            g1 = np.flatnonzero(target >= 0)
            g2 = ng + target[g1]
            for s, t in ((0, 0), (0, 1), (1, 0), (1, 1)):
                zero = np.zeros(g1.size, complex)
                entries.append((2 * g1 + s, 2 * g2 + t, tj[s, t] + zero, zero, zero))
                entries.append((2 * g2 + t, 2 * g1 + s, np.conj(tj[s, t]) + zero, zero, zero))
        rows, cols, h0, hx, hy = (np.concatenate([np.broadcast_to(e[i], e[0].shape)
                                                  for e in entries]) for i in range(5))
        order = np.argsort(rows * (4 * ng) + cols, kind="stable")
        self.rows, self.cols = rows[order].astype(np.int64), cols[order].astype(np.int64)
        self._h0, self._hx, self._hy = (np.asarray(x, complex)[order] for x in (h0, hx, hy))

    def values(self, k: np.ndarray, span: slice | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H = H0 + k_x Hx + k_y Hy, ∂H/∂k_x = Hx, ∂H/∂k_y = Hy at one k (theory §1, §2.5),
        of every pattern entry or of the entries ``span`` only."""
        k = np.asarray(k, dtype=float).ravel()
        s = slice(None) if span is None else span
        h0, hx, hy = self._h0[s], self._hx[s], self._hy[s]
        return h0 + k[0] * hx + k[1] * hy, hx.copy(), hy.copy()

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Dense H (nk, n, n) and ∂H (2, nk, n, n) for a batch, vectorised over k.

        ∂H does not depend on k, so it is returned as a read-only broadcast of one (2, n, n)
        pair (no nk-fold copy).
        """
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        n, nk = self.norb, k.shape[0]
        ham = np.zeros((nk, n, n), complex)
        ham[:, self.rows, self.cols] = (self._h0[None] + k[:, :1] * self._hx[None]
                                        + k[:, 1:] * self._hy[None])
        if not derivatives:
            return ham, None
        dham = np.zeros((2, 1, n, n), complex)  # k-independent: a read-only broadcast view
        dham[0, 0, self.rows, self.cols] = self._hx
        dham[1, 0, self.rows, self.cols] = self._hy
        return ham, np.broadcast_to(dham, (2, nk, n, n))

    def high_symmetry_points(self) -> dict[str, np.ndarray]:
        """Cartesian Γ, K (layer-1 Dirac point, valley +1), K', M (cutoff centre)."""
        red = {"G": (0.0, 0.0), "K": (1 / 3, 1 / 3), "K'": (2 / 3, 2 / 3), "M": (0.5, 0.5)}
        return {name: np.asarray(r) @ self.b for name, r in red.items()}

    def shift_map(self, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
        """Basis states matched by a shift of k by G = n1 b1 + n2 b2.

        Returns (src, dst) orbital indices such that H(k + G)[src][:, src] equals
        H(k)[dst][:, dst]: state (ℓ, G', s) at k + G is state (ℓ, G' + G, s) at k. States
        whose partner lies outside the cutoff are dropped; this is the only way H(k + G)
        and H(k) differ, so eigenvectors continue across the zone boundary as
        u(k + G)[src] ≈ u(k)[dst] up to a phase, with an error set by the cutoff.
        """
        ng = len(self.gvec)
        dst_g = shifted_index(self.gvec, n1, n2)
        g = np.flatnonzero(dst_g >= 0)
        src = np.concatenate([2 * (layer * ng + g) + s for layer in (0, 1) for s in (0, 1)])
        dst = np.concatenate([2 * (layer * ng + dst_g[g]) + s for layer in (0, 1)
                              for s in (0, 1)])
        order = np.argsort(src)
        return src[order], dst[order]

    def describe(self) -> dict[str, object]:
        """Scalar facts for /model: parameters, derived θ, α, k_θ, moiré length, sizes."""
        return {**self.info, "norb": self.norb, "nnz": self.nnz}

