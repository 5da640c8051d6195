"""Carbon p_z models from atom positions: Slater–Koster bonds, sublattice, valley (theory §2.6).

Any periodic 2D cell of graphene layers, rigid or relaxed, flat or corrugated (positions in
nm, layers numbered from the bottom): the atomistic TBG builder (models/tbg_atomistic.py) and
the structure-file route (models/structure.py) both end here, so a structure written from the
rigid cell and read back is the same model.

Hoppings (theory §2.6, Eq. 2.6a): t(d) = V_ppπ(d)[1 − (d_z/d)²] + V_ppσ(d)(d_z/d)² with
V_ppπ = V_ppπ0 e^{−(d − a0)/δ0}, V_ppσ = V_ppσ0 e^{−(d − d0)/δ0}, a0 = a/√3, for every pair
closer than ``cutoff``, with the direction cosine of the actual 3D bond vector; pairs from a
KD-tree over the home cell's periodic images (O(N log N), no Python loop over atoms).

Sublattice and valley from the bonds (theory §2.6b), no rigid lattice assumed. Every atom
must have three intralayer nearest neighbours (|d| < (a0 + a)/2) — a honeycomb layer. With
ψ_k the angles of an atom's three bonds, s = Σ_k e^{3iψ_k} = ±3i e^{3iφ} on sublattice A/B of
a layer rotated by φ (the rigid cell's A at (a1 + a2)/3 has bonds at 30°, 150°, 270°), so
s² = −9 e^{6iφ} gives φ modulo 60° from either sublattice. The bottom layer's φ_0 is taken in
(−30°, 30°], every other layer's within 30° of it (so a twist θ = φ_1 − φ_0 is never confused
with θ ∓ 60°, which would swap the valleys of a layer), and A is where Re(s e^{−i(π/2+3φ_ℓ)}) > 0.
The valley operator is the Haldane-phase NNN form
V = Σ_⟨⟨ij⟩⟩ (−i/3√3) ν_ij σz_i c_i† c_j, ν_ij = sign(e × d)_z with d the NNN vector and e the
bond of i with the largest projection on d (the first leg of the two-bond path): on the rigid
lattice it equals the rigid formula +i sign(cos 3(ψ − φ))/(3√3) entry by entry (tested), so
V = +1 at layer ℓ's K = R(φ_ℓ)(4π/3a, 0).

Sublattice mass per layer: +M_ℓ/2 on A and −M_ℓ/2 on B of layer ℓ (``mass`` a number: all
layers; a list: one per layer, e.g. [M, 0] for one hBN-aligned layer).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from qgt_mpi.models.sparse import BondModel

DEFAULTS = {"a": 0.246, "d0": 0.335, "vpp_pi0": -2700.0, "vpp_sigma0": 480.0,
            "delta0": 0.184 * 0.246, "cutoff": 0.5}  # nm, nm, meV, meV, nm, nm (theory §2.6)


def pairs(pos3: np.ndarray, lattice: np.ndarray, cutoff: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (a, b, d3) with 0 < |d3| ≤ cutoff, d3 = image of b − a, via cKDTree over images."""
    from scipy.spatial import cKDTree  # only here: keeps scipy.spatial out of every start-up

    n = pos3.shape[0]
    height = abs(np.linalg.det(lattice)) / np.linalg.norm(lattice, axis=1).max()
    p = math.ceil(cutoff / height) + 1
    r = np.arange(-p, p + 1)
    shifts = np.column_stack([x.ravel() for x in np.meshgrid(r, r, indexing="ij")]) @ lattice
    images = (pos3[None, :, :] + np.pad(shifts, ((0, 0), (0, 1)))[:, None, :]).reshape(-1, 3)
    found = cKDTree(pos3).sparse_distance_matrix(cKDTree(images), cutoff,
                                                 output_type="ndarray")
    found = found[found["v"] > 1e-9]
    a, j = found["i"].astype(np.int64), found["j"].astype(np.int64)
    return a, j % n, images[j] - pos3[a]


def slater_koster(d3: np.ndarray, p: dict) -> np.ndarray:
    """Two-centre p_z hopping t(d) of theory §2.6 [meV] for displacements d3 (nbond, 3) [nm]."""
    dist = np.linalg.norm(d3, axis=1)
    cos2 = (d3[:, 2] / dist) ** 2
    vpi = p["vpp_pi0"] * np.exp(-(dist - p["a"] / math.sqrt(3.0)) / p["delta0"])
    vsigma = p["vpp_sigma0"] * np.exp(-(dist - p["d0"]) / p["delta0"])
    return vpi * (1.0 - cos2) + vsigma * cos2


