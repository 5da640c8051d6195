"""Windowed sparse eigensolver: SLEPc Krylov–Schur, shift-and-invert at a target, MUMPS LU.

Per k-point (theory §2.1, §5): H(k) is assembled from the model's fixed pattern as a PETSc AIJ
matrix whose rows are split over the pool communicator; Krylov–Schur with shift-and-invert
(target magnitude ordering, one MUMPS factorisation of H − σ) returns the ``nev + pad``
eigenpairs nearest the target σ. The ``nev`` nearest form the window (sorted by energy); the
padding guards the window edge (a Krylov method may return one vector per exactly
degenerate eigenspace, so an edge that cuts a degenerate cluster is detected with the extra
pairs and refused) and enters the out-of-window geometry exactly (solvers/sternheimer.py).
Before the factorisation is discarded it also serves the Sternheimer solves. Velocities
v^i_nm = <n|∂_iH|m> come from the sparse ∂H/∂k (theory §1). Window and padding vectors are
small (norb × (nev + pad)) and are replicated on the pool's ranks.

Options pass through with the prefix ``-qgt_`` (``-qgt_eps_*``, ``-qgt_st_*``) on the
command line, read by PETSc's options database.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from qgt_mpi.models.sparse import as_sparse
from qgt_mpi.parallel import allgather_rows, allreduce_array
from qgt_mpi.solvers.base import Eigenpairs
from qgt_mpi.solvers.resolve import group_rotation, operator_apply
from qgt_mpi.solvers.safe_shift import ShiftReport
from qgt_mpi.solvers.shift_invert import PatternLayout, ShiftInvert, effective_options
from qgt_mpi.solvers.sternheimer import cg_tolerance, pad_tensor, rest_tensor
from qgt_mpi.solvers.window import RESIDUAL_FACTOR, window_pairs

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel, SparseBlochModel

# k ↦ (X ↦ S(k) X): a symmetry operator resolving degenerate window groups (solvers/resolve.py)
OperatorAt = Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]

BLOCK_SIZE = 4  # block Lanczos: 4 columns (the 4 flat bands of TBG meet at K), §8
BLOCK_MIN_ORBITALS = 2000  # method "auto": block Lanczos from this size on (docs/performance.md §8)


@dataclass(frozen=True)
class WindowOptions:
    """``[solver]`` settings of a windowed solve (docs/input.md).

    nev : bands in the window (nearest ``target``); target : σ [meV]; tol : relative
    eigenpair residual; ncv, max_it : Krylov subspace size and restarts (None: SLEPc
    defaults); pad : extra eigenpairs beyond the window (None: max(4, nev // 2));
    edge_tol : eigenvalues closer than this [meV] count as degenerate at the window edge;
    cluster_tol : eigenvalues closer than this [meV] form a cluster the window takes whole
    where it can (solvers/safe_shift.py ``window_order``); resolve : operator that resolves
    degenerate groups of window bands ("auto": the model's ``resolve_default``; None: off;
    solvers/resolve.py);
    out_of_window : compute the out-of-window metric and curvature (theory §5);
    metric_tol : bound on the relative error of its Sternheimer part (None: RESIDUAL_FACTOR ×
    tol, the backward error accepted for the window eigenpairs; solvers/sternheimer.py).
    """

    nev: int
    target: float
    tol: float = 1e-10
    ncv: int | None = None
    max_it: int | None = None
    pad: int | None = None
    edge_tol: float = 1e-6
    cluster_tol: float = 1e-2
    resolve: str | None = "auto"
    out_of_window: bool = True
    metric_tol: float | None = None
    method: str = "auto"

    @property
    def n_pad(self) -> int:
        """Eigenpairs computed beyond the window."""
        return self.pad if self.pad is not None else max(4, self.nev // 2)

    def block_size(self, norb: int) -> int:
        """Block size of block Lanczos, or 0 for SLEPc's Krylov–Schur (``method``)."""
        if self.method == "krylovschur" or (self.method == "auto" and norb < BLOCK_MIN_ORBITALS):
            return 0
        return min(BLOCK_SIZE, self.nev + self.n_pad)


class SlepcSolver:
    """Window of ``nev`` bands per k-point, solved collectively on a pool communicator."""

    name = "slepc"
    windowed = True

    def __init__(self, options: WindowOptions, comm: MPI.Comm) -> None:
        from petsc4py import PETSc  # deferred: PETSc initialises MPI state on import
        from slepc4py import SLEPc

        self.PETSc, self.SLEPc = PETSc, SLEPc
        self.opts, self.comm = options, comm
        self._model: BlochModel | None = None
        self.iterations = {"eps": 0, "sternheimer": 0, "k": 0, "vectors_only": 0}
        self.shifts = ShiftReport()
        self._resolve: OperatorAt | None = None  # set when degenerate groups are resolved
        self.resolved_by = "none"
        self.resolved = {"kpoints": 0, "resolved": 0, "unsplit": 0}
        # solvers/accelerate.py: when a list, each k-point appends the full rows of its
        # computed eigenvectors (window + padding) and Sternheimer solutions (a basis source)
        self.keep: list[np.ndarray] | None = None

    @property
    def core(self) -> SlepcSolver:
        """The solver computing the eigenvectors: itself."""
        return self

    def serial(self) -> SlepcSolver:
        """The same window on COMM_SELF."""
        return SlepcSolver(self.opts, MPI.COMM_SELF)

    @contextmanager
    def eigenbasis(self) -> Iterator[None]:
        """Solve in the eigenbasis inside the block: degenerate groups are not resolved
        (solvers/resolve.py ``eigenbasis``). Local."""
        saved, self._resolve = self._resolve, None
        try:
            yield
        finally:
            self._resolve = saved

    def bands(self, model: BlochModel) -> int:
        """Bands the solver returns: the window."""
        return self.opts.nev

    def describe(self) -> dict[str, object]:
        """Solver facts for the output file."""
        o = self.opts
        return {"solver": self.name, "nev": o.nev, "target_meV": o.target, "tol": o.tol,
                "pad": o.n_pad, "pool_size": self.comm.size,
                "out_of_window": o.out_of_window, "method": self._method()}

    def _method(self) -> str:
        """The eigensolver used (or ``opts.method`` before a model is bound)."""
        if self._model is None:
            return self.opts.method
        return "block-lanczos" if self.opts.block_size(self._sparse.norb) else "krylov-schur"

    def check(self, model: BlochModel) -> None:
        """Raise ValueError when the window cannot be solved for ``model``."""
        self._bind(model)

    def _bind(self, model: BlochModel) -> None:
        """Cache the sparse view of ``model`` and this rank's share of its pattern."""
        if self._model is model:
            return
        sparse: SparseBlochModel = as_sparse(model)  # what the window solve needs of it
        need = self.opts.nev + self.opts.n_pad
        if need > sparse.norb:
            raise ValueError(f"solver.nev + pad = {need} exceeds the {sparse.norb} bands of "
                             "the model (use the dense solver)")
        effective_options(self.PETSc)  # the same /solver petsc_options on every rank
        self._model, self._sparse = model, sparse
        name = self.opts.resolve
        if name == "auto":
            name = getattr(model, "resolve_default", None)
        self._resolve = operator_apply(model, name) if name else None
        self.resolved_by = name or "none"
        self._layout = PatternLayout.of(sparse, self.comm, self.PETSc.IntType)

    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Window eigenpairs of a batch of Cartesian k (nk, 2). Collective over the pool.

        Raises ArithmeticError (non-convergence, a cut degenerate cluster) naming the k-point.
        """
        self._bind(model)
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        si = ShiftInvert(self.PETSc, self.SLEPc, self.comm, self.opts, self._layout,
                         self.opts.block_size(self._sparse.norb))
        nb, nk = self.opts.nev, len(k)
        vectors = np.empty((nk, self._sparse.norb, nb), complex)
        points: list[_Point] = []
        try:  # one matrix + EPS for the batch: the MUMPS analysis is done once
            for i, kk in enumerate(k):  # window vectors straight into the batch array
                point = self._guarded(si, kk, velocities)
                vectors[i] = point.vectors
                points.append(point)
        finally:
            si.destroy()
        return stack_points(points, vectors, velocities, self._resolve is not None)

    def _guarded(self, si: ShiftInvert, k: np.ndarray, velocities: bool) -> _Point:
        """One k-point; an unexpected error on one rank of a multi-rank pool aborts the job.

        The ArithmeticErrors raised here (non-convergence, cut clusters, residuals) are
        decided on data every pool rank holds identically, so all ranks of the pool raise
        them together and the k-pass agrees on them at its round boundary. Anything else
        may hit one rank only, while the others wait inside a PETSc collective forever: then
        the only way to stop every rank within seconds is MPI_Abort (with one message).
        """
        try:
            return self._one(si, k, velocities)
        except ArithmeticError:
            raise
        except Exception as exc:
            if self.comm.size == 1:
                raise
            sys.stderr.write(f"qgt-mpi: error on pool rank {self.comm.rank} inside a pool "
                             f"solve at k = {k.tolist()}: {type(exc).__name__}: {exc}; "
                             "aborting all ranks\n")
            sys.stderr.flush()
            self.comm.Abort(1)
            raise

    # one k-point ------------------------------------------------------------------------
    def _one(self, si: ShiftInvert, k: np.ndarray, velocities: bool) -> _Point:
        """Window energies, vectors, velocities, out-of-window geometry, outside edges."""
        o, where = self.opts, f"k = ({k[0]:.6g}, {k[1]:.6g})"
        layout = self._layout
        h, dx, dy = self._sparse.values(k, layout.span)
        h_local = layout.local_rows(h)
        si.load(h)
        pairs = window_pairs(si, h_local, self.opts, self.comm, layout.n, self.shifts, where)
        energies, local = pairs.values, pairs.vectors
        self.iterations["eps"] += pairs.iterations
        n_all = energies.size
        full = allgather_rows(self.comm, local)
        nev = o.nev
        order = np.argsort(energies[:nev], kind="stable")
        win = np.concatenate([order, np.arange(nev, n_all)])
        energies, full, local = energies[win], full[:, win], local[:, win]
        edges = _edges(energies[:nev], energies[nev:])
        groups = self._resolve_groups(k, energies, full, local)
        if self.keep is not None:
            self.keep.append(full)
        if not velocities:  # eigenvectors only (link variables at plaquette corners)
            self.iterations["vectors_only"] += 1
            return _Point(energies[:nev], full[:, :nev], outside=edges, groups=groups)
        dvec = [layout.local_rows(v) @ full for v in (dx, dy)]  # local rows of ∂_iH V
        vel = np.stack([allreduce_array(self.comm, local.conj().T @ dv) for dv in dvec])
        metric, curv = self._outside_geometry(si, energies, vel, local, dvec, where)
        self.iterations["k"] += 1
        return _Point(energies[:nev], full[:, :nev], vel[:, :nev, :nev], metric, curv, edges,
                      groups)

    def _resolve_groups(self, k: np.ndarray, energies: np.ndarray, full: np.ndarray,
                        local: np.ndarray) -> np.ndarray | None:
        """Rotate degenerate window groups into the operator's basis, in place (the window
        columns of ``energies``, ``full`` and ``local``); their labels, or None. Local."""
        if self._resolve is None:
            return None
        nev = self.opts.nev
        rot, new, labels, failed = group_rotation(energies[:nev], full[:, :nev],
                                                  self._resolve(k), self.opts.cluster_tol)
        self.resolved.update(kpoints=self.resolved["kpoints"] + 1,
                             unsplit=self.resolved["unsplit"] + failed)
        if labels.max(initial=-1) >= 0:
            self.resolved["resolved"] += 1
            full[:, :nev], local[:, :nev], energies[:nev] = full[:, :nev] @ rot, \
                local[:, :nev] @ rot, new
        return labels

    def _outside_geometry(self, si: ShiftInvert, energies: np.ndarray, vel: np.ndarray,
                          local: np.ndarray, dvec: list[np.ndarray], where: str
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-window metric (nev, 3) and curvature (nev,) of the window bands (theory §5)."""
        o = self.opts
        nev = o.nev
        tensor = pad_tensor(energies, vel, nev)
        if o.out_of_window:
            solve = si.factor_solve()
            rhs = np.stack([dv[:, :nev] for dv in dvec])
            shifts = energies[:nev] - si.sigma  # c_n = ε_n − σ at the shift actually used
            accuracy = o.metric_tol if o.metric_tol is not None else RESIDUAL_FACTOR * o.tol
            tol = cg_tolerance(shifts, float(np.max(np.abs(energies - si.sigma))), accuracy)
            kept: list[np.ndarray] | None = [] if self.keep is not None else None
            rest, its = rest_tensor(self.comm, solve, local, rhs, shifts, tol, where, kept)
            if self.keep is not None and kept:
                self.keep.append(allgather_rows(self.comm, kept[0]))
            tensor = tensor + rest
            self.iterations["sternheimer"] += its
        return tensor.real, -2.0 * tensor[:, 2].imag


@dataclass
class _Point:
    """One k-point's window: energies (nev,), vectors (norb, nev), velocities (2, nev, nev),
    out-of-window metric (nev, 3) and curvature (nev,), outside edges (2,), group labels."""

    energies: np.ndarray
    vectors: np.ndarray
    velocities: np.ndarray | None = None
    metric: np.ndarray | None = None
    curvature: np.ndarray | None = None
    outside: np.ndarray | None = None
    groups: np.ndarray | None = None


def stack_points(points: list[_Point], vectors: np.ndarray, velocities: bool, grouped: bool
                 ) -> Eigenpairs:
    """Eigenpairs of a batch from its k-points' windows; ``vectors`` (nk, norb, nb) already
    holds their window vectors (filled as they come, not stacked: one copy of the batch);
    ``grouped``: with group labels. Local."""
    nb = vectors.shape[2]

    def stack(name: str, shape: tuple[int, ...], dtype: type = float) -> np.ndarray:
        if not points:
            return np.zeros((0, *shape), dtype)
        return np.stack([getattr(p, name) for p in points])

    energies, outside = stack("energies", (nb,)), stack("outside", (2,))
    groups = stack("groups", (nb,), int) if grouped else None
    if not velocities:
        return Eigenpairs(energies, vectors, None, None, None, outside, groups)
    return Eigenpairs(energies, vectors,
                      np.moveaxis(stack("velocities", (2, nb, nb), complex), 1, 0),
                      stack("metric", (nb, 3)), stack("curvature", (nb,)), outside, groups)


def _edges(window: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Nearest computed eigenvalue below and above the window (NaN if none)."""
    below, above = rest[rest < window.min()], rest[rest > window.max()]
    return np.array([below.max() if below.size else np.nan,
                     above.min() if above.size else np.nan])
