"""Continuum in-plane relaxation and corrugation of a commensurate twisted bilayer (theory §2.6a).

Energy (Nam & Koshino [NK17]). Layer 2 is layer 1 rotated by +θ about an AA point (the
geometry of ``tbg_atomistic``); the rigid disregistry is δ0(r) = (1 − R(θ)⁻¹) r, moiré-periodic
modulo graphene lattice vectors (checked). With in-plane displacements u_l(r), δ = δ0 +
R(−θ/2)(u2 − u1) (the GSFE frame bisects the layers: exact layer-swap C₂ symmetry, theory §2.6a)
and, per moiré cell,  E = Σ_l ∫ [λ/2 (∇·u_l)² + μ ε_ij ε_ij] + ∫ V(δ),
V(δ) = Σ_j 2V0 cos(b_j·δ) (b_j the three shortest reciprocal vectors of layer 1): 6V0 at AA,
−3V0 at AB/BA, so ΔE_AA−AB = 9V0 per area. With s = u1 + u2, u = u2 − u1 the elastic energy
is ½E_el[s] + ½E_el[u] and V depends on u only, so the minimiser has s = 0: u1 = −u/2, u2 = u/2.
Only u is solved for, E(u) = ½E_el[u] + ∫V(δ0 + R(−θ/2)u).

Fourier representation. u is a truncated moiré Fourier series, u(r) = Σ_G u_G e^{iG·r} over
0 < |G| < πN/|L| (C6-symmetric disc, no Nyquist modes; G = 0, a rigid sliding zero mode, is
fixed at 0), sampled on an N×N grid over the cell. E_el[u] = A Σ_G ½|G|²[(λ + 2μ)|Ĝ·u_G|²
+ μ|Ĝ×u_G|²] exactly (diagonal per G); V is evaluated on the grid (pseudo-spectral).

Newton–CG. Gradient (force density) f = P[K u + ∇V(δ)], K_G = Φ_G/2; Hessian-vector product
P[K v + H_V(δ) v] with the pointwise 2×2 GSFE Hessian; truncated CG (Eisenstat–Walker forcing
min(0.5, √(|f|/|f0|)), exit on negative curvature) preconditioned by (K_G + c)⁻¹, c = 8π²V0/a²
the GSFE curvature at AB; backtracking (Armijo) line search on E. Converged when
rms(f)/rms(f0) ≤ ``tol``; else RuntimeError after ``max_iter`` Newton steps.

Corrugation: d(δ) = d0 + 2d1 Σ_j cos(b_j·δ) with d(AA) = d_aa, d(AB) = d_ab, so
d0 = (d_aa + 2d_ab)/3, d1 = (d_aa − d_ab)/9; z1 = z_c − d/2, z2 = z_c + d/2, z_c = 0.335/2
(the rigid tbg_atomistic heights 0 and 0.335 nm when d_aa = d_ab = 0.335). The in-plane
problem does not feel d (NK17).

Constants. λ = 3.25 eV/Å², μ = 9.57 eV/Å² (graphene, as used in [NK17]); V0 = 0.160 eV/nm²
[NK17] (9V0 = 1.44 eV/nm², 18.9 meV per carbon of the bilayer). Shear walls: (μ/4)|δ'|² =
V − V_AB along AB–SP–BA gives the small-angle width w∞ = (a/2√3)√(μ/V0) = 5.49 nm (tested:
5.46 nm at 0.50°, 5.49 nm at 0.30°) and the tail length ℓ = (a/4π)√(μ/V0) = 1.51 nm. Default
grid N = next fast size ≥ max(32, 2.5 L/ℓ), ≤ 512: from N to 2N max|u_l| changes 2e-8
(m = 31, N = 32) and 2.4e-6 (m = 60, N = 45) relative (tests). Relaxation takes 0.02 s
(m = 31) and 0.05 s (m = 60), 7 Newton steps each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from qgt_mpi.models.relax_fields import (
    MoireGrid,
    compact_series,
    default_grid,
    graphene_cell,
    gsfe,
    interpolate,
    newton_cg,
    reduce_to_cell,
    rotation,
)

RELAX_DEFAULTS: dict[str, float] = {
    "lame_lambda": 3.25e5, "lame_mu": 9.57e5, "gsfe_v0": 160.0,  # meV/nm² [NK17]
    "d_aa": 0.360, "d_ab": 0.335, "grid": 0, "tol": 1e-8, "max_iter": 50}  # nm; 0 = automatic
Z_CENTRE = 0.335 / 2  # nm: tbg_atomistic's rigid layers at z = 0 and d0 = 0.335


@dataclass(frozen=True)
class Relaxation:
    """Relaxed difference field u = u2 − u1 of theory §2.6a (rfft2-layout coefficients)."""

    lattice: np.ndarray
    theta: float
    a: float
    grid: int
    coeffs: np.ndarray
    energy_meV: float  # noqa: N815 (the integrator's name)
    energy_rigid_meV: float  # noqa: N815
    iterations: int
    residual: float
    log: tuple[str, ...]
    d_aa: float
    d_ab: float
    params: dict[str, float] = field(default_factory=dict)

    @cached_property
    def _grid(self) -> MoireGrid:
        return MoireGrid(self.lattice, self.grid)

    @cached_property
    def _series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return compact_series(self._grid, self.coeffs)

    def _delta0(self, r: np.ndarray) -> np.ndarray:
        return r @ (np.eye(2) - rotation(-self.theta)).T

    def _framed(self, u: np.ndarray) -> np.ndarray:
        """R(−θ/2) u: the displacement difference in the GSFE's frame (module doc)."""
        return u @ rotation(-0.5 * self.theta).T

    def _u(self, positions: np.ndarray) -> np.ndarray:
        return interpolate(self.lattice, self._series, positions)

    def displacement(self, positions: np.ndarray, layer: np.ndarray) -> np.ndarray:
        """In-plane displacement u_l [nm] (n, 2) at rigid positions (n, 2); layer 0 or 1."""
        sign = np.where(np.asarray(layer).reshape(-1) == 0, -0.5, 0.5)
        return sign[:, None] * self._u(positions)

    def disregistry(self, positions: np.ndarray) -> np.ndarray:
        """Relaxed local disregistry δ = δ0 + u2 − u1 [nm] (n, 2), not reduced."""
        r = np.asarray(positions, dtype=float).reshape(-1, 2)
        return self._delta0(r) + self._framed(self._u(r))

    def _distance(self, delta: np.ndarray) -> np.ndarray:
        d0, d1 = (self.d_aa + 2.0 * self.d_ab) / 3.0, (self.d_aa - self.d_ab) / 9.0
        return d0 + d1 * gsfe(delta, self.a, 1.0)[0]

    def interlayer_distance(self, positions: np.ndarray) -> np.ndarray:
        """d(δ(r)) [nm] (n,): d_aa at AA, d_ab at AB/BA."""
        return self._distance(self.disregistry(positions))

    def heights(self, positions: np.ndarray, layer: np.ndarray) -> np.ndarray:
        """z [nm] (n,): z_c ∓ d/2 for layer 0/1 (rigid 0 and 0.335 when d_aa = d_ab = 0.335)."""
        sign = np.where(np.asarray(layer).reshape(-1) == 0, -0.5, 0.5)
        return Z_CENTRE + sign * self.interlayer_distance(positions)

    @cached_property
    def _u_grid(self) -> np.ndarray:
        return self._grid.ifft(self.coeffs)

    def max_displacement(self) -> float:
        """max |u_l| = |u|/2 [nm], sampled exactly on a grid ≥ 512 and ≥ 4N (2N if N > 128)."""
        factor = max(-(-512 // self.grid), 2 if self.grid > 128 else 4)
        fine = self._grid.upsample(self.coeffs, factor)
        return float(0.5 * np.linalg.norm(fine, axis=-1).max())

    def stacking_map(self) -> dict[str, np.ndarray]:
        """On the grid: r, δ reduced to the Wigner–Seitz cell about AA, GSFE [meV/nm²], d [nm]."""
        r = self._grid.points
        delta = self._delta0(r) + self._framed(self._u_grid)
        v = gsfe(delta, self.a, self.params.get("gsfe_v0", RELAX_DEFAULTS["gsfe_v0"]))[0]
        return {"r": r, "delta": reduce_to_cell(delta, self.a), "energy": v,
                "d": self._distance(delta)}

    def deformation_maps(self) -> dict[str, np.ndarray]:
        """On the grid: div u, curl u of u = u2 − u1 and local twist θ + ½ curl u [rad]."""
        curl, div = self._grid.curl_div(self._u_grid)
        return {"div": div, "curl": curl, "local_twist": self.theta + 0.5 * curl}

    def fractions(self) -> dict[str, float]:
        """Grid fractions: AA |δ| < a/(2√3) (rigid 0.302), AB/BA |δ − δ_AB| < a/(4√3) (0.151)."""
        delta, rad = self.stacking_map()["delta"], self.a / (2.0 * math.sqrt(3.0))
        aa = float(np.mean(np.linalg.norm(delta, axis=-1) < rad))
        rad = rad / 2.0
        prim = graphene_cell(self.a)
        ab_pts = np.array([(prim[0] + prim[1]) / 3, 2 * (prim[0] + prim[1]) / 3])
        near = [np.linalg.norm(reduce_to_cell(delta - p, self.a), axis=-1) < rad for p in ab_pts]
        return {"aa": aa, "ab": float(np.mean(near[0] | near[1]))}

    def wall_width(self, samples: int = 4001) -> float:
        """Shear domain-wall width [nm]: |δ_BA − δ_AB| / max |dδ/ds| along the line from the AB
        centre (L1 + L2)/3 to the BA centre 2(L1 + L2)/3, which crosses one wall at right angles.
        """
        s = np.linspace(0.0, 1.0, samples)
        ends = np.sum(self.lattice, axis=0) / 3.0
        delta = self.disregistry(np.outer(1.0 + s, ends))
        slope = np.linalg.norm(np.diff(delta, axis=0), axis=1) / (np.linalg.norm(ends) / (
            samples - 1))
        return float(np.linalg.norm(delta[-1] - delta[0]) / slope.max())

    def facts(self) -> dict[str, float | int | str]:
        """Scalars for the output file (theory §2.6a)."""
        frac = self.fractions()
        return {"method": "continuum relaxation [NK17], Fourier Newton-CG (theory 2.6a)",
                "max_displacement_nm": self.max_displacement(), "energy_meV": self.energy_meV,
                "energy_rigid_meV": self.energy_rigid_meV,
                "energy_gain_meV_per_nm2": (self.energy_rigid_meV - self.energy_meV)
                / float(abs(np.linalg.det(self.lattice))),
                "aa_fraction": frac["aa"], "ab_fraction": frac["ab"],
                "wall_width_nm": self.wall_width(),
                "iterations": self.iterations, "residual": self.residual, "grid": self.grid,
                "d_aa": self.d_aa, "d_ab": self.d_ab, **{k: float(v) for k, v in
                                                          self.params.items()}}


def _check(params: dict | None) -> dict[str, float]:
    p = dict(RELAX_DEFAULTS)
    for key, value in (params or {}).items():
        if key not in p:
            raise ValueError(f"relaxation parameter {key!r} unknown; allowed: {sorted(p)}")
        if value is not None:  # None: the default (a deck key left unset)
            p[key] = value
    for key, value in p.items():
        ok = isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
        if key == "grid":
            ok = ok and float(value) == int(value) and (int(value) == 0 or 8 <= value <= 512)
            allowed = "0 (automatic) or an integer 8..512"
        elif key == "max_iter":
            ok = ok and float(value) == int(value) and value >= 1
            allowed = "an integer >= 1"
        elif key == "gsfe_v0":
            ok, allowed = ok and value >= 0, "a finite number >= 0 meV/nm^2"
        else:
            ok, allowed = ok and value > 0, "a finite number > 0"
        if not ok:
            raise ValueError(f"relaxation parameter {key} = {value!r} not allowed: {allowed}")
    if p["d_aa"] < p["d_ab"]:
        raise ValueError(f"relaxation parameters need d_aa >= d_ab > 0 nm, got d_aa = "
                         f"{p['d_aa']}, d_ab = {p['d_ab']}")
    return {k: float(v) for k, v in p.items()}


def _check_geometry(lattice: np.ndarray, a: float, theta: float) -> None:
    if lattice.shape != (2, 2) or not np.all(np.isfinite(lattice)) or abs(
            np.linalg.det(lattice)) < 1e-12:
        raise ValueError(f"lattice must be a finite non-singular (2, 2) array, got {lattice!r}")
    if not (math.isfinite(a) and a > 0 and math.isfinite(theta) and 0 < abs(theta) < math.pi):
        raise ValueError(f"need a > 0 nm and 0 < |theta| < pi rad, got a = {a}, theta = {theta}")
    shift = lattice @ (np.eye(2) - rotation(-theta)).T @ np.linalg.inv(graphene_cell(a))
    if np.abs(shift - np.round(shift)).max() > 1e-6:
        raise ValueError("lattice is not commensurate with the twist: (1 - R^-1) L is not a "
                         f"layer-1 lattice vector (fractional {shift.tolist()})")


def relax_twisted_bilayer(lattice: np.ndarray, a: float, theta: float,
                          params: dict | None = None,
                          log: Callable[[str], None] | None = None) -> Relaxation:
    """Relax a commensurate twisted bilayer in the continuum (theory §2.6a, [NK17]).

    Parameters
    ----------
    lattice : (2, 2) moiré superlattice rows L1, L2 [nm] (tbg_atomistic's cell).
    a : graphene lattice constant [nm].
    theta : twist angle [rad] of layer 2 relative to layer 1 (about an AA point).
    params : overrides of :data:`RELAX_DEFAULTS` (meV/nm², nm; grid 0 = automatic).
    log : called with one line per Newton step (the same lines are in ``Relaxation.log``).

    Returns
    -------
    Relaxation

    Raises
    ------
    ValueError for a bad parameter (naming key, value and what is allowed) or a lattice not
    commensurate with θ; RuntimeError if not converged in ``max_iter`` Newton steps.
    """
    p = _check(params)
    lattice = np.asarray(lattice, dtype=float)
    a, theta = float(a), float(theta)
    _check_geometry(lattice, a, theta)
    n = int(p["grid"]) or default_grid(lattice, a, p["lame_mu"], p["gsfe_v0"])
    g = MoireGrid(lattice, n)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if log is not None:
            log(line)

    delta0 = g.points @ (np.eye(2) - rotation(-theta)).T
    rigid = g.area * float(np.mean(gsfe(delta0, a, p["gsfe_v0"])[0]))
    x, energy, steps, residual = newton_cg(g, delta0, a, p, say, rotation(-0.5 * theta))
    return Relaxation(lattice=lattice, theta=theta, a=a, grid=n, coeffs=g.fft(x),
                      energy_meV=energy, energy_rigid_meV=rigid, iterations=steps,
                      residual=residual, log=tuple(lines), d_aa=p["d_aa"], d_ab=p["d_ab"],
                      params={k: p[k] for k in ("lame_lambda", "lame_mu", "gsfe_v0", "tol")})
