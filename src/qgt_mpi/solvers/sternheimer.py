"""Geometry beyond a window of bands: Sternheimer equations with the shift-invert factorisation.

For a window band n the quantum geometric tensor has an out-of-window part (theory §5)

    T^(n,out)_ij = <∂_i u_n|Q|∂_j u_n>,   Q|∂_i u_n> = −(H − ε_n)⁻¹ Q ∂_iH |u_n>,

with Q = 1 − P_W. The solver computes a few more eigenpairs than the window (the padding,
set P); their pairs with window bands enter exactly, Σ_{m∈P} v^i_nm v^j_mn/(ε_n − ε_m)²
(theory §1), and the rest through the Sternheimer solution with Q' = 1 − P_{W∪P}:

    (H − ε_n) x_i = Q' ∂_iH |u_n>,  x_i in range(Q'),   T^(n,rest)_ij = x_i† x_j.

With M = (H − σ)⁻¹ (the factorisation of the shift-invert step, σ the target) and
c_n = ε_n − σ this is (1 − c_n M) x = M Q' b on range(Q'). Every eigenvalue of 1 − c_n M there
is 1 − c_n/(λ_m − σ) with λ_m outside W ∪ P, hence |λ_m − σ| ≥ max_{m∈P}|λ_m − σ| ≥ |c_n|
(SLEPc returns the eigenvalues nearest σ): the operator is Hermitian positive definite, with
condition number κ ≤ (1 + r)/(1 − r), r = max_n |c_n| / min_{m∉W∪P} |λ_m − σ|. Conjugate
gradients converge like ((√κ − 1)/(√κ + 1))^iteration; one iteration is one multi-RHS
triangular solve for all 2·nev right-hand sides (the systems run in lockstep). Nothing new is
factorised. Vectors are distributed by rows over the pool; inner products are pool reductions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel import allreduce_array

MAX_ITERATIONS = 500


def _project(comm: MPI.Comm, basis: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Q' y = y − V (V† y) for row-distributed V (nloc, nv) and y (nloc, ncol). Collective."""
    return y - basis @ allreduce_array(comm, basis.conj().T @ y)


def _dots(comm: MPI.Comm, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise <a_j, b_j> over the pool. Collective."""
    return allreduce_array(comm, np.einsum("ij,ij->j", a.conj(), b))


def pad_tensor(energies: np.ndarray, velocities: np.ndarray, nev: int) -> np.ndarray:
    """Σ_{m∈P} v^i_nm v^j_mn/(ε_n − ε_m)² for window bands n < nev; (nev, 3) complex [xx, yy, xy].

    ``energies`` (ntot,) and ``velocities`` (2, ntot, ntot) cover window and padding, the
    window first. Local.
    """
    inv = 1.0 / (energies[:nev, None] - energies[None, nev:]) ** 2  # (nev, npad)
    vx, vy = velocities[0, :nev, nev:], velocities[1, :nev, nev:]
    vx_t, vy_t = velocities[0, nev:, :nev].T, velocities[1, nev:, :nev].T
    return np.stack([(vx * vx_t * inv).sum(1), (vy * vy_t * inv).sum(1),
                     (vx * vy_t * inv).sum(1)], axis=-1)


def cg_tolerance(shifts: np.ndarray, reach: float, accuracy: float) -> float:
    """Relative CG residual that bounds the error of T^(rest) by ``accuracy``. Local.

    On range(Q') the operator A = 1 − c_n M has eigenvalues 1 − c_n/(λ_m − σ) with
    |λ_m − σ| ≥ ``reach`` = max over the computed pairs (window + padding) of |λ − σ|, so
    κ(A) ≤ (1 + r)/(1 − r), r = max_n |c_n| / reach. A relative residual ε gives a relative
    error δ ≤ κ ε of each Sternheimer vector x, and |Δ(x_i† x_j)| ≤ (2δ + δ²)‖x_i‖‖x_j‖; so
    T^(rest) has relative error ≤ ``accuracy`` when κ ε = √(1 + accuracy) − 1 (≈ accuracy/2).
    """
    r = min(float(np.max(np.abs(shifts))) / reach, 1.0 - 1e-6) if reach > 0 else 1.0 - 1e-6
    kappa = (1.0 + r) / (1.0 - r)
    return (np.sqrt(1.0 + accuracy) - 1.0) / kappa


def rest_tensor(comm: MPI.Comm, solve: Callable[[np.ndarray], np.ndarray],
                basis: np.ndarray, rhs: np.ndarray, shifts: np.ndarray, tol: float,
                where: str, keep: list[np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """T^(n,rest) of every window band by lockstep preconditioned CG. Collective over the pool.

    Parameters
    ----------
    solve : X ↦ (H − σ)⁻¹ X on row blocks (nloc, ncol) (the shift-invert factorisation).
    basis : (nloc, ntot) local rows of the window + padding eigenvectors.
    rhs : (2, nloc, nev) local rows of ∂_iH |u_n> for the window bands.
    shifts : (nev,) c_n = ε_n − σ.
    tol : relative residual at which a system counts as solved (:func:`cg_tolerance`).
    where : k-point description for the error message.
    keep : when given, the solutions x (nloc, 2·nev; x-direction bands, then y) are appended
        to it (the reduced basis of solvers/accelerate.py).

    Returns
    -------
    (nev, 3) complex tensor [xx, yy, xy] and the number of CG iterations.

    Raises
    ------
    ArithmeticError when CG does not converge (window too close to the rest of the spectrum).

    Notes
    -----
    Only the systems not yet converged are iterated: each iteration is one multi-RHS solve
    of the active columns (a MUMPS solve costs about 2.3 ms per column at 16 columns and
    m = 31, plus a fixed ≈ 20 ms), and which columns are active is decided on pool-reduced
    numbers, so every pool rank agrees.
    """
    nev = shifts.size
    b = np.concatenate([rhs[0], rhs[1]], axis=1)  # columns: x-direction bands, then y
    c = np.concatenate([shifts, shifts])
    y1 = _project(comm, basis, solve(_project(comm, basis, b)))
    x = np.zeros_like(y1)
    r, p = y1.copy(), y1.copy()
    rs = _dots(comm, r, r).real
    target = (tol**2) * np.maximum(rs, np.finfo(float).tiny)
    it = 0
    while np.any(rs > target):
        if it == MAX_ITERATIONS:
            raise ArithmeticError(
                f"out-of-window Sternheimer solve did not converge in {it} iterations at {where}"
                " (the window is too close to the rest of the spectrum: raise solver.pad or "
                "solver.nev, or move solver.target)")
        a = np.flatnonzero(rs > target)  # the same on every pool rank (reduced numbers)
        pa = p[:, a]
        ap = pa - c[a] * _project(comm, basis, solve(pa))
        alpha = rs[a] / _dots(comm, pa, ap).real
        x[:, a] += alpha * pa
        r[:, a] -= alpha * ap
        rs_new = _dots(comm, r[:, a], r[:, a]).real
        p[:, a] = r[:, a] + (rs_new / rs[a]) * pa
        rs[a] = rs_new
        it += 1
    if keep is not None:
        keep.append(x)
    xx, xy = x[:, :nev], x[:, nev:]
    tensor = np.stack([_dots(comm, xx, xx), _dots(comm, xy, xy), _dots(comm, xx, xy)], axis=-1)
    return tensor, it
