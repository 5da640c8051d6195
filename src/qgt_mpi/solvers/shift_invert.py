"""PETSc objects of the windowed solver, kept for all k-points of one batch (solvers/slepc.py).

H(k) has the same sparsity pattern at every k (models/sparse.py), so one PETSc AIJ matrix
and one Krylov–Schur EPS (shift-and-invert, MUMPS LU) serve a whole batch: per k-point only
the values are refilled. The shift σ of the factorisation is set per k-point by
:meth:`ShiftInvert.factor`; it is the target unless that is unsafe (solvers/safe_shift.py,
theory §5.9). PETSc then keeps the MUMPS analysis (fill-reducing
ordering and symbolic factorisation of H − σ, 0.12 s per k-point at m = 31, 5 % of a
k-point; docs/performance.md §8) and redoes only the numerical factorisation.

Every solve starts from the same vector, a fixed-seed random vector of the full dimension
whose rows each rank slices out. Without it a reused EPS would continue its random stream,
and the converged vectors (to tol, not bitwise) would depend on the k-points solved before
in the batch, hence on the block layout; with it a k-point's result is the same whichever
batch, rank or pool solves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qgt_mpi.parallel import allgather_rows, allreduce_array, allreduce_max, block_range
from qgt_mpi.solvers.block_lanczos import block_lanczos

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import SparseBlochModel
    from qgt_mpi.solvers.slepc import WindowOptions

START_SEED = 20260101  # fixed: the Krylov start vectors are part of the result's definition
MAX_BLOCKS = 40  # default basis limit of block Lanczos, in blocks
# MUMPS controls, entered as -qgt_st_mat_mumps_icntl_N defaults into PETSc's options
# database (an option the user gave wins; PETSc reads them at the analysis).
# ICNTL(6) = 0: no column-permutation preprocessing (maximum transversal). H − σ is Hermitian,
# so structurally symmetric with a zero-free diagonal, and the analysis then orders its own
# pattern: at m = 31 the factors shrink from 1.08e7 to 9.99e6 entries, the elimination from
# 7.75e9 to 6.0e9 flops (MUMPS INFOG(29), RINFOG(3)) and the numerical factorisation from
# 0.85 to 0.69 s of CPU, with window eigenvalues equal to 3e-11 meV (docs/performance.md §8).
# Stability stays with MUMPS's threshold pivoting; every window pair's backward error is
# checked as before.
MUMPS_ICNTL = {6: 0}


@dataclass(frozen=True, eq=False)
class PatternLayout:
    """One pool rank's share of a sparse model's fixed pattern (rows split over the pool).

    n : global matrix size (orbitals); lo, hi : this rank's rows [lo, hi); indptr (hi − lo + 1,)
    and cols : their local CSR row pointer and global column indices (PETSc ints); span : the
    pattern entries of those rows (``model.values(k, span)``).
    """

    n: int
    lo: int
    hi: int
    indptr: np.ndarray
    cols: np.ndarray
    span: slice

    @classmethod
    def of(cls, model: SparseBlochModel, comm: MPI.Comm, int_type: type = np.int64
           ) -> PatternLayout:
        """The balanced row block of ``comm.rank`` (parallel.block_range). Local."""
        lo, hi = block_range(model.norb, comm.size, comm.rank)
        ptr = model.indptr
        return cls(model.norb, lo, hi, (ptr[lo : hi + 1] - ptr[lo]).astype(int_type),
                   model.cols[ptr[lo] : ptr[hi]].astype(int_type),
                   slice(int(ptr[lo]), int(ptr[hi])))

    @property
    def nloc(self) -> int:
        """Rows this rank owns."""
        return self.hi - self.lo

    def local_rows(self, values: np.ndarray) -> sp.csr_matrix:
        """This rank's rows as SciPy CSR (global columns) from the values of its entries."""
        return sp.csr_matrix((values, self.cols, self.indptr), shape=(self.nloc, self.n))


@dataclass
class Pairs:
    """Eigenpairs computed at one shift: ``values`` (m,), ``vectors`` (nloc, m) local rows,
    backward ``errors`` (m,) and the eigensolver's ``iterations``."""

    values: np.ndarray
    vectors: np.ndarray
    errors: np.ndarray
    iterations: int

    def take(self, order: np.ndarray) -> Pairs:
        """The pairs ``order`` (an index array), in that order."""
        return Pairs(self.values[order], self.vectors[:, order], self.errors[order],
                     self.iterations)

    def nearest(self, nwant: int, sigma: float) -> Pairs:
        """The ``nwant`` pairs nearest σ: Krylov–Schur may converge a few more, not
        necessarily the next nearest, and the Sternheimer bound (solvers/sternheimer.py)
        needs every uncomputed eigenvalue farther from σ than every computed one."""
        return self.take(np.argsort(np.abs(self.values - sigma), kind="stable")[:nwant])