class CarbonModel(BondModel):
    """A cell of carbon p_z orbitals with Slater–Koster bonds (module doc); :func:`carbon_model`.

    Extra attributes: ``params`` (hopping parameters), ``layer`` and ``sublattice`` (N,) ints,
    ``z`` (N,) nm, ``orientation`` (n_layers,) radians, ``valley_model`` (a BondModel);
    ``operators["layer"]`` = diag(1 − 2ℓ/(n_layers − 1)) (+1 bottom, −1 top; CSR);
    ``maps``: arrays for the output file's /model group (the relaxation's stacking map).
    """

    maps: dict[str, np.ndarray] = {}  # noqa: RUF012  (replaced per instance, never mutated)
    m: int  # tbg_atomistic only: the (m, 1) cell
    theta: float  # tbg_atomistic only: twist [degrees]
    relaxation: object = None  # tbg_atomistic(relaxation=...): the Relaxation applied

    params: dict[str, float]
    layer: np.ndarray
    sublattice: np.ndarray
    z: np.ndarray
    orientation: np.ndarray
    valley_model: BondModel

    def valley(self, k: np.ndarray) -> sp.csr_matrix:
        """Valley operator V(k) at one Cartesian k (CSR, Hermitian, eigenvalues ≈ ±1 near K)."""
        return self.valley_model.csr(k)[0]

    def dirac_point(self) -> np.ndarray:
        """Cartesian K of the bottom layer, R(φ_0)(4π/3a, 0), folded into the cell's BZ."""
        phi = float(self.orientation[0])
        kg = 4.0 * math.pi / (3.0 * self.params["a"]) * np.array([math.cos(phi), math.sin(phi)])
        frac = np.mod(self.lattice @ kg / (2.0 * math.pi) + 1e-12, 1.0)
        return frac @ self.reciprocal

    def high_symmetry_points(self) -> dict[str, np.ndarray]:
        """Cartesian Γ, K (= dirac_point), K' (its time-reversal partner) and M."""
        k = np.mod(self.lattice @ self.dirac_point() / (2.0 * math.pi) + 1e-12, 1.0)
        cos = np.dot(*self.lattice) / np.prod(np.linalg.norm(self.lattice, axis=1))
        red = {"G": (0.0, 0.0), "K": tuple(k), "K'": tuple(np.mod(1.0 - k, 1.0)),
               "M": (0.5, 0.5) if abs(cos - 0.5) < 1e-9 else (0.5, 0.0)}
        return {name: np.asarray(r) @ self.reciprocal for name, r in red.items()}

    def describe(self) -> dict[str, object]:
        """Scalar facts for /model: kind, cell, parameters, bonds."""
        return {**self.info, "norb": self.norb, "nnz": self.nnz, "nbonds": int(self.t.size)}

    def copy_attributes(self, other: CarbonModel) -> None:
        """Take ``other``'s carbon attributes (for models rebuilt with new on-site terms)."""
        for name in ("params", "layer", "sublattice", "z", "orientation", "valley_model"):
            setattr(self, name, getattr(other, name))
        for name in ("m", "theta", "relaxation", "maps"):
            if hasattr(other, name):
                setattr(self, name, getattr(other, name))


def _neighbours(layer: np.ndarray, a: np.ndarray, b: np.ndarray, d3: np.ndarray,
                lo: float, hi: float) -> np.ndarray:
    """Mask of intralayer bonds with lo < |d| < hi."""
    dist = np.linalg.norm(d3, axis=1)
    return (layer[a] == layer[b]) & (dist > lo) & (dist < hi)


