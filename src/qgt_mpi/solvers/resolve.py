"""Degenerate groups of window bands resolved by a symmetry operator (theory §5.7).

Inside a group of (nearly) degenerate bands the eigenvectors are fixed by splittings far
smaller than anything the run resolves (the chiral flat bands of TBG at the magic angle: two
bands at ±ε, |ε| < 10⁻³ meV, touching at K and K'), so per-band curvature, metric and Chern
numbers are gauge noise with terms 1/(2ε)². A symmetry operator S that commutes with the
group's projector fixes the basis instead: with V_G the group's eigenvectors,
S_G = V_G† S V_G is diagonalised, its eigenvalues split into blocks (each ±1 for the sublattice
operator σ_z of the chiral limit, where S anticommutes with H and the flat-band projector is
invariant under it), and H is diagonalised inside each block. The new basis V_G C holds, e.g.,
the sublattice-polarised flat bands, whose own geometry is smooth: for them
⟨ψ_b|∂ψ_a⟩ = 0 between blocks (∂ψ_a stays in S's eigenspace of ψ_a when S is k-independent),
so their per-band tensor is the sum over bands outside the group only,

  T^(a)_ij = Σ_{m∉G} ⟨ψ_a|∂_iH|m⟩⟨m|∂_jH|ψ_a⟩ / (ε̃_a − ε_m)²,   ε̃_a = ⟨ψ_a|H|ψ_a⟩,   (5.7c)

with a relative error ≤ max_G|ε_n − ε̃_a| / min|ε̃_a − ε_m| from the group's own splitting (the
band geometry skips the pairs inside a resolved group: ``Eigenpairs.groups``). Transport is
unchanged to that order: inside an exactly degenerate group it depends on the group's
projector only (theory §1.5).

A group is a run of window bands, consecutive in energy, with gaps < ``cluster_tol``; it is
resolved when S_G's eigenvalues split into blocks with a gap ≥ ``MIN_SPLIT`` (otherwise it is
left as it is and counted). Blocks are ordered by S eigenvalue (−1 first), bands inside a
block by energy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel
    from qgt_mpi.solvers.base import Eigensolver

Apply = Callable[[np.ndarray], np.ndarray]  # X ↦ S X for (norb, m) blocks

MIN_SPLIT = 0.5  # smallest gap between S_G eigenvalue blocks (|S| ≤ 1 for σ_z, valley)


@contextmanager
def eigenbasis(solver: Eigensolver) -> Iterator[None]:
    """Solve in the eigenbasis inside the block (band paths show eigenvalues, not the
    resolved states' ⟨ψ|H|ψ⟩); a solver without resolution is left alone. Local."""
    from qgt_mpi.solvers.slepc import SlepcSolver  # it imports this module

    core = solver.core
    if not isinstance(core, SlepcSolver):
        yield
        return
    with core.eigenbasis():
        yield


def clusters(energies: np.ndarray, tol: float) -> list[np.ndarray]:
    """Runs of bands (ascending energies (nb,)) with consecutive gaps < ``tol``, size ≥ 2."""
    cut = np.flatnonzero(np.diff(energies) >= tol) + 1
    return [g for g in np.split(np.arange(energies.size), cut) if g.size > 1]


def group_rotation(energies: np.ndarray, vectors: np.ndarray, apply_s: Apply, tol: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rotation of the window basis that resolves its degenerate groups by S. Local.

    Parameters
    ----------
    energies : (nb,) ascending window energies; vectors : (norb, nb) their eigenvectors.
    apply_s : X ↦ S X for (norb, m) blocks.
    tol : cluster tolerance [meV].

    Returns
    -------
    (C (nb, nb) unitary, energies ε̃ (nb,) = diag(C† E C), labels (nb,) int — the group index
    of each resolved band, −1 elsewhere —, number of groups S could not split).
    """
    nb = energies.size
    rot, labels, failed = np.eye(nb, dtype=complex), np.full(nb, -1), 0
    new = energies.astype(float).copy()
    for label, g in enumerate(clusters(energies, tol)):
        vg = vectors[:, g]
        s_g = vg.conj().T @ apply_s(vg)
        w, u = np.linalg.eigh(0.5 * (s_g + s_g.conj().T))
        cuts = np.flatnonzero(np.diff(w) >= MIN_SPLIT) + 1
        if cuts.size == 0:
            failed += 1
            continue
        block_rot = np.zeros((g.size, g.size), dtype=complex)
        col = 0
        for block in np.split(np.arange(g.size), cuts):
            ub = u[:, block]
            h_b = ub.conj().T @ (energies[g][:, None] * ub)
            e_b, c_b = np.linalg.eigh(0.5 * (h_b + h_b.conj().T))
            block_rot[:, col : col + block.size] = ub @ c_b
            new[g[col : col + block.size]] = e_b
            col += block.size
        rot[np.ix_(g, g)] = block_rot
        labels[g] = label
    return rot, new, labels, failed


def operator_apply(model: BlochModel, name: str) -> Callable[[np.ndarray], Apply]:
    """k ↦ (X ↦ S(k) X) for the model's operator ``name``: ``model.operators[name]`` (CSR,
    k-independent) or ``model.valley(k)`` for ``"valley"``. Raises ValueError if absent."""
    ops = getattr(model, "operators", {}) or {}
    valley = getattr(model, "valley", None)
    valley = valley if callable(valley) else None
    if name in ops:
        matrix = ops[name]
        return lambda k: (lambda x: matrix @ x)
    if name == "valley" and valley is not None:
        def at(k: np.ndarray) -> Apply:
            v = valley(k)
            return lambda x: v @ x

        return at
    names = sorted(ops) + (["valley"] if valley is not None else [])
    raise ValueError(f"the model has no operator {name!r} to resolve degenerate groups "
                     f"(it has: {', '.join(names) or 'none'})")


def summary(comm: MPI.Comm, solver: Eigensolver) -> dict[str, object]:
    """``/geometry`` attributes of the resolution over the whole run. Collective.

    ``resolved_by`` (operator name or "none"), k-point solves with a resolved group, and
    groups the operator could not split; each pool counts once (its root). Empty counts
    (``resolved_by = "none"``) for a solver without a window.
    """
    from qgt_mpi.parallel import allreduce_array
    from qgt_mpi.solvers.slepc import SlepcSolver  # it imports this module

    core = solver.core
    window = core if isinstance(core, SlepcSolver) else None
    mine = np.zeros(3)
    if window is not None and window.comm.rank == 0:
        counts = window.resolved
        mine = np.array([counts["kpoints"], counts["resolved"], counts["unsplit"]], float)
    total = allreduce_array(comm, mine)
    if window is None:
        return {"resolved_by": "none"}
    return {"resolved_by": window.resolved_by,
            "resolved_kpoint_solves": int(total[1]), "kpoint_solves": int(total[0]),
            "unsplit_groups": int(total[2])}
