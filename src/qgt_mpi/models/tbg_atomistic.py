"""Atomistic commensurate twisted bilayer graphene, (m, r = 1), p_z Slater–Koster (theory §2.6).

Geometry (unrelaxed, nm). Layer 1: a1 = a(1, 0), a2 = a(1/2, √3/2), carbon A at (a1 + a2)/3
and B at 2(a1 + a2)/3, so the origin is a hexagon centre. Layer 2 is layer 1 rotated by +θ
about the origin and lifted by d0, with cos θ = (3m² + 3m + 1/2)/(3m² + 3m + 1): the rotation
maps (m + 1) a1 + m a2 onto L1 = m a1 + (m + 1) a2, so both layers share the superlattice
L1, L2 = R(60°) L1 = −(m + 1) a1 + (2m + 1) a2 (|L|² = (3m² + 3m + 1) a²) with
2(3m² + 3m + 1) carbons per layer, N = 4(3m² + 3m + 1). Rotating about a hexagon centre (AA
stacking there) keeps the D6 point group, so C2zT protects the Dirac points at the moiré K.

Hoppings (theory §2.6): t(d) = V_ppπ(d)[1 − (d_z/d)²] + V_ppσ(d)(d_z/d)² with
V_ppπ = V_ppπ0 e^{−(d − a0)/δ0}, V_ppσ = V_ppσ0 e^{−(d − d0)/δ0}, a0 = a/√3, for every pair
closer than ``cutoff``, found with a KD-tree over the home cell's periodic images (no O(N²)
loop). The result is a :class:`BondModel` in the Bloch convention of theory §1 (energies meV).

Valley operator (Colomés–Franz, Ramires–Lado): V = Σ_⟨⟨ab⟩⟩ (i/3√3) η_ab σz_a c_a† c_b over
intralayer next-nearest neighbours, η = ±1 the chirality of the two-bond path. For a monolayer
V(k) is the same function g(k) on both sublattices (it commutes with any monolayer H), with
g = +1 at the Dirac point K = R(φ_ℓ)(4π/3a, 0) of layer ℓ (valley +1) and −1 at −K; the
interlayer hoppings break [H, V] = 0 only weakly. For a hop along d (angle ψ) in a layer
rotated by φ_ℓ the entry is +i sign(cos 3(ψ − φ_ℓ))/(3√3) (sublattice signs cancel).

Sublattice mass (hBN alignment, theory §2.5 for the continuum analogue): an optional on-site
+M/2 on sublattice A and −M/2 on B of BOTH layers (``mass`` = M in meV), the convention of
``bm_continuum``'s ``mass`` so the two models can be compared band by band. It breaks C2z
(and C2zT), gaps the Dirac points and makes per-band valley Chern numbers integers
(geometry/valley.py, theory §5.8).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from qgt_mpi.models.sparse import BondModel

DEFAULTS = {"a": 0.246, "d0": 0.335, "vpp_pi0": -2700.0, "vpp_sigma0": 480.0,
            "delta0": 0.184 * 0.246, "cutoff": 0.5}  # nm, nm, meV, meV, nm, nm (theory §2.6)


def twist_angle(m: int) -> float:
    """θ in degrees of the (m, r = 1) cell: cos θ = (3m² + 3m + 1/2)/(3m² + 3m + 1)."""
    n = 3 * m * m + 3 * m + 1
    return math.degrees(math.acos((n - 0.5) / n))


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _layer(m: int, a: float, angle: float, lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carbons of one layer (rotated by ``angle``) inside the cell; (positions, sublattice)."""
    prim = a * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]]) @ _rotation(angle).T
    r1, r2 = np.arange(-m - 3, m + 3), np.arange(-3, 3 * m + 5)
    n1, n2 = (x.ravel() for x in np.meshgrid(r1, r2, indexing="ij"))
    bravais = np.column_stack([n1, n2]) @ prim
    inv = np.linalg.inv(lattice)
    out, sub = [], []
    for s, frac in ((0, 1 / 3), (1, 2 / 3)):  # the two sublattices A, B
        pos = bravais + frac * (prim[0] + prim[1])
        f = pos @ inv
        keep = np.all((f > -1e-9) & (f < 1 - 1e-9), axis=1)
        out.append(pos[keep])
        sub.append(np.full(int(keep.sum()), s))
    return np.concatenate(out), np.concatenate(sub)