def effective_options(PETSc: Any) -> None:
    """Set the code's MUMPS defaults (:data:`MUMPS_ICNTL`) in PETSc's options database
    unless given, and check and remember its ``qgt_`` entries (options.check_database: also
    PETSC_OPTIONS and .petscrc, tuning only). Local.

    Called when a solver is bound to a model on every rank of every pool, not only when a
    rank first solves: the effective options written to /solver (``petsc_options``) are
    then the same on every rank, also on ranks that never solve (more pools than blocks),
    as the collective metadata of parallel HDF5 requires.
    """
    from qgt_mpi.solvers.options import check_database

    options = PETSc.Options()
    for key, value in MUMPS_ICNTL.items():
        if not options.hasName(f"qgt_st_mat_mumps_icntl_{key}"):
            options.setValue(f"qgt_st_mat_mumps_icntl_{key}", value)
    check_database(options.getAll())


class ShiftInvert:
    """A matrix H(k) and its shift-invert Krylov–Schur solver, refilled per k-point.

    Parameters
    ----------
    PETSc, SLEPc : the imported petsc4py/slepc4py modules.
    comm : the pool communicator (mpi4py).
    opts : WindowOptions (nev, pad, ncv, tol, max_it, target).
    block : block size of block Lanczos (solvers/block_lanczos.py), or 0 for SLEPc's
        Krylov–Schur.
    layout : this rank's share of the model's pattern (:class:`PatternLayout`).

    Notes
    -----
    Creation, :meth:`load` and :meth:`destroy` are collective over the pool; call
    :meth:`destroy` on every rank when the batch is done.
    """

    def __init__(self, PETSc: ModuleType, SLEPc: ModuleType, comm: MPI.Comm,
                 opts: WindowOptions, layout: PatternLayout, block: int = 0) -> None:
        self.PETSc, self.SLEPc, self.comm, self.opts = PETSc, SLEPc, comm, opts
        self.pcomm = PETSc.Comm(comm)
        self.layout = layout
        self.block = block  # > 0: block Lanczos with this block size; 0: SLEPc Krylov–Schur
        # petsc4py/slepc4py objects (no type information): created by the first load()
        self.mat: Any = None
        self.eps: Any = None
        self.sigma = float(opts.target)  # shift of the current factorisation [meV]
        self._nwant = opts.nev + opts.n_pad
        n = layout.n
        start = np.random.default_rng(START_SEED).standard_normal((2, n, max(block, 1)))
        self._start = (start[0] + 1j * start[1])[layout.lo : layout.hi]

    def load(self, local: np.ndarray) -> None:
        """Set H(k) from this rank's pattern values (its rows' slice of the (nnz,) values).

        Nothing is factorised until :meth:`factor`. Collective.
        """
        lay = self.layout
        if self.mat is None:
            self.mat = self.PETSc.Mat().createAIJ(
                size=((lay.nloc, lay.n), (lay.nloc, lay.n)), comm=self.pcomm,
                csr=(lay.indptr, lay.cols, local))
            self.mat.assemble()
            self.eps = self._eps()
        else:  # same pattern: values only, so PETSc keeps the symbolic factorisation
            self.mat.setValuesCSR(lay.indptr, lay.cols, local)
            self.mat.assemble()
            self.eps.setOperators(self.mat)

    def factor(self, sigma: float) -> None:
        """Factorise H − σ with MUMPS (the analysis of the pattern is reused). Collective.

        Raises ArithmeticError when PETSc/MUMPS refuses the factorisation (e.g. an exactly
        singular H − σ); every pool rank sees the same MUMPS status, so all raise together.
        """
        self.sigma = float(sigma)
        # A set-up ST keeps its factorisation whatever the new shift: the operator is set
        # again (values unchanged, so MUMPS keeps the analysis and refactorises numerically).
        self.eps.setOperators(self.mat)
        self.eps.setTarget(self.sigma)  # the order of the pairs (nearest σ first)
        self.eps.getST().setShift(self.sigma)
        try:
            self.eps.setUp()
            self.eps.getST().getKSP().setUp()
        except self.PETSc.Error as exc:
            raise ArithmeticError(f"MUMPS factorisation of H - sigma failed at sigma = "
                                  f"{self.sigma:.6g} meV: {_last_line(exc)}") from None

    def _restart(self) -> None:
        """The fixed start vector as the next Krylov–Schur solve's initial space."""
        if self.block:
            return
        vec = self.mat.createVecLeft()
        vec.setArray(self._start[:, 0])
        self.eps.setInitialSpace([vec])
        vec.destroy()

    def pairs(self, h_local: sp.csr_matrix, where: str, nwant: int) -> Pairs:
        """At least ``nwant`` pairs nearest σ (fewer only if the method failed), with local
        vectors (nloc, nconv). Collective.

        Raises ArithmeticError (naming ``where``) when the eigensolver fails.
        """
        if self.block:
            try:
                return self._block_pairs(h_local, nwant)
            except ArithmeticError:  # e.g. degenerate clusters wider than the block (folded
                if self.opts.method != "auto":  # supercells): with method "auto", Krylov–
                    raise  # Schur on the same factorisation; an explicit "block" refuses
        if nwant != self._nwant:  # more pairs at the same σ: the factorisation is kept
            self._nwant = nwant
            self.eps.setDimensions(nwant, self.opts.ncv or self.PETSc.DECIDE)
        self._restart()
        try:
            self.eps.solve()
        except self.PETSc.Error as exc:
            raise ArithmeticError(f"SLEPc failed at {where}: {_last_line(exc)}") from None
        eps, vec = self.eps, self.mat.createVecLeft()
        values: list[float] = []
        columns: list[np.ndarray] = []
        errors: list[float] = []
        for i in range(eps.getConverged()):
            values.append(eps.getEigenpair(i, vec).real)
            columns.append(vec.getArray().copy())
            errors.append(eps.computeError(i, self.SLEPc.EPS.ErrorType.BACKWARD))
        vec.destroy()
        vectors = np.column_stack(columns) if columns else np.zeros((len(self._start), 0))
        return Pairs(np.array(values), vectors, np.array(errors), int(eps.getIterationNumber()))

    def _block_pairs(self, h_local: sp.csr_matrix, nwant: int) -> Pairs:
        """Block Lanczos pairs with their true backward errors ‖Hx − λx‖/((‖H‖_∞ + |λ|)‖x‖)."""
        o, comm = self.opts, self.comm
        rowsum = np.asarray(abs(h_local).sum(axis=1)).ravel()
        norm_h = allreduce_max(comm, float(rowsum.max(initial=0.0)))
        values, vectors, steps = block_lanczos(
            comm, self.factor_solve(), self._start, nwant, self.sigma, o.tol, norm_h,
            o.max_it or MAX_BLOCKS)
        resid = h_local @ allgather_rows(comm, vectors) - vectors * values
        norms = np.sqrt(allreduce_array(comm, np.sum(np.abs(resid) ** 2, axis=0)))
        return Pairs(values, vectors, norms / (norm_h + np.abs(values)), steps)

    def _eps(self) -> Any:
        """Krylov–Schur, shift-invert (σ set by :meth:`factor`), MUMPS LU; -qgt_ options."""
        SLEPc, o = self.SLEPc, self.opts
        eps = SLEPc.EPS().create(self.pcomm)
        eps.setOperators(self.mat)
        eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
        eps.setType(SLEPc.EPS.Type.KRYLOVSCHUR)
        eps.setDimensions(o.nev + o.n_pad, o.ncv or self.PETSc.DECIDE)
        eps.setTarget(o.target)
        eps.setWhichEigenpairs(SLEPc.EPS.Which.TARGET_MAGNITUDE)
        eps.setTolerances(o.tol, o.max_it or self.PETSc.DEFAULT)
        st = eps.getST()
        st.setType(SLEPc.ST.Type.SINVERT)
        ksp = st.getKSP()
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
        eps.setOptionsPrefix("qgt_")
        effective_options(self.PETSc)
        eps.setFromOptions()
        return eps

    def factor_solve(self) -> Callable[[np.ndarray], np.ndarray]:
        """X ↦ (H − σ)⁻¹ X for local row blocks (nloc, ncol): one MUMPS multi-RHS solve with
        the factorisation of the last :meth:`factor`. Collective when called."""
        PETSc, pcomm, n = self.PETSc, self.pcomm, self.layout.n
        factor = self.eps.getST().getKSP().getPC().getFactorMatrix()

        def solve(x: np.ndarray) -> np.ndarray:
            nloc, ncol = x.shape
            rhs = PETSc.Mat().createDense(((nloc, n), (None, ncol)), comm=pcomm,
                                          array=np.asfortranarray(x))
            out = PETSc.Mat().createDense(((nloc, n), (None, ncol)), comm=pcomm)
            out.setUp()
            factor.matSolve(rhs, out)
            result = out.getDenseArray().copy()
            rhs.destroy()
            out.destroy()
            return result

        return solve

    def destroy(self) -> None:
        """Free the EPS (with its factorisation) and the matrix. Collective."""
        for obj in (self.eps, self.mat):
            if obj is not None:
                obj.destroy()
        self.eps = self.mat = None


def _last_line(exc: Exception) -> str:
    """The last non-empty line of a PETSc error message (the reason)."""
    lines = [ln.strip("[0] ") for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
