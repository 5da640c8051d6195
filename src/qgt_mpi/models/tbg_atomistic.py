"""Atomistic commensurate twisted bilayer graphene, (m, r = 1), p_z Slater–Koster (theory §2.6).

Geometry (unrelaxed, nm). Layer 1: a1 = a(1, 0), a2 = a(1/2, √3/2), carbon A at (a1 + a2)/3
and B at 2(a1 + a2)/3, so the origin is a hexagon centre. Layer 2 is layer 1 rotated by +θ
about the origin and lifted by d0, with cos θ = (3m² + 3m + 1/2)/(3m² + 3m + 1): the rotation
maps (m + 1) a1 + m a2 onto L1 = m a1 + (m + 1) a2, so both layers share the superlattice
L1, L2 = R(60°) L1 = −(m + 1) a1 + (2m + 1) a2 (|L|² = (3m² + 3m + 1) a²) with
2(3m² + 3m + 1) carbons per layer, N = 4(3m² + 3m + 1). Rotating about a hexagon centre (AA
stacking there) keeps the D6 point group, so C2zT protects the Dirac points at the moiré K.

Hoppings, sublattice, valley operator and the sublattice mass are those of every carbon model
(models/carbon.py, theory §2.6 and §2.6b): this module only places the atoms. Relaxation
(theory §2.6a, models/relax.py) moves the rigid positions in-plane by the continuum
displacement of each layer and sets the heights from the local stacking (corrugation).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from qgt_mpi.models.carbon import (
    DEFAULTS,
    CarbonModel,
    carbon_model,
    mass_text,
    slater_koster,
)

if TYPE_CHECKING:
    from qgt_mpi.models.relax import Relaxation

TBGAtomistic = CarbonModel  # the class of every carbon model (models/carbon.py)


def twist_angle(m: int) -> float:
    """θ in degrees of the (m, r = 1) cell: cos θ = (3m² + 3m + 1/2)/(3m² + 3m + 1)."""
    n = 3 * m * m + 3 * m + 1
    return math.degrees(math.acos((n - 0.5) / n))


def m_for_angle(theta: float) -> int:
    """The m ≥ 1 whose (m, 1) cell's twist is nearest ``theta`` degrees (θ ≈ 1/(√3 m) rad)."""
    guess = max(1, round(1.0 / (math.sqrt(3.0) * math.radians(theta))))
    near = range(max(1, guess - 3), guess + 4)
    return min(near, key=lambda m: abs(twist_angle(m) - theta))


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


