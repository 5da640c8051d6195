"""Block Lanczos with shift-and-invert: the window eigenpairs from multi-RHS MUMPS solves.

Why (docs/performance.md §8): at m = 31 one MUMPS triangular solve costs 21 ms for one
right-hand side but 36 ms for 8 and 44 ms for 12 (the factors, 1.1·10⁷ entries, are read once
per solve whatever the number of columns). Krylov–Schur (SLEPc) applies (H − σ)⁻¹ to one
vector at a time, ≈ 36 solves per k-point for 12 pairs; a block Krylov space of the same
dimension costs a few multi-RHS solves.

Method (theory §2.1 window; standard block Lanczos with full reorthogonalisation): with
M = (H − σ)⁻¹ Hermitian, the basis V = [Q_0, Q_1, …] of the block Krylov space
span{Q_0, M Q_0, M² Q_0, …} is built one block at a time,

    W = M Q_j,  C = V† W (classical Gram–Schmidt, twice),  W − V C = Q_{j+1} R_{j+1} (QR),

so that M V = V T + Q_{j+1} R_{j+1} E_jᵀ with T = V† M V Hermitian. Rayleigh–Ritz on T gives
Ritz pairs (θ, y), eigenvalues λ = σ + 1/θ, vectors x = V y; the pairs nearest σ are those of
largest |θ|. The Lanczos relation gives the residual of the transformed problem for free,
‖M x − θ x‖ = ‖R_{j+1} y_last‖, and since (H − λ) x = −(H − σ)(M x − θ x)/θ,

    ‖H x − λ x‖ ≤ ‖H − σ‖ ‖R_{j+1} y_last‖ / |θ|.

A pair counts as converged when this bound, divided by (‖H‖ + |λ|) (the backward error, with
‖H‖ ≤ ‖H‖_∞ for Hermitian H), is ≤ tol; the caller then checks the true backward error
‖Hx − λx‖/((‖H‖_∞ + |λ|)‖x‖) of the returned pairs like SLEPc's. Vectors are distributed by
rows over the pool; every inner product is a pool reduction, so every rank takes the same
decisions. The start block is a fixed-seed random block (solvers/shift_invert.py), so a
k-point's result does not depend on which batch, rank or pool solved it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from qgt_mpi.parallel import allreduce_array


def _orthonormal(comm: MPI.Comm, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky QR, twice: w = q r with q† q = 1 over the pool. Collective.

    Raises ArithmeticError when w is numerically rank deficient (an exhausted Krylov space).
    """
    r_total = np.eye(w.shape[1], dtype=complex)
    for _ in range(2):
        gram = allreduce_array(comm, w.conj().T @ w)
        try:
            r = np.linalg.cholesky(0.5 * (gram + gram.conj().T)).conj().T
        except np.linalg.LinAlgError:
            raise ArithmeticError("block Lanczos: the Krylov block became rank deficient "
                                  "(use WindowOptions(method=\"krylovschur\"))") from None
        w = np.linalg.solve(r.T, w.T).T  # w r⁻¹
        r_total = r @ r_total
    return w, r_total


def block_lanczos(comm: MPI.Comm, apply: Callable[[np.ndarray], np.ndarray],
                  start: np.ndarray, nwant: int, sigma: float, tol: float, norm_h: float,
                  max_blocks: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``nwant`` eigenpairs of H nearest ``sigma``. Collective over the pool.

    Parameters
    ----------
    apply : X ↦ (H − σ)⁻¹ X on local row blocks (nloc, b) (one multi-RHS solve).
    start : (nloc, b) local rows of the start block (b ≥ 1 columns).
    nwant : pairs wanted (window + padding).
    sigma : the shift σ [meV]; tol : backward error at which a pair is converged.
    norm_h : ‖H‖_∞ [meV] (an upper bound of the 2-norm of Hermitian H).
    max_blocks : largest number of blocks in the basis.

    Returns
    -------
    (nwant,) eigenvalues ordered by distance to σ, (nloc, nwant) local rows of orthonormal
    eigenvectors, and the number of blocks used.

    Raises
    ------
    ArithmeticError when the pairs do not converge within ``max_blocks`` blocks.
    """
    q, _ = _orthonormal(comm, start.astype(complex))
    b = q.shape[1]
    basis = np.empty((q.shape[0], 0), dtype=complex)
    t = np.zeros((0, 0), dtype=complex)
    for step in range(1, max_blocks + 1):
        w = apply(q)
        basis = np.hstack([basis, q])
        coef = allreduce_array(comm, _inner(basis, w))
        w = w - basis @ coef
        again = allreduce_array(comm, _inner(basis, w))  # second pass (full reorthogonality)
        w = w - basis @ again
        t = _grow(t, coef + again)
        q, r = _orthonormal(comm, w)
        theta, y = np.linalg.eigh(t)
        sel = np.argsort(-np.abs(theta), kind="stable")[:nwant]
        if sel.size == nwant:
            resid = np.linalg.norm(r @ y[-b:, sel], axis=0) / np.abs(theta[sel])
            lam = sigma + 1.0 / theta[sel]
            bound = (norm_h + abs(sigma)) * resid / (norm_h + np.abs(lam))
            if np.all(bound <= tol):
                return lam, basis @ y[:, sel], step
    raise ArithmeticError(f"block Lanczos did not converge {nwant} eigenpairs in {max_blocks} "
                          f"blocks of {b}; raise solver.max_it or solver.pad")


def _inner(basis: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Local part of basis† w without conjugating the (nloc, m) basis (only w)."""
    return (w.conj().T @ basis).conj().T


def _grow(t: np.ndarray, column: np.ndarray) -> np.ndarray:
    """T with the new block's columns ``column`` (m_new, b) and their Hermitian mirror."""
    m_old, b = t.shape[0], column.shape[1]
    out = np.zeros((m_old + b, m_old + b), dtype=complex)
    out[:m_old, :m_old] = t
    out[:, m_old:] = column
    out[m_old:, :m_old] = column[:m_old].conj().T
    return 0.5 * (out + out.conj().T)
