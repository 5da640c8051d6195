"""Eigenpairs at symmetry images of solved k-points: the k-grid accelerator (theory §5.11).

For a verified operation g (models/symmetry.py: k' = W k, orbital permutation P, unitary or
with time reversal) H(Wk) = P H(k)^(*) Pᵀ, so the eigenpairs at k' follow from those at k
without a solve:

  ε_n(k') = ε_n(k),   u_n(k') = P u_n(k)^(*),
  v^i_nm(k') = Σ_j W_ij v^j_nm(k)^(*),                                     (5.11b)
  g^out(k') = W g^out(k) Wᵀ,   Ω^out(k') = ±det(W) Ω^out(k)  (− with time reversal).

A grid point that is W k_r − G (G a reciprocal vector) gets the phases of (1.1),
u(k − G) = diag(e^{iG·τ}) u(k); velocities and geometry do not change with G. The k-pass
asks this solver for whole blocks; every grid k whose representative was solved beforehand
(run/irreducible.py) is an image, the rest (and any k off the grid) go to the inner solver.

Certificate per image (cheap, in the full space): the residual ‖H(k')u_n(k') − ε_n u_n(k')‖
must equal the representative's own residual to CERT_SLACK (up to CERT_FLOOR·max|H|); an
image that fails it is solved in full (and counted). The transform is exact algebra, so the
check guards the implementation and the operation, not an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel import allreduce_array
from qgt_mpi.solvers.base import Decorator, Eigenpairs, Eigensolver

if TYPE_CHECKING:
    from qgt_mpi.models.kstars import IrreducibleGrid
    from qgt_mpi.models.protocols import BlochModel
    from qgt_mpi.models.symmetry import Operation

CERT_SLACK = 1.5  # an image's residual may exceed its representative's by this factor ...
CERT_FLOOR = 1e-12  # ... plus this times max|H| (rounding of the permutation and phases)


def transform(eig: Eigenpairs, op: Operation, positions: np.ndarray,
              shift: np.ndarray) -> Eigenpairs:
    """(5.11b): the eigenpairs of ONE k-point (nk = 1) at W k − ``shift`` (Cartesian G)."""
    anti = op.antiunitary
    vec = eig.vectors[0].conj() if anti else eig.vectors[0]
    new = np.empty_like(vec)
    new[op.perm] = vec
    new *= np.exp(1j * (positions[:, :2] @ shift))[:, None]
    vel = None
    if eig.velocities is not None:
        v = eig.velocities.conj() if anti else eig.velocities
        vel = np.einsum("ij,jknm->iknm", op.w, v)
    metric = curv = None
    if eig.metric_out is not None:
        m = eig.metric_out  # (1, nb, 3): xx, yy, xy
        g = np.stack([np.stack([m[..., 0], m[..., 2]], -1),
                      np.stack([m[..., 2], m[..., 1]], -1)], -2)
        g = np.einsum("ia,knab,jb->knij", op.w, g, op.w)
        metric = np.stack([g[..., 0, 0], g[..., 1, 1], g[..., 0, 1]], -1)
    if eig.curvature_out is not None:
        curv = eig.curvature_out * (np.linalg.det(op.w) * (-1.0 if anti else 1.0))
    return Eigenpairs(eig.energies.copy(), new[None], vel, metric, curv,
                      None if eig.outside is None else eig.outside.copy(),
                      None if eig.groups is None else eig.groups.copy())


def residuals(model: BlochModel, k: np.ndarray, eig: Eigenpairs) -> tuple[np.ndarray, float]:
    """‖H(k)u_n − ε_n u_n‖ per band at one k, and max|H(k)|."""
    if hasattr(model, "csr"):
        h = model.csr(k)[0]
        scale = float(np.abs(h.data).max()) if h.nnz else 1.0
    else:
        h = model.hamiltonian(np.asarray(k, dtype=float).reshape(1, 2), False)[0][0]
        scale = float(np.abs(h).max())
    u = eig.vectors[0]
    r = h @ u - u * eig.energies[0][None, :]
    return np.linalg.norm(r, axis=0), scale


@dataclass
class ImageReport:
    """What the accelerator did on this rank: images, full solves, the certificate's margin."""

    images: int = 0
    full: int = 0
    refused: int = 0  # images whose certificate failed (solved in full)
    max_ratio: float = 0.0  # largest image residual / (representative residual + floor)
    representatives: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class SymmetryImages(Decorator):
    """Decorate ``inner``: grid k-points whose representative is cached come by (5.11b)."""

    def __init__(self, inner: Eigensolver, operations: list[Operation]) -> None:
        self.inner = inner
        self.operations = operations
        self.name = f"{inner.name}+symmetry"
        self.comm: MPI.Comm = inner.comm
        self.grid: IrreducibleGrid | None = None
        self.cache: dict[int, tuple[Eigenpairs, np.ndarray]] = {}  # rep → (eigenpairs, resid)
        self.cache_vectors: dict[int, tuple[Eigenpairs, np.ndarray]] = {}  # without velocities
        self.report = ImageReport()

    def serial(self) -> Eigensolver:
        """The inner solver on COMM_SELF (samples are solved, never imaged)."""
        return self.inner.serial()

    def describe(self) -> dict[str, object]:
        """Inner solver facts plus the operations used."""
        return {**self.inner.describe(), "solver": self.name,
                "symmetry_operations": ",".join(o.label for o in self.operations)}

    def store(self, model: BlochModel, flat: np.ndarray, eig: Eigenpairs,
              cache: dict | None = None) -> None:
        """Keep the eigenpairs of representatives ``flat`` with their own residuals (in
        ``cache``, default the main one)."""
        assert self.grid is not None
        k = self.grid.points(flat)
        target = self.cache if cache is None else cache
        for n, p in enumerate(flat):
            one = _take(eig, n)
            target[int(p)] = (one, residuals(model, k[n], one)[0])

    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Images where cached and certified, the inner solver elsewhere (collective over the
        pool: the cache is the same on every rank of a pool, so are the decisions)."""
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        parts: list[Eigenpairs | None] = [None] * len(k)
        grid = self.grid
        if grid is not None:
            flat, inside = grid.locate(k)
            self._solve_missing(model, grid.rep[flat[inside]], velocities)
            for n in np.flatnonzero(inside):
                parts[n] = self._image(model, k[n], int(flat[n]), velocities)
        rest = [n for n, e in enumerate(parts) if e is None]
        self.report.full += len(rest)
        if rest:
            solved = self.inner.solve(model, k[rest], velocities)
            for i, n in enumerate(rest):
                parts[n] = _take(solved, i)
        return _stack([e for e in parts if e is not None])

    def _solve_missing(self, model: BlochModel, reps: np.ndarray, velocities: bool) -> None:
        """Solve the representatives of a request that no cache holds, once (a phase after
        the k-pass — the valley geometry, link corners — asks for grid points whose
        representative another rank solved): later requests of their stars are images.
        Without velocities they go to a cache of their own. Collective over the pool (the
        same request and caches on every rank of it)."""
        cache = self.cache if velocities else self.cache_vectors
        missing = np.array(sorted({int(p) for p in reps} - set(self.cache) - set(cache)),
                           dtype=np.int64)
        if missing.size == 0 or self.grid is None:
            return
        eig = self.inner.solve(model, self.grid.points(missing), velocities)
        self.report.full += missing.size
        self.store(model, missing, eig, cache)

    def _image(self, model: BlochModel, k: np.ndarray, flat: int,
               velocities: bool = True) -> Eigenpairs | None:
        """(5.11b) from the cached representative, certified; None: solve it in full."""
        assert self.grid is not None
        rep, g = int(self.grid.rep[flat]), int(self.grid.op[flat])
        entry = self.cache.get(rep) or (None if velocities else self.cache_vectors.get(rep))
        if entry is None:
            return None
        base, base_res = entry
        op = self.operations[g]
        if base.groups is not None and g != 0 and np.any(base.groups >= 0):
            self.report.reasons["resolved group"] = self.report.reasons.get(
                "resolved group", 0) + 1
            return None  # a symmetry-resolved basis is the operator's at rep only (§5.7)
        shift = op.w @ self.grid.points(np.array([rep]))[0] - k
        image = transform(base, op, np.asarray(model.positions, dtype=float), shift)
        res, scale = residuals(model, k, image)
        bound = CERT_SLACK * base_res + CERT_FLOOR * scale
        ratio = float(np.max(res / bound)) if res.size else 0.0
        self.report.max_ratio = max(self.report.max_ratio, ratio)
        if ratio > 1.0:
            self.report.refused += 1
            return None
        self.report.images += 1
        if not velocities:
            image.velocities = None
        return image


def _take(eig: Eigenpairs, n: int) -> Eigenpairs:
    """The eigenpairs of k-point ``n`` of a batch, as a batch of one."""
    s = slice(n, n + 1)

    def cut(a: np.ndarray | None, axis: int = 0) -> np.ndarray | None:
        if a is None:
            return None
        return a[:, s] if axis == 1 else a[s]

    return Eigenpairs(eig.energies[s], eig.vectors[s], cut(eig.velocities, 1),
                      cut(eig.metric_out), cut(eig.curvature_out), cut(eig.outside),
                      cut(eig.groups))


def _stack(parts: list[Eigenpairs]) -> Eigenpairs:
    """Batches of one joined in order (fields None in all parts stay None)."""

    def join(name: str, axis: int = 0) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        if any(a is None for a in arrays):
            return None
        return np.concatenate(arrays, axis=axis)

    return Eigenpairs(np.concatenate([p.energies for p in parts]),
                      np.concatenate([p.vectors for p in parts]), join("velocities", 1),
                      join("metric_out"), join("curvature_out"), join("outside"),
                      join("groups"))


def summary(comm: MPI.Comm, solver: object) -> dict[str, object]:
    """/solver attributes of the accelerator, reduced over ``comm`` (collective when the
    solver is a SymmetryImages on every rank; {} otherwise, the same on every rank)."""
    if not isinstance(solver, SymmetryImages):
        return {}
    r = solver.report
    root = solver.comm.rank == 0  # pools replicate the work: count each k once
    counts = allreduce_array(comm, np.array([r.images, r.full, r.refused, r.representatives],
                                            dtype=float) * root)
    ratio = allreduce_array(comm, np.array([r.max_ratio]), MPI.MAX)
    return {"symmetry_operations": ",".join(o.label for o in solver.operations),
            "symmetry_image_kpoints": int(counts[0]), "symmetry_solved_kpoints": int(counts[1]),
            "symmetry_refused_images": int(counts[2]),
            "symmetry_representatives": int(counts[3]),
            "symmetry_max_residual_ratio": float(ratio[0])}