def _pairs(pos3: np.ndarray, lattice: np.ndarray, cutoff: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (a, b, d3) with |d3| ≤ cutoff, d3 = image of b − a, via cKDTree over images."""
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


class TBGAtomistic(BondModel):
    """The (m, 1) commensurate TBG cell (see the module doc); built by :func:`tbg_atomistic`.

    Extra attributes: ``m``, ``theta`` (degrees), ``layer`` and ``sublattice`` (N,) in {0, 1},
    ``z`` (N,) nm, ``params``; ``operators["layer"]`` = diag(+1 layer 1, −1 layer 2) (CSR);
    :attr:`valley_model` holds the k-dependent valley operator as a BondModel.
    """

    m: int
    theta: float
    params: dict[str, float]
    layer: np.ndarray
    sublattice: np.ndarray
    z: np.ndarray
    valley_model: BondModel

    def valley(self, k: np.ndarray) -> sp.csr_matrix:
        """Valley operator V(k) at one Cartesian k (CSR, Hermitian, eigenvalues ≈ ±1 near K)."""
        return self.valley_model.csr(k)[0]

    def dirac_point(self) -> np.ndarray:
        """Cartesian moiré K: layer 1's graphene K = (4π/3a, 0) folded into the cell's BZ."""
        kg = np.array([4.0 * math.pi / (3.0 * self.params["a"]), 0.0])
        frac = np.mod(self.lattice @ kg / (2.0 * math.pi) + 1e-12, 1.0)
        return frac @ self.reciprocal

    def high_symmetry_points(self) -> dict[str, np.ndarray]:
        """Cartesian Γ, K (= dirac_point, reduced (1/3, 2/3)), K' (2/3, 1/3), M (1/2, 1/2)."""
        red = {"G": (0.0, 0.0), "K": (1 / 3, 2 / 3), "K'": (2 / 3, 1 / 3), "M": (0.5, 0.5)}
        return {name: np.asarray(r) @ self.reciprocal for name, r in red.items()}

    def describe(self) -> dict[str, object]:
        """Scalar facts for /model: m, θ, N, bonds, parameters."""
        return {**self.info, "norb": self.norb, "nnz": self.nnz, "nbonds": int(self.t.size)}


def tbg_atomistic(m: float, a: float = DEFAULTS["a"], d0: float = DEFAULTS["d0"],
                  vpp_pi0: float = DEFAULTS["vpp_pi0"],
                  vpp_sigma0: float = DEFAULTS["vpp_sigma0"],
                  delta0: float = DEFAULTS["delta0"],
                  cutoff: float = DEFAULTS["cutoff"], mass: float = 0.0) -> TBGAtomistic:
    """Build the (m, r = 1) commensurate TBG model (theory §2.6); lengths nm, energies meV.

    ``mass``: sublattice mass M [meV], +M/2 on A and −M/2 on B of both layers (module doc).

    Raises
    ------
    ValueError for m not an integer ≥ 1 or non-positive lengths.
    """
    if float(m) != int(m) or int(m) < 1:
        raise ValueError(f"m must be an integer >= 1, got {m}")
    if min(a, d0, delta0, cutoff) <= 0:
        raise ValueError("a, d0, delta0 and cutoff must be > 0 nm")
    m = int(m)
    params = {"a": float(a), "d0": float(d0), "vpp_pi0": float(vpp_pi0),
              "vpp_sigma0": float(vpp_sigma0), "delta0": float(delta0), "cutoff": float(cutoff)}
    theta = math.radians(twist_angle(m))
    prim = a * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]])
    lattice = np.array([[m, m + 1], [-(m + 1), 2 * m + 1]], dtype=float) @ prim
    p1, s1 = _layer(m, a, 0.0, lattice)
    p2, s2 = _layer(m, a, theta, lattice)
    n_layer = 2 * (3 * m * m + 3 * m + 1)
    if p1.shape[0] != n_layer or p2.shape[0] != n_layer:
        raise RuntimeError(f"cell construction found {p1.shape[0]}, {p2.shape[0]} carbons "
                           f"per layer, expected {n_layer}")
    positions = np.concatenate([p1, p2])
    layer = np.repeat([0, 1], n_layer)
    z = np.where(layer == 0, 0.0, d0)
    bond_a, bond_b, d3 = _pairs(np.column_stack([positions, z]), lattice, cutoff)
    t = slater_koster(d3, params)
    info = {"kind": "tbg_atomistic", "length_unit": "nm", "m": m,
            "theta": math.degrees(theta), **params,
            "mass": float(mass)}
    layer_op = sp.diags(np.where(layer == 0, 1.0, -1.0)).tocsr()
    sublattice = np.concatenate([s1, s2])
    site = np.arange(positions.shape[0]) if mass else np.zeros(0, np.int64)  # M = 0: no entry
    onsite = np.where(sublattice[site] == 0, 0.5, -0.5) * float(mass)  # +M/2 on A, −M/2 on B
    model = TBGAtomistic(lattice, positions, np.concatenate([bond_a, site]),
                         np.concatenate([bond_b, site]),
                         np.concatenate([d3[:, :2], np.zeros((site.size, 2))]),
                         np.concatenate([t, onsite]), info, {"layer": layer_op})
    model.m, model.theta, model.params = m, math.degrees(theta), params
    model.layer, model.sublattice, model.z = layer, sublattice, z
    model.valley_model = _valley_model(model, bond_a, bond_b, d3, theta)
    return model