def rigid_cell(m: int, a: float, d0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The rigid (m, 1) cell: lattice (2, 2), positions (N, 3) nm, layer (N,), θ [radians]."""
    theta = math.radians(twist_angle(m))
    prim = a * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]])
    lattice = np.array([[m, m + 1], [-(m + 1), 2 * m + 1]], dtype=float) @ prim
    p1, _ = _layer(m, a, 0.0, lattice)
    p2, _ = _layer(m, a, theta, lattice)
    n_layer = 2 * (3 * m * m + 3 * m + 1)
    if p1.shape[0] != n_layer or p2.shape[0] != n_layer:
        raise RuntimeError(f"cell construction found {p1.shape[0]}, {p2.shape[0]} carbons "
                           f"per layer, expected {n_layer}")
    layer = np.repeat([0, 1], n_layer)
    z = np.where(layer == 0, 0.0, d0)
    return lattice, np.column_stack([np.concatenate([p1, p2]), z]), layer, theta


def relaxed_positions(relaxation: Relaxation, pos3: np.ndarray, layer: np.ndarray,
                      d0: float) -> np.ndarray:
    """Rigid positions moved by the relaxation (theory §2.6a): in-plane u_ℓ(r), and heights
    z = d0/2 ∓ d(δ(r))/2 (layer 0 below, 1 above), so d_AA = d_AB = d0 is the rigid cell."""
    xy = pos3[:, :2]
    out = np.empty_like(pos3)
    out[:, :2] = xy + relaxation.displacement(xy, layer)
    d = relaxation.interlayer_distance(xy)
    out[:, 2] = 0.5 * d0 + np.where(layer == 0, -0.5, 0.5) * d
    return out


def tbg_atomistic(m: float, a: float = DEFAULTS["a"], d0: float = DEFAULTS["d0"],
                  vpp_pi0: float = DEFAULTS["vpp_pi0"],
                  vpp_sigma0: float = DEFAULTS["vpp_sigma0"],
                  delta0: float = DEFAULTS["delta0"],
                  cutoff: float = DEFAULTS["cutoff"], mass: float | list[float] = 0.0,
                  relaxation: Relaxation | None = None) -> CarbonModel:
    """Build the (m, r = 1) commensurate TBG model (theory §2.6); lengths nm, energies meV.

    ``mass``: sublattice mass M [meV], +M/2 on A and −M/2 on B of both layers, or one value
    per layer (module doc). ``relaxation``: a continuum relaxation of this cell
    (models/relax.py, theory §2.6a) applied to the rigid positions; None = rigid.

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
    lattice, pos3, layer, theta = rigid_cell(m, a, d0)
    info: dict[str, object] = {"kind": "tbg_atomistic", "length_unit": "nm", "m": m,
                               "theta": math.degrees(theta), **params}
    info["mass"] = mass_text(mass)
    if relaxation is not None:
        pos3 = relaxed_positions(relaxation, pos3, layer, d0)
        info.update({f"relax_{k}": v for k, v in relaxation.facts().items()})
    model = carbon_model(lattice, pos3, layer, params, mass, info)
    model.m, model.theta = m, math.degrees(theta)
    model.relaxation = relaxation
    return model


NEUTRALITY_DENSE = 3000  # orbitals: above, the neutrality search uses shift-and-invert (MUMPS)


def neutrality_energy(model: CarbonModel, dense_limit: int = NEUTRALITY_DENSE) -> float:
    """Charge-neutrality energy [meV]: the Dirac point at the moiré K (theory §2.6).

    The value of :func:`neutrality_search` (which also gives the splitting of the two states
    it averages).
    """
    return neutrality_search(model, dense_limit)[0]


def neutrality_search(model: CarbonModel, dense_limit: int = NEUTRALITY_DENSE
                      ) -> tuple[float, float]:
    """(E_CN, splitting) [meV]: charge neutrality and the gap between the two states at K
    whose mean it is (≈ 0 at a Dirac point, ≈ the sublattice mass with one).

    One p_z electron per carbon fills N/2 bands, and at K the bands N/2 − 1 and N/2 touch, so
    E_CN = (ε_{N/2−1}(K) + ε_{N/2}(K))/2. Up to ``dense_limit`` orbitals this is counted in the
    dense spectrum; above, the 2·n_layers states at K nearest the monolayer Dirac energy
    ε_D = Σ_same-sublattice t(d) e^{iK·d} (the Dirac points of every layer and valley) come
    from shift-and-invert and E_CN is the mean of the middle two. That count is a heuristic:
    it fails where other states at K lie nearer ε_D than the Dirac states (rigid (m, 1) cells
    with m ≥ 34: splitting 24 meV); the caller warns when the splitting exceeds the mass.
    Not collective.
    """
    k = model.dirac_point()
    h = model.csr(k)[0]
    n = model.norb
    if n <= dense_limit:
        e = np.linalg.eigvalsh(h.toarray())
        return float(0.5 * (e[n // 2 - 1] + e[n // 2])), float(e[n // 2] - e[n // 2 - 1])
    e0 = monolayer_dirac_energy(model.params)
    count = 2 * (int(model.layer.max()) + 1)
    e = nearest_eigenvalues(h, e0, count + 4)
    near = np.sort(e[np.argsort(np.abs(e - e0))[:count]])
    lo, hi = near[count // 2 - 1], near[count // 2]
    return float(0.5 * (lo + hi)), float(hi - lo)


def petsc_ready() -> bool:
    """Import (initialise) the complex petsc4py if it is there; True when it is.

    Collective over MPI_COMM_WORLD the first time (PETSc duplicates the world communicator):
    under MPI call it on every rank before one rank alone uses PETSc (a rank-0-only first
    import crashed the other rank waiting in a broadcast: "stack smashing detected").
    """
    try:
        from petsc4py import PETSc

        from qgt_mpi import _env  # noqa: F401  (points petsc4py at the complex build)
    except ImportError:
        return False
    return bool(np.iscomplexobj(np.array([], dtype=PETSc.ScalarType)))


def nearest_eigenvalues(h, sigma: float, count: int) -> np.ndarray:
    """The ``count`` eigenvalues of the Hermitian CSR ``h`` nearest ``sigma``. Serial.

    Shift-and-invert with MUMPS through SLEPc on PETSC_COMM_SELF when the complex petsc4py is
    importable (m = 31, N = 11 908: 1.3 s), else SciPy's SuperLU ``eigsh`` (16 s: COLAMD fill
    of the 2D bond graph is 18e6 entries against MUMPS's AMD ordering).
    """
    try:
        from petsc4py import PETSc
        from slepc4py import SLEPc

        from qgt_mpi import _env  # noqa: F401  (points petsc4py at the complex build)
    except ImportError:
        PETSc = None
    if PETSc is None or not np.iscomplexobj(np.array([], dtype=PETSc.ScalarType)):
        from scipy.sparse.linalg import eigsh

        return eigsh(h.tocsc(), k=count, sigma=sigma, which="LM", return_eigenvectors=False)
    from petsc4py import PETSc
    from slepc4py import SLEPc

    csr = h.tocsr()
    mat = PETSc.Mat().createAIJ(size=csr.shape, csr=(csr.indptr, csr.indices, csr.data),
                                comm=PETSc.COMM_SELF)
    eps = SLEPc.EPS().create(comm=PETSc.COMM_SELF)
    try:
        eps.setOperators(mat)
        eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
        eps.setDimensions(count)
        eps.setTarget(sigma)
        eps.setWhichEigenpairs(SLEPc.EPS.Which.TARGET_MAGNITUDE)
        st = eps.getST()
        st.setType(SLEPc.ST.Type.SINVERT)
        ksp = st.getKSP()
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
        eps.setTolerances(1e-12, 500)
        eps.solve()
        found = eps.getConverged()
        if found < count:
            raise RuntimeError(f"neutrality search: {found} of {count} eigenvalues converged")
        return np.array([eps.getEigenvalue(i).real for i in range(found)])
    finally:
        eps.destroy()
        mat.destroy()


def shift_energy(model: CarbonModel, shift: float) -> CarbonModel:
    """The same model with every on-site energy lowered by ``shift`` meV (new energy zero).

    Used to put the zero at charge neutrality (``energy_zero = "neutrality"``):
    sweep μ and the solver target are then relative to it; ``describe`` keeps the absolute
    value as ``neutrality_meV``.
    """
    n = model.norb
    key = model.rows[model.entry] * n + model.cols[model.entry]
    diag = np.arange(n)
    info = {**model.info, "neutrality_meV": float(shift), "energy_zero": "charge neutrality"}
    out = CarbonModel(model.lattice, model.positions, np.concatenate([key // n, diag]),
                       np.concatenate([key % n, diag]),
                       np.concatenate([model.d, np.zeros((n, 2))]),
                       np.concatenate([model.t, np.full(n, -float(shift), complex)]), info,
                       model.operators)
    out.copy_attributes(model)
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
