"""The shift of shift-and-invert: never on an eigenvalue, the window still nearest the target.

The window is the ``nev`` eigenvalues nearest the target τ (theory §5). Shift-and-invert
finds them as the largest eigenvalues θ = 1/(λ − σ) of M = (H − σ)⁻¹, and σ = τ is the natural
choice, but not a safe one: a Dirac point at the moiré K or the chiral flat bands sit exactly
at the charge-neutrality target. With δ = min |λ − σ| and R = max |λ − σ| over the computed
pairs, the near-null direction of H − σ pollutes every solve, and the backward error of the
pairs far from σ grows with R/δ (theory §5.9). Measured on the BM model at K (θ = 1.05°,
4 shells, 244 states, ‖H‖_∞ = 1879 meV, nev = 8, pad = 4, R ≈ 220 meV; tol = 1e-10):

    R/δ          2.2e3    2.2e4    2.2e5    2.2e6   2.2e7   2.3e9 (σ = τ = Dirac point)
    Krylov–Schur 1.3e-13  3.4e-13  1.2e-11  1.6e-11 4.2e-9  6.5e-4
    block (b=4)  6.6e-14  3.1e-12  1.2e-10  2.6e-8  fails   rank-deficient block

(largest backward error of a window pair; the chiral magic-angle model gives the same
picture). A factorisation is therefore accepted when R/δ ≤ ``SAFE_RATIO`` = 1e4 and every
window pair passes the backward-error check; otherwise σ moves off the target by
R/``OFFSET_RATIO`` times a golden-ratio ladder (+, −, larger), each candidate first tested
against the eigenvalue estimates already in hand, and the solve is repeated. The window is
then selected by distance to τ, not σ: if every eigenvalue within R of σ is computed (the
premise of any Krylov window solver), every eigenvalue within R − |σ − τ| of τ is too, so the
``nev`` nearest τ are certified when the farthest lies inside that radius; otherwise more
pairs are computed at the same σ (at most ``MAX_GROW`` times); the same radius certifies
that no uncomputed eigenvalue lies within ``edge_tol`` of the window, so the refusal of a
window edge inside a degenerate cluster holds on both sides. The padding is split around the
window: where the nearest pairs leave one side empty, 2⌊pad/2⌋ more are computed once (a
window at a spectrum edge keeps what there is). An even ⌊pad/2⌋ split at every k was measured
to cost a second Krylov solve at most k-points of a disordered supercell (iterations per
k-point 2.5–4 → 5–8 at 50–392 orbitals), for no gain in accuracy (the padding enters
exactly). A run stops only when no shift in the ladder works, and the message lists the shifts
tried and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel import allreduce_array

if TYPE_CHECKING:
    from qgt_mpi.solvers.base import Eigensolver
    from qgt_mpi.solvers.slepc import WindowOptions

SAFE_RATIO = 1e4  # largest accepted R/δ (table above: backward error ≤ 3e-12)
OFFSET_RATIO = 1e3  # a moved shift sits about R/OFFSET_RATIO from the target (R/δ ≈ 1e3)
SPREAD_FLOOR = 1e-6  # estimates spread less than this × ‖H‖_∞: one cluster (next_shift)
GOLDEN = 0.6180339887498949  # offsets are irrational multiples: no "nice" energy is hit
MAX_SHIFTS = 6  # factorisations tried per k-point
MAX_GROW = 3  # re-solves at one shift for more pairs to certify the window


@dataclass
class ShiftReport:
    """What the shift choice did on this pool (counts over the k-points it solved)."""

    kpoints: int = 0
    shifted: int = 0  # k-points solved at σ ≠ τ
    factorisations: int = 0
    grown: int = 0  # re-solves for more pairs
    max_offset: float = 0.0  # largest |σ − τ| used [meV]
    cut: int = 0  # k-points whose window edge had to cut a cluster (gap < cluster_tol)
    min_cut_gap: float = np.inf  # the smallest such gap [meV]

    def as_array(self) -> np.ndarray:
        """(kpoints, shifted, factorisations, grown, cut, max_offset, −min_cut_gap)."""
        return np.array([self.kpoints, self.shifted, self.factorisations, self.grown,
                         self.cut, self.max_offset, -self.min_cut_gap], dtype=float)


def problem(values: np.ndarray, errors: np.ndarray, sigma: float, opts: WindowOptions,
            residual_limit: float, where: str) -> str | None:
    """Why the pairs at shift σ are not acceptable, or None. Local (pool-identical data).

    An eigenvalue too near σ, a non-finite value and a backward error above
    ``residual_limit`` are reasons to move the shift (a singular factorisation can also give
    wrong eigenvalues far from σ with large errors: a 4-fold eigenvalue at σ under block
    Lanczos). Too few converged pairs at a safe shift is the eigensolver's limit, which no
    other shift would cure: ArithmeticError saying what to change.
    """
    finite = values[np.isfinite(values)]
    if finite.size < values.size:
        return "non-finite eigenvalues"
    if finite.size:
        dist = np.abs(finite - sigma)
        if dist.min() * SAFE_RATIO < dist.max():
            return (f"an eigenvalue {dist.min():.3g} meV from the shift "
                    f"(R/delta > {SAFE_RATIO:g})")
    if values.size < opts.nev + 1:
        raise ArithmeticError(f"SLEPc converged {values.size} of {opts.nev + opts.n_pad} "
                              f"eigenpairs at {where}; raise solver.max_it or ncv")
    near = np.argsort(np.abs(values - opts.target), kind="stable")[: opts.nev]
    worst = float(np.max(errors[near]))
    if not worst <= residual_limit:
        return f"backward error {worst:.3g} > {residual_limit:.3g}"
    return None


def window_order(values: np.ndarray, tau: float, nev: int, cluster_tol: float
                 ) -> tuple[np.ndarray, bool]:
    """Order of the computed pairs, the window's ``nev`` first; and whether its edge had to
    cut a cluster. Local.

    Eigenvalues closer than ``cluster_tol`` form a cluster, whose per-band geometry is
    ill-conditioned (terms 1/(ε_n − ε_m)²): the window takes whole clusters, nearest τ
    first; among clusters equally near (within ``cluster_tol``: a spectrum symmetric about
    τ) it takes the lowest in energy that still fits. Only when no tied cluster fits is one
    cut, keeping its members nearest τ (the old "nev nearest" rule).
    """
    by_energy = np.argsort(values, kind="stable")
    split = np.flatnonzero(np.diff(values[by_energy]) >= cluster_tol) + 1
    clusters = [c for c in np.split(by_energy, split) if c.size]
    dist = [float(np.min(np.abs(values[c] - tau))) for c in clusters]
    pending = sorted(range(len(clusters)), key=lambda i: (dist[i], i))
    chosen: list[np.ndarray] = []
    room, cut = nev, False
    while room > 0 and pending:
        tied = [i for i in pending if dist[i] <= dist[pending[0]] + cluster_tol]
        fits = [i for i in tied if clusters[i].size <= room]
        pick = fits[0] if fits else pending[0]  # ``tied`` is in energy order among equals
        if fits:
            pick = min(fits)  # clusters are numbered in energy order: the lowest
        members = clusters[pick]
        if members.size > room:
            members, cut = members[np.argsort(np.abs(values[members] - tau),
                                              kind="stable")[:room]], True
        chosen.append(members)
        room -= members.size
        pending.remove(pick)
    window = np.concatenate(chosen) if chosen else np.zeros(0, int)
    rest = np.setdiff1d(np.arange(values.size), window)
    rest = rest[np.argsort(np.abs(values[rest] - tau), kind="stable")]
    return np.concatenate([window, rest]).astype(int), cut


def covered(values: np.ndarray, sigma: float, opts: WindowOptions) -> bool:
    """Whether the window chosen from the computed pairs is the true one and no uncomputed
    eigenvalue lies within ``edge_tol`` of it (module doc). Local."""
    order, _ = window_order(values, opts.target, opts.nev, opts.cluster_tol)
    window = np.abs(values[order[: opts.nev]] - opts.target)
    reach = np.max(np.abs(values - sigma)) - abs(sigma - opts.target)
    return bool(window.max() + opts.edge_tol < reach)


def shortfall(values: np.ndarray, sigma: float, opts: WindowOptions, norb: int
              ) -> tuple[int, int]:
    """Extra pairs needed at σ: (to certify the window nearest τ, to pad its short side).

    The padding must reach both sides of the window (so both edges, and the edge check, are
    known); when one side has no pair, the second number asks for ⌊pad/2⌋ per side more.
    Zeros when no more pairs exist. Local.
    """
    if values.size >= norb:
        return 0, 0
    order, _ = window_order(values, opts.target, opts.nev, opts.cluster_tol)
    window, rest = values[order[: opts.nev]], values[order[opts.nev :]]
    cover = 0 if covered(values, sigma, opts) else max(opts.n_pad, values.size)  # double
    empty = min(int(np.sum(rest < window.min())), int(np.sum(rest > window.max()))) == 0
    room = norb - values.size
    return min(cover, room), min(2 * max(opts.n_pad // 2, 1) if empty else 0, room)


def next_shift(tau: float, estimates: np.ndarray | None, norm_h: float,
               tried: list[float]) -> float | None:
    """The next shift of the ladder not yet tried and safe for ``estimates``, or None.

    ``estimates`` are the eigenvalues of an earlier attempt (accurate near σ even when the
    attempt failed); without them the scale is ‖H‖_∞/(10 OFFSET_RATIO). Estimates that all
    sit in one cluster (spread ≤ SPREAD_FLOOR ‖H‖_∞) say nothing about the window's reach —
    a shift exactly on a multiple eigenvalue returns its cluster nwant times over (measured:
    8 values within 6e-6 meV for a 4-fold eigenvalue and nwant = 8, so the ladder's offsets
    were 4e-9 meV and every rung failed) — and are treated as missing. Local.
    """
    if (estimates is not None and estimates.size and np.all(np.isfinite(estimates))
            and np.ptp(estimates) > SPREAD_FLOOR * norm_h):
        reach = float(np.max(np.abs(estimates - tau)))
    else:
        estimates, reach = None, norm_h / 10.0
    scale = GOLDEN * max(reach, float(np.finfo(float).tiny)) / OFFSET_RATIO
    for j in range(2 * MAX_SHIFTS):
        offset = scale * (1.0 + GOLDEN) ** (j // 2) * (1.0 if j % 2 == 0 else -1.0)
        sigma = tau + offset
        if any(abs(sigma - t) <= 1e-3 * abs(offset) for t in tried):
            continue
        if estimates is not None:
            dist = np.abs(estimates - sigma)
            if dist.min() * SAFE_RATIO < 2.0 * (reach + abs(offset)):
                continue
        return sigma
    return None


def no_shift_message(where: str, tau: float, attempts: list[tuple[float, str]]) -> str:
    """The error of a k-point no shift could solve: shifts tried, reasons, what to change."""
    tried = "; ".join(f"sigma = {s:.6g} meV: {r}" for s, r in attempts)
    return (f"no safe shift for the window at {where} (target {tau:.6g} meV); tried {tried}. "
            "Raise solver.pad or solver.max_it, or move solver.target into a gap of the "
            "spectrum")


def summary(comm: MPI.Comm, solver: Eigensolver) -> dict[str, object]:
    """What the shift choice did over the whole run, for /solver and the log. Collective.

    Each pool's counts are taken once (from its root); empty for a solver without window.
    """
    from qgt_mpi.solvers.slepc import SlepcSolver  # it imports this module

    core = solver.core
    report = core.shifts if isinstance(core, SlepcSolver) else None
    mine = np.array([0.0] * 5 + [0.0, -np.inf])
    if report is not None and core.comm.rank == 0:
        mine = report.as_array()
    total = allreduce_array(comm, mine[:5])
    top = np.array([comm.allreduce(float(x), op=MPI.MAX) for x in mine[5:]])
    if report is None:
        return {}
    return {"shift_kpoints_solved": int(total[0]), "shift_kpoints_moved": int(total[1]),
            "shift_factorisations": int(total[2]), "shift_regrown": int(total[3]),
            "shift_max_offset_meV": float(top[0]), "shift_safe_ratio": SAFE_RATIO,
            "window_cut_clusters": int(total[4]), "window_min_cut_gap_meV": float(-top[1])}
