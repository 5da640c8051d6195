"""Reduced-basis accelerator for windowed solves: Rayleigh–Ritz with a residual certificate.

Theory §5.10 (measured there and in docs/performance.md §8.5: no speed-up on the TBG cells
tried; opt-in, ``[solver] accelerate = "basis"``). A batch of k-points (one k-pass block) is
solved in order. The first k-point is solved in full (solvers/slepc.py, the *anchor*); its
computed eigenvectors (window + padding) and Sternheimer solutions (theory §5.4) become the
columns of an orthonormal basis V, joined by the window and Sternheimer vectors of the last
``history`` accelerated k-points. At a later k-point, H(k)V is one sparse product; harmonic
Ritz values at the target choose the window's span, plain Rayleigh–Ritz in it the pairs
(θ, y). The certificate, in the full space:

* eigenpairs: r_n = ‖H y_n − θ_n y_n‖; |θ_n − λ_n| ≤ min(r_n, r_n²/g_n) ≤ ``energy_tol`` and
  sin∠(y_n, u_n) ≤ r_n/g_n ≤ ``tol`` for each window band (g_n: gap of θ_n to the other Ritz
  values); the eigenvalues at the window's edges to EDGE_ENERGY_TOL;
* out-of-window metric, mode ``sternheimer = "factor"`` (default): H(k) is factorised at the
  anchor's shift and the full solve's conjugate gradients (solvers/sternheimer.py) solve the
  Sternheimer equations with Q = 1 − P_W to the full solve's tolerance; mode ``"basis"``: the
  Galerkin solution in span(V) with its full-space residual ρ, ‖x − x*‖ ≤ ‖ρ‖/g_out.

While the certificate fails, Davidson steps add the preconditioned residuals (the current
factorisation) to a copy of V, at most ``refine`` times; then the k-point is solved in full
and becomes the new anchor. The basis depends only on the batch's k-points and their order,
never on the rank layout: blocks are fixed by the grid and ``[run] chunk``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
from mpi4py import MPI

from qgt_mpi.parallel import allgather_rows, allreduce_array
from qgt_mpi.solvers import safe_shift
from qgt_mpi.solvers.base import Eigenpairs, Eigensolver
from qgt_mpi.solvers.shift_invert import ShiftInvert
from qgt_mpi.solvers.slepc import SlepcSolver, _edges, _Point, stack_points
from qgt_mpi.solvers.sternheimer import cg_tolerance, rest_tensor
from qgt_mpi.solvers.window import RESIDUAL_FACTOR

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel

EDGE_ENERGY_TOL = 1e-3  # meV: the eigenvalues at the window's edges (isolation test, §5.5)
DROP = 1e-8  # a new basis column whose part outside the basis is below this is dropped


@dataclass(frozen=True)
class AccelOptions:
    """``[solver] accelerate*`` (docs/input.md): ``tol`` bounds the eigenvector angle and the
    relative error of the out-of-window metric, ``energy_tol`` [meV] the eigenvalue error;
    ``max_basis``: no columns are added beyond it; ``grow``: full solves add their vectors."""

    tol: float = 1e-8
    energy_tol: float = 1e-6
    max_basis: int = 400
    refine: int = 8
    history: int = 2
    sternheimer: str = "factor"


@dataclass
class AccelReport:
    """What the accelerator did on this pool: k-points by Rayleigh–Ritz and in full, the
    largest certified bounds, the largest basis."""

    ritz: int = 0
    full: int = 0
    max_basis: int = 0
    max_angle: float = 0.0
    max_energy_error: float = 0.0
    max_metric_error: float = 0.0
    refinements: int = 0
    factorisations: int = 0
    cg_iterations: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def failed(self, why: str) -> None:
        self.reasons[why] = self.reasons.get(why, 0) + 1


class ReducedBasis:
    """Decorate a SLEPc window solver with Rayleigh–Ritz in a per-batch reduced basis."""

    def __init__(self, inner: SlepcSolver, options: AccelOptions) -> None:
        self.inner, self.opts = inner, options
        self.name = f"{inner.name}+basis"
        self.comm: MPI.Comm = inner.comm
        self.report = AccelReport()
        self._last_failure = ""
        self._si: ShiftInvert | None = None
        self._excess = 0.0  # how far the last Rayleigh–Ritz missed the certificate (ratio)

    @property
    def windowed(self) -> bool:
        return True

    @property
    def core(self) -> SlepcSolver:
        return self.inner

    def serial(self) -> Eigensolver:
        """The same accelerator over the inner window on COMM_SELF."""
        return ReducedBasis(self.inner.serial(), self.opts)

    def bands(self, model: BlochModel) -> int:
        return self.inner.bands(model)

    def check(self, model: BlochModel) -> None:
        self.inner.check(model)

    def describe(self) -> dict[str, object]:
        o = self.opts
        return {**self.inner.describe(), "solver": self.name, "accelerate": "basis",
                "accelerate_tol": o.tol, "accelerate_energy_tol_meV": o.energy_tol,
                "accelerate_max_basis": o.max_basis}

    # ------------------------------------------------------------------------------------
    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Window eigenpairs of a batch (nk, 2), by Rayleigh–Ritz where certified.
        Collective over the pool."""
        core = self.inner
        core._bind(model)
        layout = core._layout
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        nb, nk = core.opts.nev, len(k)
        vectors = np.empty((nk, layout.n, nb), complex)
        points: list[_Point] = []
        anchor: np.ndarray | None = None  # basis of the last full solve (norb, ·), replicated
        recent: list[list[np.ndarray]] = []  # window + Sternheimer vectors of the last points
        si: ShiftInvert | None = None
        sigma = core.opts.target  # the shift of the last full solve
        try:
            for i, kk in enumerate(k):
                point = None
                if (anchor is not None and si is not None
                        and (not velocities or self._factored(si, kk, sigma))):
                    basis = self._extend(anchor, [v for r in recent for v in r], limit=False)
                    self._si = si
                    point, extra = self._refined(kk, basis, velocities, si.factor_solve())
                    if point is not None:
                        recent = [*recent, extra][-self.opts.history :]
                if point is None:
                    if si is None:
                        si = ShiftInvert(core.PETSc, core.SLEPc, self.comm, core.opts, layout,
                                         core.opts.block_size(layout.n))
                    core.keep = []
                    try:
                        point = core._guarded(si, kk, velocities)
                    finally:
                        kept, core.keep = core.keep, None
                    self.report.full += 1
                    anchor, recent, sigma = self._extend(None, kept), [], si.sigma
                else:
                    self.report.ritz += 1
                vectors[i] = point.vectors
                points.append(point)
        finally:
            if si is not None:
                si.destroy()
        return stack_points(points, vectors, velocities, core._resolve is not None)

    def _factored(self, si: ShiftInvert, k: np.ndarray, sigma: float) -> bool:
        """Mode "factor": H(k) − σ factorised at the last full solve's shift (for the
        Sternheimer part and the Davidson steps); False when that fails (the k-point is then
        solved in full). Mode "basis": the last full solve's factorisation is kept. Collective."""
        if self.opts.sternheimer != "factor":
            return True
        h = self.inner._sparse.values(k, self.inner._layout.span)[0]
        try:
            si.load(h)
            si.factor(sigma)
        except ArithmeticError:
            self.report.failed("factorisation")
            return False
        self.report.factorisations += 1
        return True

    def _refined(self, k: np.ndarray, basis: np.ndarray, velocities: bool,
                 precond: Callable[[np.ndarray], np.ndarray]
                 ) -> tuple[_Point | None, list[np.ndarray]]:
        """Rayleigh–Ritz at ``k``; while the certificate fails, the basis (a copy for this
        k-point) is enriched by the preconditioned residuals M r, M = (H(k₀) − σ)⁻¹ the
        factorisation of the last full solve k₀ of the batch (a Davidson step), at most
        ``refine`` times. Returns the point (None: not certified) and its window and
        Sternheimer vectors (full rows; the next k-point's warm start). Collective."""
        extra: list[np.ndarray] = []
        history: list[float] = []
        for step in range(self.opts.refine + 1):
            self._last_failure = ""
            point, corrections, extra = self._ritz(k, basis, velocities)
            if point is not None or corrections is None:
                break
            history.append(self._excess)
            if step == self.opts.refine or _hopeless(history, self.opts.refine - step):
                break
            new = allgather_rows(self.comm, precond(np.ascontiguousarray(corrections)))
            basis = self._extend(basis, [new], limit=False)
            self.report.refinements += 1
        self.report.max_basis = max(self.report.max_basis, basis.shape[1])
        if point is None:
            self.report.failed(self._last_failure)
        return point, extra

    def _extend(self, basis: np.ndarray | None, parts: list[np.ndarray],
                limit: bool = True) -> np.ndarray:
        """``basis`` with the new columns ``parts`` (full rows) orthonormalised against it
        (twice), dependent columns dropped (beyond ``max_basis`` when ``limit``); computed
        on the pool root, broadcast."""
        comm = self.comm
        if not parts:
            assert basis is not None
            return basis
        new = np.concatenate(parts, axis=1)
        room = self.opts.max_basis - (0 if basis is None else basis.shape[1])
        if not limit:
            room = new.shape[1]
        if basis is not None and room <= 0:
            return basis
        if comm.rank == 0:
            new = new / np.maximum(np.linalg.norm(new, axis=0), np.finfo(float).tiny)
            if basis is not None:
                for _ in range(2):
                    new = new - basis @ (basis.conj().T @ new)
            u, s, _ = np.linalg.svd(new, full_matrices=False)
            u = u[:, s > DROP][:, : max(room, 0)]
            out = u if basis is None else np.concatenate([basis, u], axis=1)
            out = np.ascontiguousarray(out)
            shape = out.shape
        else:
            out, shape = None, None
        shape = comm.bcast(shape, root=0)
        if comm.rank != 0:
            out = np.empty(shape, complex)
        comm.Bcast(out, root=0)
        assert out is not None
        return out

    def _ritz(self, k: np.ndarray, basis: np.ndarray, velocities: bool
              ) -> tuple[_Point | None, np.ndarray | None, list[np.ndarray]]:
        """Rayleigh–Ritz at ``k`` in ``basis``: the point, or None and the local rows of the
        residuals that failed the certificate (None: no correction helps); and the point's
        window and Sternheimer vectors (full rows). Collective.

        The window is chosen by harmonic Ritz values at the target (theory §5.10: plain Ritz
        values of an interior window have spurious values in the gap, mixtures of bands on
        both sides; harmonic ones approach the target only as far as eigenvalues do), then
        refined by plain Rayleigh–Ritz in the span of the nev + pad harmonic vectors nearest
        the target.
        """
        core, o, rep = self.inner, self.inner.opts, self.report
        comm, layout = self.comm, core._layout
        nev, nsel = o.nev, o.nev + o.n_pad
        nb = basis.shape[1]
        if nb < nsel + 1:
            self._last_failure = "basis smaller than the window"
            return None, None, []
        h, dx, dy = core._sparse.values(k, layout.span)
        h_local = layout.local_rows(h)
        mine = basis[layout.lo : layout.hi]
        hv = h_local @ basis  # local rows of H V
        a = allreduce_array(comm, mine.conj().T @ hv)
        a = 0.5 * (a + a.conj().T)
        w = hv - o.target * mine  # (H − τ) V
        g = allreduce_array(comm, w.conj().T @ w)
        g = 0.5 * (g + g.conj().T)
        try:  # (A − τ) c = ν G c, ν = 1/(θ̃ − τ): the largest |ν| are nearest τ
            nu, ch = scipy.linalg.eigh(a - o.target * np.eye(nb), g)
        except np.linalg.LinAlgError:
            self._last_failure = "harmonic Ritz"
            return None, None, []
        pick = np.argsort(-np.abs(nu), kind="stable")[:nsel]
        cs, _ = np.linalg.qr(ch[:, pick])  # orthonormal coordinates of the selected span
        theta, z = np.linalg.eigh(cs.conj().T @ a @ cs)
        cs = cs @ z
        order, _cut = safe_shift.window_order(theta, o.target, nev, o.cluster_tol)
        win = order[:nev][np.argsort(theta[order[:nev]], kind="stable")]
        pad = order[nev:]
        energies, c_win, t_pad, c_pad = theta[win], cs[:, win], theta[pad], cs[:, pad]
        edges = _edges(energies, t_pad)
        if np.min(np.abs(t_pad[:, None] - energies[None, :])) < o.edge_tol:
            self._last_failure = "edge"
            return None, None, []
        # residuals of the window pairs and of the two edge pairs (full space, pool-reduced)
        edge_idx = [int(np.flatnonzero(t_pad == e)[0]) for e in edges if np.isfinite(e)]
        c_chk = np.concatenate([c_win, c_pad[:, edge_idx]], axis=1)  # window, then edges
        t_chk = np.concatenate([energies, t_pad[edge_idx]])
        y_loc = mine @ c_chk
        r_loc = hv @ c_chk - y_loc * t_chk
        resid = np.sqrt(allreduce_array(comm, np.sum(np.abs(r_loc) ** 2, axis=0)))
        gap = np.array([np.min(np.abs(np.delete(theta, np.flatnonzero(theta == t)[:1]) - t))
                        for t in t_chk])
        angle = resid / np.maximum(gap, np.finfo(float).tiny)
        e_err = np.minimum(resid, resid * angle)
        angle = angle[:nev]  # vectors of the window; eigenvalues of the window and its edges
        e_err = np.maximum(e_err[:nev], e_err[nev:].max(initial=0.0) * self.opts.energy_tol
                           / EDGE_ENERGY_TOL)  # the edges to EDGE_ENERGY_TOL
        eig_ok = np.max(angle) <= self.opts.tol and np.max(e_err) <= self.opts.energy_tol
        full = basis @ c_win  # window Ritz vectors, replicated
        groups = None
        if eig_ok and core._resolve is not None:
            groups = _labels(core, k, energies, full)
            if groups is None:
                self._last_failure = "degenerate group"
                return None, None, []
        metric_err, x = 0.0, None
        point = _Point(energies, full, outside=edges, groups=groups)
        if velocities:
            u_loc = y_loc[:, :nev]
            dvec = [layout.local_rows(v) @ full for v in (dx, dy)]  # local rows ∂_iH U
            vel = np.stack([allreduce_array(comm, u_loc.conj().T @ dv) for dv in dvec])
            if self.opts.sternheimer == "factor":
                if not eig_ok:
                    self._excess = float(max(float(np.max(angle)) / self.opts.tol,
                                             float(np.max(e_err)) / self.opts.energy_tol))
                    self._last_failure = "eigenpair residual"
                    return None, r_loc, []
                assert self._si is not None
                dist = np.abs(np.concatenate([energies, t_pad]) - self._si.sigma)
                if dist.min() * safe_shift.SAFE_RATIO < dist.max():  # theory §5.9a
                    self._last_failure = "shift"  # the full solve moves it
                    return None, None, []
                return self._factored_point(k, energies, full, y_loc[:, :nev], edges, groups,
                                            (dx, dy), float(np.max(angle)),
                                            float(np.max(e_err)))
            if o.out_of_window:  # Galerkin in the complement of the window in span(V)
                c_out, t_out = _complement(a, c_win)
            else:  # the full solve's padding pairs only
                c_out, t_out = c_pad, t_pad
            tensor, metric_err, rho, x = self._outside(c_out, t_out, energies, mine, hv, dvec,
                                                      edges)
            if metric_err > self.opts.tol and rho is not None:  # both corrections at once
                r_loc = np.concatenate([r_loc, rho], axis=1) if not eig_ok else rho
                eig_ok, self._last_failure = False, "out-of-window metric"
            point = _Point(energies, full, vel, tensor.real, -2.0 * tensor[:, 2].imag, edges,
                           groups)
        self._excess = float(max(float(np.max(angle)) / self.opts.tol,
                           float(np.max(e_err)) / self.opts.energy_tol,
                           metric_err / self.opts.tol))
        if not eig_ok:
            self._last_failure = self._last_failure or "eigenpair residual"
            return None, r_loc, []
        rep.max_angle = max(rep.max_angle, float(np.max(angle)))
        rep.max_energy_error = max(rep.max_energy_error, float(np.max(e_err)))
        rep.max_metric_error = max(rep.max_metric_error, metric_err)
        extra = [full] if x is None else [full, basis @ x]
        return point, None, extra

    def _factored_point(self, k: np.ndarray, energies: np.ndarray, full: np.ndarray,
                        u_loc: np.ndarray, edges: np.ndarray, groups: np.ndarray | None,
                        dh: tuple[np.ndarray, np.ndarray], angle: float, e_err: float
                        ) -> tuple[_Point | None, np.ndarray | None, list[np.ndarray]]:
        """Mode "factor": the certified window with its out-of-window geometry by the full
        solve's CG (solvers/sternheimer.py) on H(k) factorised at this k, with Q = 1 − P_W
        (no padding pairs: they would need certified vectors too) and the CG tolerance of
        the full solve, its condition bound from the nearest eigenvalues outside the window
        (the certified edges). Collective."""
        core, comm, rep, o = self.inner, self.comm, self.report, self.inner.opts
        si = self._si
        assert si is not None
        dvec = [core._layout.local_rows(v) @ full for v in dh]  # local rows of ∂_iH U
        vel = np.stack([allreduce_array(comm, u_loc.conj().T @ dv) for dv in dvec])
        tensor = np.zeros((o.nev, 3), complex)
        kept: list[np.ndarray] = []
        if o.out_of_window:
            shifts = energies - si.sigma
            near = np.abs(edges[np.isfinite(edges)] - si.sigma)
            reach = float(np.min(near)) if near.size else float(np.max(np.abs(shifts)))
            accuracy = o.metric_tol if o.metric_tol is not None else RESIDUAL_FACTOR * o.tol
            tol = cg_tolerance(shifts, reach, accuracy)
            try:
                tensor, its = rest_tensor(comm, si.factor_solve(), u_loc,
                                          np.stack(dvec), shifts, tol,
                                          f"k = ({k[0]:.6g}, {k[1]:.6g})", kept)
            except ArithmeticError:
                self._last_failure = "sternheimer"
                return None, None, []
            rep.cg_iterations += its
            rep.max_metric_error = max(rep.max_metric_error, accuracy)  # the CG's bound
        rep.max_angle = max(rep.max_angle, angle)
        rep.max_energy_error = max(rep.max_energy_error, e_err)
        point = _Point(energies, full, vel, tensor.real, -2.0 * tensor[:, 2].imag, edges, groups)
        return point, None, [full, *(allgather_rows(comm, x) for x in kept)]

    def _outside(self, c_out: np.ndarray, t_out: np.ndarray, energies: np.ndarray,
                 mine: np.ndarray, hv: np.ndarray, dvec: list[np.ndarray],
                 edges: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray]:
        """Out-of-window tensor (nev, 3) [xx, yy, xy] of the window bands from the Ritz pairs
        (t_out, V c_out) outside the window, the certified bound on its relative error
        (theory §5.10; 0 without the Sternheimer part) and the Sternheimer residuals (local
        rows, 2·nev columns) and Sternheimer vectors (basis coordinates, 2·nev columns).
        Collective."""
        comm, o = self.comm, self.inner.opts
        y_out = mine @ c_out  # local rows of the outside Ritz vectors
        r_out = hv @ c_out - y_out * t_out  # their residual vectors
        err = 0.0
        xs, rhos = [], []
        for dv in dvec:  # ∂_iH U, local rows (nloc, nev)
            v_out = allreduce_array(comm, y_out.conj().T @ dv)  # v_mn, (nout, nev)
            coef = v_out / (energies[None, :] - t_out[:, None])
            xs.append(coef)
            if o.out_of_window:
                # ρ = (1 − P_V) ∂_iH u_n + R_out coef: the Sternheimer residual in full space
                proj = allreduce_array(comm, mine.conj().T @ dv)
                rho = dv - mine @ proj + r_out @ coef
                rhos.append(rho)
                rho_n = np.sqrt(allreduce_array(comm, np.sum(np.abs(rho) ** 2, axis=0)))
                x_n = np.sqrt(np.sum(np.abs(coef) ** 2, axis=0))
                # g_out: distance to the nearest eigenvalues outside the window (the edges)
                near = edges[np.isfinite(edges)]
                g = (np.min(np.abs(energies[None, :] - near[:, None]), axis=0) if near.size
                     else np.min(np.abs(energies[None, :] - t_out[:, None]), axis=0))
                delta = rho_n / (g * np.maximum(x_n, np.finfo(float).tiny))
                err = max(err, float(np.max(2 * delta + delta**2)))
        cx, cy = xs
        tensor = np.stack([np.sum(np.abs(cx) ** 2, axis=0), np.sum(np.abs(cy) ** 2, axis=0),
                           np.sum(cx.conj() * cy, axis=0)], axis=-1)
        return (tensor.astype(complex), err, np.concatenate(rhos, axis=1) if rhos else None,
                c_out @ np.concatenate(xs, axis=1))


