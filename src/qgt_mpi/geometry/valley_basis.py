"""The valley-resolved basis of a window of bands: a solver adapter (theory §5.8).

At each k the window vectors U (norb × nb, nb = 2n) give V_W = U† V(k) U (nb × nb, Hermitian),
V the model's valley operator. Its n lowest eigenvectors span the valley −1 part of the window,
the n highest the valley +1 part; the valleys separate when the n-th and (n+1)-th eigenvalues
straddle 0 with a gap (refused otherwise). Inside each valley part H is diagonalised (the
window energies in the rotated basis), which orders the valley's bands. The basis is
U w_v c_v: valley −1 bands 0 … n−1, then valley +1 bands n … 2n−1, each by energy. The
geometry of these bands (link Chern numbers, link-distance metric) is geometry/valley.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qgt_mpi.models.sparse import SparseModel
from qgt_mpi.solvers.base import Eigenpairs, Eigensolver

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel

# k (2,) ↦ the valley operator V(k) (norb × norb, sparse or dense)
ValleyOperator = Callable[[np.ndarray], np.ndarray | sp.spmatrix]

# the stats a ValleyBasis keeps as running minima over the points it solved
RUNNING_MINIMA = ("min_abs_valley", "valley_gap", "band_gap_minus", "band_gap_plus")
NOT_SEPARATED = "the valleys do not separate"  # start of the error of an unsplittable window


class ValleyBasis:
    """Solver adapter: the window rotated into the valley-resolved band basis (module doc).

    Parameters
    ----------
    solver : window or dense solver with ``solve(model, k, velocities)``; collective over its
        pool communicator ``solver.comm``, and so is :meth:`solve`.
    operator : callable k (2,) -> sparse or dense valley operator V(k) (norb × norb).
    window : bands (lo, hi) of the solver's output forming the window; hi − lo even.
    min_separation : smallest accepted gap between V_W eigenvalues n − 1 and n.

    Solved points are cached by reduced k (unwrapped), so the flux and metric passes and
    sub-grids cost no second solve (use one adapter per model); ``stats`` holds running
    extremes over solved points: ``min_abs_valley`` and ``valley_gap`` of the V_W
    eigenvalues, ``band_gap_minus/plus`` between the two bands of a valley [meV], and
    ``mixing``, the largest ‖H block between the valleys‖_F inside the window [meV].

    An Eigensolver itself (solvers/base.py): ``windowed`` (it returns a chosen window of the
    solver's bands), ``comm`` the solver's pool, energies and vectors only (no velocities).
    """

    name = "valley"
    windowed = True

    def __init__(self, solver: Eigensolver, operator: ValleyOperator, window: tuple[int, int],
                 min_separation: float = 0.5) -> None:
        lo, hi = window
        if hi <= lo or (hi - lo) % 2:
            raise ValueError(f"valley window {window} must hold an even number of bands")
        self.solver, self.operator, self.window = solver, operator, (lo, hi)
        self.min_separation = float(min_separation)
        self.comm: MPI.Comm = solver.comm
        self.stats = {name: np.inf for name in RUNNING_MINIMA} | {"mixing": 0.0}
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def core(self) -> Eigensolver:
        """The solver computing the eigenvectors (before the valley rotation)."""
        return self.solver.core

    def serial(self) -> ValleyBasis:
        """The same adapter over the solver's serial copy (a fresh cache)."""
        return ValleyBasis(self.solver.serial(), self.operator, self.window,
                           self.min_separation)

    def bands(self, model: BlochModel) -> int:
        """Bands returned: the window."""
        return self.window[1] - self.window[0]

    def describe(self) -> dict[str, object]:
        """The solver's facts plus the valley window."""
        lo, hi = self.window
        return {**self.solver.describe(), "valley_window": f"{lo}:{hi}"}

    @property
    def solved(self) -> int:
        """Distinct k-points solved so far (the cache size)."""
        return len(self._cache)

    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = False) -> Eigenpairs:
        """Valley-resolved window energies and vectors of Cartesian k (nk, 2); collective over
        the pool. Raises ArithmeticError (naming k) where the valleys do not separate."""
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        keys = [tuple(x) for x in np.rint(k @ model.lattice.T / (2 * np.pi) * 1e9).astype(int)]
        todo = sorted({i for i, key in enumerate(keys) if key not in self._cache})
        if todo:
            eig = self.solver.solve(model, k[todo], velocities=False)
            lo, hi = self.window
            energies, vectors = self._split(model, k[todo], eig.vectors[..., lo:hi])
            self._cache.update({keys[i]: (energies[n], vectors[n]) for n, i in enumerate(todo)})
        if not keys:
            nb = self.window[1] - self.window[0]
            return Eigenpairs(np.zeros((0, nb)), np.zeros((0, model.norb, nb), complex), None)
        return Eigenpairs(np.stack([self._cache[key][0] for key in keys]),
                          np.stack([self._cache[key][1] for key in keys]), None)

    def _split(self, model: BlochModel, k: np.ndarray, vectors: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Rotate each point's window into the valley-resolved band basis (module doc).

        V_W = U† V U and H_W = U† H U are formed from the operators, so any orthonormal
        basis of the window (not only eigenvectors) gives the same result.
        """
        half = vectors.shape[-1] // 2
        vw, hw = (np.stack([u.conj().T @ (op(kk) @ u) for kk, u in zip(k, vectors, strict=True)])
                  for op in (self.operator, lambda kk: _hamiltonian(model, kk)))
        lam, w = np.linalg.eigh(_hermitian(vw))
        self._check(k, lam, half)
        h = w.conj().swapaxes(-1, -2) @ _hermitian(hw) @ w  # H in the valley basis
        e_minus, c_minus = np.linalg.eigh(h[:, :half, :half])
        e_plus, c_plus = np.linalg.eigh(h[:, half:, half:])
        rot = np.concatenate([w[..., :half] @ c_minus, w[..., half:] @ c_plus], axis=-1)
        s = self.stats
        s["min_abs_valley"] = min(s["min_abs_valley"], float(np.abs(lam).min(initial=np.inf)))
        s["valley_gap"] = min(s["valley_gap"], float((lam[:, half] - lam[:, half - 1]).min(
            initial=np.inf)))
        for name, e in (("band_gap_minus", e_minus), ("band_gap_plus", e_plus)):
            s[name] = min(s[name], float(np.diff(e, axis=1).min(initial=np.inf)))
        s["mixing"] = max(s["mixing"], float(np.linalg.norm(h[:, :half, half:], axis=(1, 2))
                                             .max(initial=0.0)))
        return np.concatenate([e_minus, e_plus], axis=1), vectors @ rot

    def _check(self, k: np.ndarray, lam: np.ndarray, half: int) -> None:
        """Raise ArithmeticError at the first k whose valley eigenvalues do not separate."""
        bad = ((lam[:, half - 1] >= 0) | (lam[:, half] <= 0)
               | (lam[:, half] - lam[:, half - 1] < self.min_separation))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ArithmeticError(
                f"{NOT_SEPARATED} in the window at k = {k[i].round(6).tolist()}: "
                f"valley eigenvalues {lam[i].round(4).tolist()} (need {half} below 0 and "
                f"{half} above, gap >= {self.min_separation:g})")


def _hermitian(a: np.ndarray) -> np.ndarray:
    """Hermitian part of a stack of matrices (removes rounding asymmetry)."""
    return 0.5 * (a + a.conj().swapaxes(-1, -2))


def _hamiltonian(model: BlochModel, k: np.ndarray) -> np.ndarray | sp.csr_matrix:
    """H(k) of one Cartesian k: sparse CSR for sparse models, else dense."""
    if isinstance(model, SparseModel):
        return model.csr(k)[0]
    return model.hamiltonian(k[None], derivatives=False)[0][0]
