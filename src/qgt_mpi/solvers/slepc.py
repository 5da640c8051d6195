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
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qgt_mpi.models.sparse import as_sparse
from qgt_mpi.parallel import allgather_rows, allreduce_array, allreduce_max, block_range
from qgt_mpi.solvers import safe_shift
from qgt_mpi.solvers.base import Eigenpairs
from qgt_mpi.solvers.shift_invert import ShiftInvert
from qgt_mpi.solvers.sternheimer import cg_tolerance, pad_tensor, rest_tensor

RESIDUAL_FACTOR = 100.0  # accepted ‖Hx − λx‖/((‖H‖ + |λ|)‖x‖) in units of tol
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
    where it can (solvers/safe_shift.py ``window_order``);
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

    def __init__(self, options: WindowOptions, comm: MPI.Comm) -> None:
        from petsc4py import PETSc  # deferred: PETSc initialises MPI state on import
        from slepc4py import SLEPc

        self.PETSc, self.SLEPc = PETSc, SLEPc
        self.opts, self.comm = options, comm
        self._pcomm = PETSc.Comm(comm)
        self._model = None
        self.iterations = {"eps": 0, "sternheimer": 0, "k": 0, "vectors_only": 0}
        self.shifts = safe_shift.ShiftReport()

    def bands(self, model) -> int:
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

    def check(self, model) -> None:
        """Raise ValueError when the window cannot be solved for ``model``."""
        self._bind(model)

    def _bind(self, model) -> None:
        """Cache the sparse view of ``model`` and this rank's row range."""
        if self._model is model:
            return
        sparse = as_sparse(model)
        need = self.opts.nev + self.opts.n_pad
        if need > sparse.norb:
            raise ValueError(f"solver.nev + pad = {need} exceeds the {sparse.norb} bands of "
                             "the model (use the dense solver)")
        self._model, self._sparse = model, sparse
        lo, hi = block_range(sparse.norb, self.comm.size, self.comm.rank)
        self._rows = (lo, hi)
        ptr = sparse.indptr
        self._ptr = (ptr[lo : hi + 1] - ptr[lo]).astype(self.PETSc.IntType)
        self._cols = sparse.cols[ptr[lo] : ptr[hi]].astype(self.PETSc.IntType)
        self._span = slice(int(ptr[lo]), int(ptr[hi]))
        self._layout = (sparse.norb, self._rows, self._ptr, self._cols, self._span)

    def solve(self, model, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Window eigenpairs of a batch of Cartesian k (nk, 2). Collective over the pool.

        Raises ArithmeticError (non-convergence, a cut degenerate cluster) naming the k-point.
        """
        self._bind(model)
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        si = ShiftInvert(self.PETSc, self.SLEPc, self.comm, self.opts, self._layout,
                         self.opts.block_size(self._sparse.norb))
        vectors = np.empty((len(k), self._sparse.norb, self.opts.nev), complex)
        parts = []
        try:  # one matrix + EPS for the batch: the MUMPS analysis is done once
            for i, kk in enumerate(k):  # window vectors straight into the batch array
                energies, vectors[i], *rest = self._guarded(si, kk, velocities)
                parts.append((energies, None, *rest))
        finally:
            si.destroy()
        if not parts:
            nb = self.opts.nev
            return Eigenpairs(np.zeros((0, nb)), vectors,
                              np.zeros((2, 0, nb, nb), complex) if velocities else None,
                              np.zeros((0, nb, 3)), np.zeros((0, nb)), np.zeros((0, 2)))
        if not velocities:
            return Eigenpairs(np.stack([p[0] for p in parts]), vectors, None, None, None,
                              np.stack([p[5] for p in parts]))
        fields = [np.stack([p[i] for p in parts]) for i in (0, 2, 3, 4, 5)]
        return Eigenpairs(fields[0], vectors, np.moveaxis(fields[1], 1, 0), fields[2],
                          fields[3], fields[4])

    def _guarded(self, si: ShiftInvert, k: np.ndarray, velocities: bool):
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
    def _one(self, si: ShiftInvert, k: np.ndarray, velocities: bool):
        """Window energies, vectors, velocities, out-of-window geometry, outside edges."""
        o, where = self.opts, f"k = ({k[0]:.6g}, {k[1]:.6g})"
        h, dx, dy = self._sparse.values(k, self._span)
        h_local = self._local_rows(h)
        si.load(h)
        energies, local = self._window_pairs(si, h_local, where)
        n_all = energies.size
        full = allgather_rows(self.comm, local)
        nev = o.nev
        order = np.argsort(energies[:nev], kind="stable")
        win = np.concatenate([order, np.arange(nev, n_all)])
        energies, full, local = energies[win], full[:, win], local[:, win]
        if not velocities:  # eigenvectors only (link variables at plaquette corners)
            self.iterations["vectors_only"] += 1
            return (energies[:nev], full[:, :nev], None, None, None,
                    _edges(energies[:nev], energies[nev:]))
        dvec = [self._local_rows(v) @ full for v in (dx, dy)]  # local rows of ∂_iH V
        vel = np.stack([allreduce_array(self.comm, local.conj().T @ dv) for dv in dvec])
        metric, curv = self._outside_geometry(si, energies, vel, local, dvec, where)
        self.iterations["k"] += 1
        return (energies[:nev], full[:, :nev], vel[:, :nev, :nev], metric, curv,
                _edges(energies[:nev], energies[nev:]))

    def _window_pairs(self, si: ShiftInvert, h_local: sp.csr_matrix, where: str
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs nearest the target (window first) at a safe shift (solvers/safe_shift.py).

        Collective over the pool: every decision is taken on pool-identical numbers.
        Raises ArithmeticError naming the k-point, the shifts tried and what to change.
        """
        o, report = self.opts, self.shifts
        limit = RESIDUAL_FACTOR * o.tol
        rowsum = np.asarray(abs(h_local).sum(axis=1)).ravel()
        norm_h = allreduce_max(self.comm, float(rowsum.max(initial=0.0)))
        sigma: float | None = o.target
        attempts: list[tuple[float, str]] = []
        estimates = None
        report.kpoints += 1
        while sigma is not None and len(attempts) < safe_shift.MAX_SHIFTS:
            nwant, reason = o.nev + o.n_pad, None
            try:
                si.factor(sigma)
                report.factorisations += 1
                values, vectors, errors, its = _nearest(nwant, sigma, *si.pairs(h_local, where,
                                                                                nwant))
            except ArithmeticError as exc:  # a singular factorisation, a broken Krylov block
                reason = str(exc)
            grown, padded = 0, False
            while reason is None:
                self.iterations["eps"] += its
                estimates = values
                reason = safe_shift.problem(values, errors, sigma, o, limit, where)
                cover, side = ((0, 0) if reason else
                               safe_shift.shortfall(values, sigma, o, self._sparse.norb))
                more = cover if grown < safe_shift.MAX_GROW else 0
                if not padded:
                    more, padded = max(more, side), side > 0
                if not more:
                    break
                nwant, grown = nwant + more, grown + 1
                report.grown += 1
                values, vectors, errors, its = _nearest(nwant, sigma,
                                                        *si.pairs(h_local, where, nwant))
            if (reason is None and values.size < self._sparse.norb
                    and not safe_shift.covered(values, sigma, o)):
                raise ArithmeticError(f"the {o.nev} eigenvalues nearest the target at {where} "
                                      f"are not certified by {values.size} pairs at shift "
                                      f"{sigma:.6g} meV; raise solver.pad")
            if reason is None:
                if sigma != o.target:
                    report.shifted += 1
                    report.max_offset = max(report.max_offset, abs(sigma - o.target))
                return self._select(values, vectors, where)
            attempts.append((sigma, reason))
            sigma = safe_shift.next_shift(o.target, estimates, norm_h, [a[0] for a in attempts])
        raise ArithmeticError(safe_shift.no_shift_message(where, o.target, attempts))

    def _local_rows(self, local: np.ndarray) -> sp.csr_matrix:
        """This rank's rows of a pattern matrix as SciPy CSR (global columns), from the
        values of its own entries (``values(k, span)``)."""
        lo, hi = self._rows
        return sp.csr_matrix((local, self._cols, self._ptr), shape=(hi - lo, self._sparse.norb))

    def _select(self, values: np.ndarray, vectors: np.ndarray, where: str
                ) -> tuple[np.ndarray, np.ndarray]:
        """Computed pairs, the window first (whole clusters nearest the target,
        safe_shift.window_order); refuses a window edge inside a degenerate cluster."""
        o = self.opts
        order, cut = safe_shift.window_order(values, o.target, o.nev, o.cluster_tol)
        values, vectors = values[order], vectors[:, order]
        inside, rest = values[: o.nev], values[o.nev :]
        gap = np.min(np.abs(rest[:, None] - inside[None, :]))
        if gap < o.edge_tol:
            raise ArithmeticError(
                f"the window edge cuts a degenerate cluster at {where} (an eigenvalue "
                f"{gap:.3g} meV from a window eigenvalue is outside); change solver.nev")
        if cut:
            self.shifts.cut += 1
            self.shifts.min_cut_gap = min(self.shifts.min_cut_gap, float(gap))
        return values, vectors

    def _outside_geometry(self, si, energies, vel, local, dvec, where):
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
            rest, its = rest_tensor(self.comm, solve, local, rhs, shifts, tol, where)
            tensor = tensor + rest
            self.iterations["sternheimer"] += its
        return tensor.real, -2.0 * tensor[:, 2].imag


def _nearest(nwant: int, sigma: float, values, vectors, errors, its):
    """The ``nwant`` converged pairs nearest σ: Krylov–Schur may converge a few more, not
    necessarily the next nearest, and the Sternheimer bound (solvers/sternheimer.py) needs
    every uncomputed eigenvalue farther from σ than every computed one."""
    keep = np.argsort(np.abs(values - sigma), kind="stable")[:nwant]
    return values[keep], vectors[:, keep], errors[keep], its


def _edges(window: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Nearest computed eigenvalue below and above the window (NaN if none)."""
    below, above = rest[rest < window.min()], rest[rest > window.max()]
    return np.array([below.max() if below.size else np.nan,
                     above.min() if above.size else np.nan])
