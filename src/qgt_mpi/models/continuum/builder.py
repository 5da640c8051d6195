"""One builder for continuum moiré models: plane waves, kinetic blocks, harmonics (§2.5a).

Basis: states (ℓ, G, o) — layer ℓ, plane wave G of the cutoff (models/continuum/spec.py),
orbital o — ordered layer-major, index (ℓ n_G + g) n_o + o; with ``valley = "both"`` the
valley −1 copy follows as a second block. The cell-periodic basis functions e^{iG·r} do not
depend on k, so (theory §1.2, §2.5) all k dependence is explicit and the Hamiltonian is a
polynomial of degree two in k,

  H(k) = H_0 + k_x H_x + k_y H_y + |k|² H_2,   ∂H/∂k_i = H_i + 2 k_i H_2,   (2.5a.1)

with H_2 ≠ 0 only on parabolic layers (h = c|k + G − κ_ℓ|²). The four value arrays live on
one CSR pattern, so a k-point costs one vectorised expression (no Python loop over k,
orbitals or plane waves); ``positions`` are all 0 and the metric is the physical one.
∂H is nonzero only on the few entries e = (r_e, c_e) where H_x, H_y or H_2 is (the diagonal
of a parabolic layer, the A–B entries of a Dirac layer), so the velocity matrices of the
dense solver (theory §1) are sums over those entries alone,

  v^i_nm(k) = Σ_e U*_{r_e n}(k) (H_i + 2k_i H_2)_e U_{c_e m}(k),   (2.5a.1b)

one batched product over n_e ≤ 2 n_orb entries instead of U† (∂_iH U) with dense ∂_iH.

Valley −1 is the time-reversal partner H_−(k) = H_+(2M − k)*, 2M = b1 + b2 a reciprocal
vector: ε_−(k) = ε_+(−k) up to the cutoff, which stays centred on M = (b1 + b2)/2 for both.
Substituting q = 2M − k in (2.5a.1): H_0' = (H_0 + 2M·H + |2M|² H_2)*,
H_i' = −(H_i + 2(2M)_i H_2)*, H_2' = H_2*.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from qgt_mpi.models.continuum.spec import (
    VALLEYS,
    ContinuumSpec,
    check_spec,
    hex_shells,
    shifted_index,
)
from qgt_mpi.models.continuum.terms import harmonic_entries, kinetic_entries
from qgt_mpi.models.sparse import SparseModel


class ContinuumModel(SparseModel):
    """A continuum model built from a :class:`ContinuumSpec` (see the module doc).

    Attributes
    ----------
    b : (2, 2) moiré reciprocal vectors (1/nm). gvec : (n_G, 2) integer plane waves.
    spec : the spec it was built from. valleys : the valleys it contains, (1,), (−1,) or
    (1, −1). operators : "layer", "sublattice" (Dirac layers), "valley" (both valleys).
    """

    def __init__(self, spec: ContinuumSpec) -> None:
        self._basis(spec)
        self.lattice = 2.0 * np.pi * np.linalg.inv(self.b).T
        parts = [self._valley_arrays(v, i * self.n_block) for i, v in enumerate(self.valleys)]
        self.rows, self.cols, self._h0, self._hx, self._hy, self._h2 = (
            np.concatenate([p[i] for p in parts]) for i in range(6))
        self._quadratic = bool(np.any(self._h2))
        self._finish_pattern()
        self.operators = self._operators()
        self.info = {"kind": "continuum", "length_unit": "nm", **spec.info,
                     "valley": {1: 1, -1: -1, 0: "both"}[spec.valley]}

    def _basis(self, spec: ContinuumSpec) -> None:
        """The spec's facts: b, plane waves, valleys, block size, positions (all 0)."""
        check_spec(spec)
        self.spec = spec
        self.b = np.asarray(spec.b, dtype=float)
        self.gvec = hex_shells(int(spec.shells))
        self.valleys = VALLEYS[spec.valley]
        self.spin_per_valley = int(spec.spin)
        self.n_block = len(spec.layers) * len(self.gvec) * spec.orbitals  # one valley
        self.positions = np.zeros((self.n_block * len(self.valleys), 2))

    @classmethod
    def from_arrays(cls, spec: ContinuumSpec, lattice: np.ndarray, pattern: tuple,
                    values: tuple, operators: dict[str, sp.csr_matrix],
                    info: dict[str, object]) -> ContinuumModel:
        """The model of ``spec`` with ``lattice``, the pattern (rows, cols) and the values
        (H0, Hx, Hy, H2) given as they were in memory (a model file, models/modelfile): the
        same floating-point operations on the same bits, nothing rebuilt."""
        model = cls.__new__(cls)
        model._basis(spec)
        model.lattice = np.asarray(lattice, dtype=float)
        model.rows, model.cols = (np.asarray(x, dtype=np.int64) for x in pattern)
        model._h0, model._hx, model._hy, model._h2 = (np.asarray(x, dtype=complex)
                                                      for x in values)
        model._quadratic = bool(np.any(model._h2))
        model._finish_pattern()
        model.operators, model.info = dict(operators), dict(info)
        return model

    def _valley_arrays(self, valley: int, offset: int) -> tuple[np.ndarray, ...]:
        """(rows, cols, H0, Hx, Hy, H2) of one valley, CSR order, indices from ``offset``."""
        entries = (kinetic_entries(self.spec, self.gvec, self.b)
                   + harmonic_entries(self.spec, self.gvec))
        rows, cols, h0, hx, hy, h2 = (np.concatenate([np.broadcast_to(e[i], e[0].shape)
                                                      for e in entries]) for i in range(6))
        n = self.n_block
        keys, where = np.unique(rows * n + cols, return_inverse=True)  # sum repeated entries
        summed = [np.zeros(keys.size, complex) for _ in range(4)]
        for out, val in zip(summed, (h0, hx, hy, h2), strict=True):
            np.add.at(out, where.ravel(), np.asarray(val, complex))
        h0, hx, hy, h2 = summed
        if valley == -1:
            two_m = self.b[0] + self.b[1]
            h0 = np.conj(h0 + two_m[0] * hx + two_m[1] * hy + two_m @ two_m * h2)
            hx, hy = -np.conj(hx + 2 * two_m[0] * h2), -np.conj(hy + 2 * two_m[1] * h2)
            h2 = np.conj(h2)
        return keys // n + offset, keys % n + offset, h0, hx, hy, h2

    def _operators(self) -> dict[str, sp.csr_matrix]:
        """k-independent diagonal operators: layer, sublattice (Dirac), valley (both)."""
        nl, ng, no = len(self.spec.layers), len(self.gvec), self.spec.orbitals
        idx = np.arange(self.norb)
        layer = (idx // (ng * no)) % nl
        ops = {"layer": (nl - 1) - 2.0 * layer}
        if no == 2:
            ops["sublattice"] = np.where(idx % 2 == 0, 1.0, -1.0)
        if len(self.valleys) == 2:
            ops["valley"] = np.where(idx < self.n_block, 1.0, -1.0)
        return {name: sp.diags(v).tocsr() for name, v in ops.items()}

    def valley(self, k: np.ndarray) -> sp.csr_matrix:
        """Valley operator V(k) = ±1 on the states of valley ±1 (k-independent; theory §5.8):
        with ``valley = "both"`` it splits a window into its two valleys."""
        del k
        if "valley" in self.operators:
            return self.operators["valley"]
        return (self.valleys[0] * sp.identity(self.norb, format="csr")).tocsr()

    def values(self, k: np.ndarray, span: slice | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H, ∂H/∂k_x, ∂H/∂k_y at one k by (2.5a.1), of every entry or of ``span``."""
        k = np.asarray(k, dtype=float).ravel()
        s = slice(None) if span is None else span
        h0, hx, hy = self._h0[s], self._hx[s], self._hy[s]
        if not self._quadratic:
            return h0 + k[0] * hx + k[1] * hy, hx.copy(), hy.copy()
        h2 = self._h2[s]
        return (h0 + k[0] * hx + k[1] * hy + (k @ k) * h2, hx + 2 * k[0] * h2,
                hy + 2 * k[1] * h2)

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Dense H (nk, n, n) and ∂H (2, nk, n, n) for a batch, vectorised over k.

        Without a quadratic term ∂H does not depend on k and is a read-only broadcast of one
        (2, n, n) pair (no nk-fold copy).
        """
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        n, nk = self.norb, k.shape[0]
        ksq = np.einsum("ki,ki->k", k, k)[:, None]
        ham = np.zeros((nk, n, n), complex)
        ham[:, self.rows, self.cols] = (self._h0[None] + k[:, :1] * self._hx[None]
                                        + k[:, 1:] * self._hy[None] + ksq * self._h2[None])
        if not derivatives:
            return ham, None
        if not self._quadratic:
            dham = np.zeros((2, 1, n, n), complex)
            dham[0, 0, self.rows, self.cols] = self._hx
            dham[1, 0, self.rows, self.cols] = self._hy
            return ham, np.broadcast_to(dham, (2, nk, n, n))
        full = np.zeros((2, nk, n, n), complex)
        full[0][:, self.rows, self.cols] = self._hx[None] + 2 * k[:, :1] * self._h2[None]
        full[1][:, self.rows, self.cols] = self._hy[None] + 2 * k[:, 1:] * self._h2[None]
        return ham, full

    def velocity_matrices(self, k: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """v^i = U† ∂_iH U (2, nk, nb, nb) for eigenvectors ``vectors`` (nk, norb, nb) at k
        (nk, 2), from the entries of ∂H alone (module doc, theory (2.5a.1b)). Local.

        The optional model extra the dense solver uses instead of dense ∂H
        (models/protocols.py); equal to ``band_velocities`` up to rounding.
        """
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        e = self._derivative_entries
        left = np.ascontiguousarray(vectors.conj().swapaxes(-1, -2))
        right = vectors  # left (nk, nb, ne), right (nk, ne, nb); ∂H diagonal: no gather
        if not (e.size == self.norb and np.array_equal(self.rows[e], self.cols[e])):
            left, right = left[:, :, self.rows[e]], vectors[:, self.cols[e], :]
        out = np.empty((2, k.shape[0], vectors.shape[2], vectors.shape[2]), complex)
        for i, hi in enumerate((self._hx[e], self._hy[e])):
            d = hi[None] + 2 * k[:, i : i + 1] * self._h2[e][None]  # (nk, ne)
            np.matmul(left * d[:, None, :], right, out=out[i])
        return out

    @property
    def _derivative_entries(self) -> np.ndarray:
        """Pattern entries where ∂H can be nonzero (H_x, H_y or H_2 ≠ 0)."""
        return np.flatnonzero((self._hx != 0) | (self._hy != 0) | (self._h2 != 0))

    def high_symmetry_points(self) -> dict[str, np.ndarray]:
        """Cartesian Γ, K = κ of the first layer, K' = κ of the second, M (cutoff centre)."""
        red = {"G": (0.0, 0.0), "M": (0.5, 0.5), "K": self.spec.layers[0].point}
        if len(self.spec.layers) > 1:
            red["K'"] = self.spec.layers[1].point
        return {name: np.asarray(r, dtype=float) @ self.b for name, r in red.items()}

    def shift_map(self, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
        """(src, dst) with H(k + G)[src][:, src] = H(k)[dst][:, dst], G = n1 b1 + n2 b2.

        State (block, G', o) at k + G is state (block, G' + G, o) at k; states whose partner
        lies outside the cutoff are dropped (the only difference between H(k + G), H(k)).
        """
        ng, no = len(self.gvec), self.spec.orbitals
        dst_g = shifted_index(self.gvec, n1, n2)
        g = np.flatnonzero(dst_g >= 0)
        blocks = np.arange(self.norb // (ng * no))[:, None, None]
        orb = np.arange(no)[None, None, :]
        src = ((blocks * ng + g[None, :, None]) * no + orb).ravel()
        dst = ((blocks * ng + dst_g[g][None, :, None]) * no + orb).ravel()
        order = np.argsort(src)
        return src[order], dst[order]

    def describe(self) -> dict[str, object]:
        """Scalar facts for /model: the preset's parameters, derived lengths, sizes."""
        return {**self.info, "norb": self.norb, "nnz": self.nnz}
