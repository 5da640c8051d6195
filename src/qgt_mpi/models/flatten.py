"""Exact band flattening (theory §2.3) and its long-range truncation (theory §2.4).

``FlattenedModel`` evaluates H_flat(k) = Σ_n E_n P_n(k) exactly in k-space ("range = ∞");
``truncate`` Fourier-transforms any model to hoppings t_ab(R) and keeps those with
|R·A + τ_b − τ_a| ≤ R_c; ``bandwidth`` measures W of each band on a grid.
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.models.lattice import TightBinding, kgrid_points

# FFT grid of the truncated (finite-range) model, nfine × nfine cells (theory §2.4): the one
# default of decks, the API and the figures (docs/input.md `model.flatten.nfine`).
NFINE_DEFAULT = 64

_IMAGE_SHIFTS = np.arange(-2, 3)  # supercell images searched for the minimal image



class RangeError(ValueError):
    """A model setting the model cannot honour; ``key`` is its name in the [model] table.

    ``input_error`` makes it an input error (exit status 2) even when it surfaces in the
    k-pass (see qgt_mpi.parallel.errors.describe).
    """

    input_error = True

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(allowed)
        self.key, self.value, self.allowed = key, value, allowed

    def __str__(self) -> str:
        return f"model.{self.key} = {self.value!r}: {self.allowed}"

class FlattenedModel:
    """Exactly flattened model H_flat(k) = U diag(E) U† (theory §2.3).

    Parameters
    ----------
    parent : BlochModel whose bands are flattened.
    targets : (nbands,) target energy of each parent band (ascending band order); bands
        sharing a target form one group.
    gap_tol : bands of different groups closer than this (meV) count as a closed gap.
    """

    def __init__(self, parent, targets, gap_tol: float = 1e-9) -> None:
        self.parent = parent
        self.targets = np.asarray(targets, dtype=float).ravel()
        if self.targets.size != parent.nbands:
            raise ValueError(f"need {parent.nbands} targets, got {self.targets.size}")
        self.gap_tol = float(gap_tol)
        self.norb, self.nbands = parent.norb, parent.nbands
        self.lattice, self.positions = parent.lattice, parent.positions
        self.reciprocal, self.cell_area = parent.reciprocal, parent.cell_area

    def describe(self) -> dict[str, object]:
        """Parent facts plus the flattening targets."""
        info = dict(self.parent.describe())
        info["kind"] = f"{info.get('kind', 'model')}+flat"
        info["flat_targets"] = ",".join(f"{e:.12g}" for e in self.targets)
        info["flat_range"] = math.inf
        return info

    def _energy_ratio(self, eps: np.ndarray, k: np.ndarray) -> np.ndarray:
        """(E_n − E_m)/(ε_n − ε_m) for bands of different groups, 0 otherwise; (nk, nb, nb)."""
        d_target = self.targets[:, None] - self.targets[None, :]
        cross = d_target != 0
        d_eps = eps[:, :, None] - eps[:, None, :]
        closed = cross & (np.abs(d_eps) < self.gap_tol)
        if np.any(closed):
            ik = np.argwhere(closed)[0]
            raise RangeError(
                "flatten", "gapless parent model",
                f"cannot flatten: bands {ik[1]} and {ik[2]} (different targets) are degenerate "
                f"within {self.gap_tol:g} meV at k = {k[ik[0]].tolist()} (the gap closes)")
        safe = np.where(cross, d_eps, 1.0)
        return np.where(cross, d_target / safe, 0.0)

    def hamiltonian(self, k: np.ndarray, derivatives: bool = True
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """H_flat (nk, norb, norb) and ∂H_flat (2, nk, norb, norb) or None.

        With v = U† ∂H U of the parent, ∂P_n = Σ_{m≠n} (|m>v_mn<n| + |n>v_nm<m|)/(ε_n − ε_m),
        so U† ∂H_flat U = Σ_n E_n U† ∂P_n U has elements v_nm (E_n − E_m)/(ε_n − ε_m)
        (zero within a group, where E_n = E_m). This is exact (theory §2.3).
        """
        k = np.asarray(k, dtype=float).reshape(-1, 2)
        ham, dham = self.parent.hamiltonian(k, derivatives)
        eps, vecs = np.linalg.eigh(ham)
        ratio = self._energy_ratio(eps, k)
        vecs_h = vecs.conj().swapaxes(-1, -2)
        flat = (vecs * self.targets) @ vecs_h
        if not derivatives:
            return flat, None
        vel = vecs_h[None] @ dham @ vecs[None]
        return flat, vecs[None] @ (vel * ratio[None]) @ vecs_h[None]


def _periodic_hoppings(model, nfine: int) -> np.ndarray:
    """t_ab(n1, n2) on the nfine-periodic supercell, indexed [p, q, a, b] (theory §2.4).

    H̃_ab(k) = H_ab(k) e^{−ik·(τ_b − τ_a)} is periodic; t(R) = (1/N²) Σ_k H̃(k) e^{−ik·R} with
    k·R = 2π(i n1 + j n2)/N, i.e. a forward FFT. Symmetrised so t_ba(−R) = t_ab(R)* exactly.
    """
    n, norb = nfine, model.norb
    k = kgrid_points(model.reciprocal, n, n, 0, n * n)
    ham, _ = model.hamiltonian(k, derivatives=False)
    phase = np.exp(1j * k @ model.positions.T)  # e^{ik·τ_a}
    periodic = phase[:, :, None] * ham * phase.conj()[:, None, :]
    hop = np.fft.fft2(periodic.reshape(n, n, norb, norb), axes=(0, 1)) / n**2
    mirror = np.roll(hop[::-1, ::-1], 1, axis=(0, 1)).swapaxes(2, 3).conj()  # t_ba(−R)*
    return 0.5 * (hop + mirror)


def _minimal_images(model, nfine: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate images R (n, n, S, 2) of each FFT index and their bond lengths (n, n, S, a, b)."""
    centred = (np.arange(nfine) + nfine // 2) % nfine - nfine // 2
    s1, s2 = np.meshgrid(_IMAGE_SHIFTS, _IMAGE_SHIFTS, indexing="ij")
    n1 = centred[:, None, None] + nfine * s1.ravel()[None, None, :]
    n2 = centred[None, :, None] + nfine * s2.ravel()[None, None, :]
    n1, n2 = np.broadcast_arrays(n1, n2)
    images = np.stack([n1, n2], axis=-1)
    tau = model.positions
    bond = (images @ model.lattice)[..., None, None, :] + tau[None, :, :] - tau[:, None, :]
    return images, np.linalg.norm(bond, axis=-1)


def truncate(model, r_cut: float, nfine: int = NFINE_DEFAULT) -> TightBinding:
    """Truncated tight-binding model: hoppings with |R·A + τ_b − τ_a| ≤ r_cut (theory §2.4).

    Each FFT coefficient goes to its minimal image in the nfine-supercell; images tied for
    minimal length share it equally, which keeps the list hermitian.
    """
    if not math.isfinite(r_cut) or r_cut < 0:
        raise ValueError(f"r_cut must be finite and >= 0, got {r_cut}")
    hop = _periodic_hoppings(model, nfine)
    images, length = _minimal_images(model, nfine)
    nearest = float(length[length > 1e-9].min())
    if r_cut < nearest - 1e-9:
        raise RangeError("flatten.range", r_cut, f"must be >= the nearest-neighbour bond "
                         f"length {nearest:.6g} a (a shorter R_c keeps no hopping at all)")
    shortest = length.min(axis=2, keepdims=True)
    tied = length <= shortest + 1e-9 * (1.0 + shortest)
    weight = tied / tied.sum(axis=2, keepdims=True)
    keep = tied & (length <= r_cut + 1e-9)
    p, q, s, a, b = np.nonzero(keep)
    info = {**model.describe(), "flat_range": float(r_cut), "nfine": int(nfine)}
    return TightBinding(model.lattice, model.positions, images[p, q, s],
                        a, b, hop[p, q, a, b] * weight[p, q, s, a, b], info)


def bandwidth(model, n: int) -> np.ndarray:
    """W of each band: max − min of ε_n(k) over the n×n grid; shape (nbands,)."""
    k = kgrid_points(model.reciprocal, n, n, 0, n * n)
    ham, _ = model.hamiltonian(k, derivatives=False)
    energies = np.linalg.eigvalsh(ham)
    return energies.max(axis=0) - energies.min(axis=0)


def build_flattened(parent, gap: float, range_: float = math.inf,
                    nfine: int = NFINE_DEFAULT):
    """Two-band flattening to (−gap/2, +gap/2): exact for range_ = inf, else truncated."""
    if parent.nbands != 2:
        raise ValueError(f"flattening to ±gap/2 needs a two-band model, got {parent.nbands}")
    if not gap > 0:
        raise ValueError(f"flatten gap must be > 0, got {gap}")
    flat = FlattenedModel(parent, (-0.5 * gap, 0.5 * gap))
    return flat if math.isinf(range_) else truncate(flat, range_, nfine)