def _hopeless(history: list[float], left: int) -> bool:
    """Whether the Davidson steps left cannot reach the certificate at the rate measured over
    the last two steps (the refinement then stops and the k-point is solved in full)."""
    if len(history) < 2 or left <= 0:
        return left <= 0
    rate = history[-1] / max(history[-2], float(np.finfo(float).tiny))
    return rate >= 1.0 or history[-1] * rate**left > 1.0


def _complement(a: np.ndarray, c_win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ritz pairs of ``a`` (the basis' V†HV) in the orthogonal complement of the window
    coordinates ``c_win``: coordinates (nb, nb − nev) and values. Local."""
    nb, nev = c_win.shape
    q, _ = np.linalg.qr(np.concatenate([c_win, np.eye(nb, dtype=complex)], axis=1))
    co = q[:, nev:nb]
    t, z = np.linalg.eigh(co.conj().T @ a @ co)
    return co @ z, t


def _labels(core: SlepcSolver, k: np.ndarray, energies: np.ndarray,
            full: np.ndarray) -> np.ndarray | None:
    """Group labels of the window when no group needs resolving (all −1), else None (the
    k-point is solved in full: a resolved group changes the basis and energies). Local."""
    from qgt_mpi.solvers.resolve import group_rotation

    assert core._resolve is not None
    _rot, _new, labels, _failed = group_rotation(energies, full, core._resolve(k),
                                                 core.opts.cluster_tol)
    return None if labels.max(initial=-1) >= 0 else labels


def summary(comm: MPI.Comm, solver: Eigensolver) -> dict[str, object]:
    """What the accelerator did over the run (pool roots' counts), for /solver. Collective."""
    while not isinstance(solver, ReducedBasis) and hasattr(solver, "inner"):
        solver = solver.inner  # under a decorator (FlatBands)
    rep = solver.report if isinstance(solver, ReducedBasis) else None
    root = rep is not None and solver.comm.rank == 0
    counts = allreduce_array(comm, np.array([rep.ritz, rep.full] if root and rep else [0, 0],
                                            float))
    tops = [comm.allreduce(float(x) if root else 0.0, op=MPI.MAX) for x in
            ((rep.max_basis, rep.max_angle, rep.max_energy_error, rep.max_metric_error)
             if rep is not None else (0, 0, 0, 0))]
    if rep is None:
        return {}
    return {"accelerate_ritz_kpoints": int(counts[0]), "accelerate_full_kpoints": int(counts[1]),
            "accelerate_basis_size": int(tops[0]), "accelerate_max_angle": tops[1],
            "accelerate_max_energy_error_meV": tops[2], "accelerate_max_metric_error": tops[3]}