def bond_sublattice(layer: np.ndarray, a: np.ndarray, b: np.ndarray, d3: np.ndarray,
                    lattice_a: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sublattice (N,), the (N, 3, 2) nearest-neighbour bond vectors, layer orientations.

    Raises
    ------
    ValueError naming an atom that does not have three intralayer nearest neighbours.
    """
    n, a0 = layer.size, lattice_a / math.sqrt(3.0)
    nn = _neighbours(layer, a, b, d3, 0.0, 0.5 * (a0 + lattice_a))
    count = np.bincount(a[nn], minlength=n)
    if np.any(count != 3):
        i = int(np.flatnonzero(count != 3)[0])
        raise ValueError(
            f"atom {i} (layer {int(layer[i])}) has {int(count[i])} intralayer neighbours closer "
            f"than {0.5 * (a0 + lattice_a):.4f} nm; the carbon model needs honeycomb layers "
            f"(3 each) with C-C bonds near a/sqrt(3) = {a0:.4f} nm (key a)")
    order = np.argsort(a[nn], kind="stable")
    bonds = d3[nn][order][:, :2].reshape(n, 3, 2)
    star = np.exp(3j * np.arctan2(bonds[..., 1], bonds[..., 0])).sum(axis=1)  # ±3i e^{3iφ}
    nlayer = int(layer.max()) + 1
    # 6φ from star² = −9 e^{6iφ} (both sublattices); every layer's φ taken within 30° of the
    # bottom layer's, so the K of every layer is the same valley (module doc)
    six = np.array([np.angle(-np.sum(star[layer == ell] ** 2)) for ell in range(nlayer)])
    orientation = six / 6.0
    orientation = orientation[0] + (orientation - orientation[0] + math.pi / 6) % (
        math.pi / 3) - math.pi / 6
    ref = np.exp(1j * (0.5 * math.pi + 3.0 * orientation[layer]))
    sublattice = np.where(np.real(star * np.conj(ref)) > 0.0, 0, 1)
    return sublattice, bonds, orientation


def valley_bonds(layer: np.ndarray, sublattice: np.ndarray, nn_bonds: np.ndarray,
                 a: np.ndarray, b: np.ndarray, d3: np.ndarray, lattice_a: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, d, amplitude) of the Haldane-phase valley operator (module doc, theory §2.6b)."""
    hi = 0.5 * (lattice_a + 2.0 * lattice_a / math.sqrt(3.0))
    nnn = _neighbours(layer, a, b, d3, 0.5 * (lattice_a / math.sqrt(3.0) + lattice_a), hi)
    ia, d = a[nnn], d3[nnn, :2]
    legs = nn_bonds[ia]  # (n, 3, 2): bonds of the first atom
    first = legs[np.arange(ia.size), np.argmax(np.einsum("nkx,nx->nk", legs, d), axis=1)]
    nu = np.sign(first[:, 0] * d[:, 1] - first[:, 1] * d[:, 0])
    sigma = np.where(sublattice[ia] == 0, 1.0, -1.0)
    return ia, b[nnn], d, -1j * nu * sigma / (3.0 * math.sqrt(3.0))


def mass_text(mass: float | list[float] | np.ndarray) -> float | str:
    """``mass`` for /model attributes: the number, or the per-layer list as text."""
    values = [float(x) for x in np.ravel(mass)]
    return values[0] if np.ndim(mass) == 0 else str(values)


def carbon_model(lattice: np.ndarray, pos3: np.ndarray, layer: np.ndarray, params: dict,
                 mass: float | list[float] | np.ndarray = 0.0,
                 info: dict | None = None) -> CarbonModel:
    """The carbon p_z model of atoms ``pos3`` (N, 3) nm in the cell ``lattice`` (rows, nm).

    Parameters
    ----------
    layer : (N,) layer index of each atom (0 = bottom).
    params : hopping parameters a, d0, vpp_pi0, vpp_sigma0, delta0, cutoff (:data:`DEFAULTS`).
    mass : sublattice mass M [meV], one number (all layers) or one per layer (module doc).
    info : scalar facts for /model (kind, source, ...).

    Raises
    ------
    ValueError for a layer that is not a honeycomb (see :func:`bond_sublattice`) or a mass
    list of the wrong length.
    """
    lattice = np.asarray(lattice, dtype=float)
    pos3 = np.asarray(pos3, dtype=float)
    layer = np.asarray(layer, dtype=np.int64)
    nlayer = int(layer.max()) + 1
    masses = np.broadcast_to(np.asarray(mass, dtype=float), (nlayer,)) if np.ndim(mass) == 0 \
        else np.asarray(mass, dtype=float)
    if masses.shape != (nlayer,):
        raise ValueError(f"mass has {masses.size} entries; the structure has {nlayer} layers")
    bond_a, bond_b, d3 = pairs(pos3, lattice, params["cutoff"])
    sublattice, nn_bonds, orientation = bond_sublattice(layer, bond_a, bond_b, d3, params["a"])
    t = slater_koster(d3, params)
    onsite = np.where(sublattice == 0, 0.5, -0.5) * masses[layer]
    site = np.flatnonzero(onsite)  # M = 0: no entry
    sign = np.ones(1) if nlayer == 1 else 1.0 - 2.0 * np.arange(nlayer) / (nlayer - 1)
    model = CarbonModel(lattice, pos3[:, :2], np.concatenate([bond_a, site]),
                        np.concatenate([bond_b, site]),
                        np.concatenate([d3[:, :2], np.zeros((site.size, 2))]),
                        np.concatenate([t, onsite[site]]), dict(info or {}),
                        {"layer": sp.diags(sign[layer]).tocsr()})
    model.params = {k: float(params[k]) for k in DEFAULTS}
    model.layer, model.sublattice, model.z = layer, sublattice, pos3[:, 2].copy()
    model.orientation = orientation
    va, vb, vd, amp = valley_bonds(layer, sublattice, nn_bonds, bond_a, bond_b, d3, params["a"])
    model.valley_model = BondModel(lattice, pos3[:, :2], va, vb, vd, amp,
                                   {"kind": "valley_operator"})
    return model
