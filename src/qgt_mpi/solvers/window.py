"""One k-point's window: shift-and-invert at a safe shift, pairs certified and selected.

The policy (when a shift is unsafe, where the next one goes, when the window is certified,
how clusters at its edge are kept whole) is solvers/safe_shift.py and theory §5.9; this
module runs it on a :class:`~qgt_mpi.solvers.shift_invert.ShiftInvert` for one k-point:
factorise at σ, compute the pairs nearest σ, check them, compute more at the same σ when the
window is not certified or a side of the padding is short, move σ when the factorisation is
unsafe, and finally order the pairs with the window first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qgt_mpi.parallel import allreduce_max
from qgt_mpi.solvers import safe_shift
from qgt_mpi.solvers.shift_invert import Pairs, ShiftInvert

if TYPE_CHECKING:
    from qgt_mpi.solvers.slepc import WindowOptions

RESIDUAL_FACTOR = 100.0  # accepted ‖Hx − λx‖/((‖H‖ + |λ|)‖x‖) in units of tol


def window_pairs(si: ShiftInvert, h_local: sp.csr_matrix, o: WindowOptions, comm: MPI.Comm,
                 norb: int, report: safe_shift.ShiftReport, where: str) -> Pairs:
    """Pairs at a safe shift, the window first; ``iterations`` counts every Krylov solve.

    Collective over the pool ``comm``: every decision is taken on pool-identical numbers.
    ``o`` are the WindowOptions, ``norb`` the matrix size; ``report`` counts what the
    shift choice did. Raises ArithmeticError naming the k-point, the shifts tried and
    what to change.
    """
    total_its = 0
    limit = RESIDUAL_FACTOR * o.tol
    rowsum = np.asarray(abs(h_local).sum(axis=1)).ravel()
    norm_h = allreduce_max(comm, float(rowsum.max(initial=0.0)))
    sigma: float | None = o.target
    attempts: list[tuple[float, str]] = []
    estimates = None
    report.kpoints += 1
    while sigma is not None and len(attempts) < safe_shift.MAX_SHIFTS:
        nwant, reason = o.nev + o.n_pad, None
        pairs: Pairs | None = None
        try:
            si.factor(sigma)
            report.factorisations += 1
            pairs = si.pairs(h_local, where, nwant).nearest(nwant, sigma)
        except ArithmeticError as exc:  # a singular factorisation, a broken Krylov block
            reason = str(exc)
        grown, padded = 0, False
        while pairs is not None and reason is None:
            total_its += pairs.iterations
            estimates = pairs.values
            reason = safe_shift.problem(pairs.values, pairs.errors, sigma, o, limit, where)
            cover, side = ((0, 0) if reason else
                           safe_shift.shortfall(pairs.values, sigma, o, norb))
            more = cover if grown < safe_shift.MAX_GROW else 0
            if not padded:
                more, padded = max(more, side), side > 0
            if not more:
                break
            nwant, grown = nwant + more, grown + 1
            report.grown += 1
            pairs = si.pairs(h_local, where, nwant).nearest(nwant, sigma)
        if pairs is not None and reason is None:
            if pairs.values.size < norb and not safe_shift.covered(pairs.values, sigma, o):
                raise ArithmeticError(f"the {o.nev} eigenvalues nearest the target at {where} "
                                      f"are not certified by {pairs.values.size} pairs at "
                                      f"shift {sigma:.6g} meV; raise solver.pad")
            if sigma != o.target:
                report.shifted += 1
                report.max_offset = max(report.max_offset, abs(sigma - o.target))
            chosen = select(pairs, o, report, where)
            chosen.iterations = total_its
            return chosen
        attempts.append((sigma, reason or "no pairs"))
        sigma = safe_shift.next_shift(o.target, estimates, norm_h, [a[0] for a in attempts])
    raise ArithmeticError(safe_shift.no_shift_message(where, o.target, attempts))


def select(pairs: Pairs, o: WindowOptions, report: safe_shift.ShiftReport,
           where: str) -> Pairs:
    """Computed pairs, the window first (whole clusters nearest the target,
    safe_shift.window_order); refuses a window edge inside a degenerate cluster. Local."""
    order, cut = safe_shift.window_order(pairs.values, o.target, o.nev, o.cluster_tol)
    pairs = pairs.take(order)
    inside, rest = pairs.values[: o.nev], pairs.values[o.nev :]
    gap = np.min(np.abs(rest[:, None] - inside[None, :]))
    if gap < o.edge_tol:
        raise ArithmeticError(
            f"the window edge cuts a degenerate cluster at {where} (an eigenvalue "
            f"{gap:.3g} meV from a window eigenvalue is outside); change solver.nev")
    if cut:
        report.cut += 1
        report.min_cut_gap = min(report.min_cut_gap, float(gap))
    return pairs
