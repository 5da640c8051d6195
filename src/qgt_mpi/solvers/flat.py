"""Exactly flattened bands on top of any solver: energies set flat, eigenvectors kept (theory §2.3).

For H_flat = Σ_{n∈F} E_n P_n + Σ_{m∉F} ε_m P_m, with F the flattened bands (all bands of a
dense solve, or the window of a windowed one) and the eigenvectors of H, the band-basis
velocities are <n|∂_i H_flat|m> = (E_m − E_n) <n|∂_i m> = v^i_nm (E_m − E_n)/(ε_m − ε_n) for
n ≠ m, and 0 on the diagonal (flat bands have no group velocity). The geometry is that of the
eigenvectors, so it is unchanged: v v/(E_n − E_m)² = v v/(ε_n − ε_m)² for every pair of
different target energies, and the out-of-window parts pass through untouched. Bands given the
SAME target form a degenerate group whose mutual pairs drop out of per-band quantities (only
group quantities are then basis independent, theory §5): give distinct targets for per-band
geometry. This is the paper's assumption (exactly flat bands with a real band's quantum
geometry) applied to any model, e.g. the TBG flat bands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qgt_mpi.solvers.base import Decorator, Eigenpairs, Eigensolver

if TYPE_CHECKING:
    from mpi4py import MPI
    from numpy.typing import ArrayLike

    from qgt_mpi.models.protocols import BlochModel

DEGENERATE = 1e-10  # meV: pairs closer than this had no defined <n|∂m> (ratio set to 0)


class FlatBands(Decorator):
    """Decorate ``inner`` so that its bands sit at ``targets`` (meV, one per returned band)."""

    def __init__(self, inner: Eigensolver, targets: ArrayLike) -> None:
        self.inner = inner
        self.targets = np.asarray(targets, dtype=float).ravel()
        self.name = f"{inner.name}+flat"
        self.comm: MPI.Comm = inner.comm

    def serial(self) -> FlatBands:
        """The same flat bands over the inner solver on COMM_SELF."""
        return FlatBands(self.inner.serial(), self.targets)

    def check(self, model: BlochModel) -> None:
        """Raise ValueError unless there is one target per band."""
        if self.targets.size != self.bands(model):
            raise ValueError(f"solver.flatten needs {self.bands(model)} energies (one per "
                             f"band), got {self.targets.size}")

    def describe(self) -> dict[str, object]:
        """Inner solver facts plus the flat energies."""
        return {**self.inner.describe(), "solver": self.name,
                "flat_energies_meV": ",".join(f"{e:.12g}" for e in self.targets)}

    def solve(self, model: BlochModel, k: np.ndarray, velocities: bool = True) -> Eigenpairs:
        """Eigenpairs of the inner solver with flat energies and rescaled velocities."""
        eig = self.inner.solve(model, k, velocities)
        flat = np.broadcast_to(self.targets, eig.energies.shape).copy()
        vel = eig.velocities
        if vel is not None:
            old = eig.energies[:, None, :] - eig.energies[:, :, None]  # ε_m − ε_n at [k, n, m]
            new = self.targets[None, :] - self.targets[:, None]
            ok = np.abs(old) > DEGENERATE
            vel = vel * np.where(ok, new[None] / np.where(ok, old, 1.0), 0.0)[None]
        return Eigenpairs(flat, eig.vectors, vel, eig.metric_out, eig.curvature_out,
                          eig.outside, eig.groups)