def _valley_model(model: TBGAtomistic, a: np.ndarray, b: np.ndarray, d3: np.ndarray,
                  theta: float) -> BondModel:
    """The valley operator's bond list: intralayer NNN pairs (|d| = a) with ±i/(3√3)."""
    dist = np.linalg.norm(d3, axis=1)
    nnn = (np.abs(dist - model.params["a"]) < 1e-3 * model.params["a"]) & (np.abs(d3[:, 2]) < 1e-9)
    angle = np.where(model.layer[a[nnn]] == 0, 0.0, theta)
    psi = np.arctan2(d3[nnn, 1], d3[nnn, 0])
    amp = 1j * np.sign(np.cos(3.0 * (psi - angle))) / (3.0 * math.sqrt(3.0))
    return BondModel(model.lattice, model.positions, a[nnn], b[nnn], d3[nnn, :2], amp,
                     {"kind": "valley_operator"})


def neutrality_energy(model: TBGAtomistic, dense_limit: int = 3000) -> float:
    """Charge-neutrality energy [meV]: the Dirac point at the moiré K (theory §2.6).

    One p_z electron per carbon fills N/2 bands, and at K the bands N/2 − 1 and N/2 touch, so
    E_CN = (ε_{N/2−1}(K) + ε_{N/2}(K))/2. Up to ``dense_limit`` orbitals this is counted in the
    dense spectrum; above, the four states at K nearest the monolayer Dirac energy
    ε_D = Σ_same-sublattice t(d) e^{iK·d} (the two valleys' Dirac points) come from a
    shift-invert ``eigsh`` and E_CN is the mean of the middle two. Not collective (serial).
    """
    k = model.dirac_point()
    h = model.csr(k)[0]
    n = model.norb
    if n <= dense_limit:
        e = np.linalg.eigvalsh(h.toarray())
        return float(0.5 * (e[n // 2 - 1] + e[n // 2]))
    from scipy.sparse.linalg import eigsh

    e0 = monolayer_dirac_energy(model.params)
    e = eigsh(h.tocsc(), k=8, sigma=e0, which="LM", return_eigenvectors=False)
    near = np.sort(e[np.argsort(np.abs(e - e0))[:4]])
    return float(0.5 * (near[1] + near[2]))


def shift_energy(model: TBGAtomistic, shift: float) -> TBGAtomistic:
    """The same model with every on-site energy lowered by ``shift`` meV (new energy zero).

    Used to put the zero at charge neutrality (``energy_zero = "neutrality"``):
    sweep μ and the solver target are then relative to it; ``describe`` keeps the absolute
    value as ``neutrality_meV``.
    """
    n = model.norb
    key = model.rows[model.entry] * n + model.cols[model.entry]
    diag = np.arange(n)
    info = {**model.info, "neutrality_meV": float(shift), "energy_zero": "charge neutrality"}
    out = TBGAtomistic(model.lattice, model.positions, np.concatenate([key // n, diag]),
                       np.concatenate([key % n, diag]),
                       np.concatenate([model.d, np.zeros((n, 2))]),
                       np.concatenate([model.t, np.full(n, -float(shift), complex)]), info,
                       model.operators)
    for name in ("m", "theta", "params", "layer", "sublattice", "z", "valley_model"):
        setattr(out, name, getattr(model, name))
    return out


def monolayer_dirac_energy(params: dict) -> float:
    """ε_D of one layer with the same hoppings: Σ over same-sublattice neighbours of t e^{iK·d}."""
    a = params["a"]
    prim = a * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]])
    p = math.ceil(params["cutoff"] / a) + 1
    r = np.arange(-p, p + 1)
    d = np.column_stack([x.ravel() for x in np.meshgrid(r, r, indexing="ij")]) @ prim
    d = d[(np.linalg.norm(d, axis=1) > 0) & (np.linalg.norm(d, axis=1) <= params["cutoff"])]
    t = slater_koster(np.pad(d, ((0, 0), (0, 1))), params)
    kg = np.array([4.0 * math.pi / (3.0 * a), 0.0])
    return float(np.real(np.sum(t * np.exp(1j * d @ kg))))
