"""Moiré-cell fields for the continuum relaxation of theory §2.6a (see :mod:`.relax`).

The grid, the truncated moiré Fourier basis, the elastic operator (diagonal in Fourier space),
the stacking energy (GSFE) with its gradient and 2×2 Hessian, and exact trigonometric
interpolation of a field in that basis at arbitrary points. Lengths nm, energies meV.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.fft as sfft


def rotation(angle: float) -> np.ndarray:
    """2×2 rotation matrix R(angle) (counter-clockwise)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def graphene_cell(a: float) -> np.ndarray:
    """Rows a1 = a(1, 0), a2 = a(1/2, √3/2) of layer 1 (the convention of tbg_atomistic)."""
    return a * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]])


def gsfe_vectors(a: float) -> np.ndarray:
    """(3, 2) shortest reciprocal vectors b_j of layer 1 at 120°, |b| = 4π/(√3 a), Σ b_j = 0."""
    b0 = np.array([0.0, 4.0 * math.pi / (math.sqrt(3.0) * a)])
    return np.array([rotation(2.0 * math.pi * j / 3.0) @ b0 for j in range(3)])


def gsfe(delta: np.ndarray, a: float, v0: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V(δ) = Σ_j 2V0 cos(b_j·δ) [meV/nm²], its gradient (…, 2) and Hessian (…, 2, 2)."""
    b = gsfe_vectors(a)
    phase = delta @ b.T
    c, s = 2.0 * v0 * np.cos(phase), 2.0 * v0 * np.sin(phase)
    return c.sum(-1), -(s @ b), -np.einsum("...j,jx,jy->...xy", c, b, b)


def reduce_to_cell(delta: np.ndarray, a: float) -> np.ndarray:
    """δ minus the nearest layer-1 lattice vector (Wigner–Seitz cell about AA, δ = 0)."""
    prim = graphene_cell(a)
    base = np.round(delta @ np.linalg.inv(prim))
    best = np.full(delta.shape, np.inf)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            cand = delta - (base + np.array([i, j])) @ prim
            better = (np.linalg.norm(cand, axis=-1) < np.linalg.norm(best, axis=-1))[..., None]
            best = np.where(better, cand, best)
    return best


def elastic_matrix(g: np.ndarray, lam: float, mu: float) -> np.ndarray:
    """Φ_G = (λ + μ) G Gᵀ + μ|G|² 1, so E_el[u] = A Σ_G ½ u_G† Φ_G u_G (theory §2.6a).

    Equivalently ½|G|²[(λ + 2μ)|Ĝ·u_G|² + μ|Ĝ×u_G|²] per G: (λ + 2μ) longitudinal, μ shear.
    """
    gg = np.einsum("...x,...y->...xy", g, g)
    return (lam + mu) * gg + mu * (g ** 2).sum(-1)[..., None, None] * np.eye(2)


@dataclass(frozen=True)
class MoireGrid:
    """N×N grid r = (i/N) L1 + (j/N) L2 over the moiré cell and its Fourier basis.

    The basis is the truncated moiré Fourier series u(r) = Σ_G u_G e^{iG·r} over the disc
    0 < |G| < πN/|L| (C6-symmetric; it excludes the grid's Nyquist modes and G = 0, the
    rigid relative translation, a zero mode fixed at 0). Arrays in the rfft2 layout.
    """

    lattice: np.ndarray
    n: int

    @cached_property
    def area(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @cached_property
    def points(self) -> np.ndarray:
        f = np.arange(self.n) / self.n
        return f[:, None, None] * self.lattice[0] + f[None, :, None] * self.lattice[1]

    @cached_property
    def index(self) -> tuple[np.ndarray, np.ndarray]:
        n1 = np.rint(sfft.fftfreq(self.n) * self.n).astype(np.int64)
        n2 = np.rint(sfft.rfftfreq(self.n) * self.n).astype(np.int64)
        shape = (self.n, n2.size)
        return np.broadcast_to(n1[:, None], shape), np.broadcast_to(n2, shape)

    @cached_property
    def gvec(self) -> np.ndarray:
        recip = 2.0 * math.pi * np.linalg.inv(self.lattice).T
        n1, n2 = self.index
        return n1[..., None] * recip[0] + n2[..., None] * recip[1]

    @cached_property
    def mask(self) -> np.ndarray:
        radius = math.pi * self.n / np.linalg.norm(self.lattice, axis=1).max()
        norm = np.linalg.norm(self.gvec, axis=-1)
        return (norm > 0) & (norm < radius * (1.0 - 1e-9))

    def fft(self, x: np.ndarray) -> np.ndarray:
        """Masked Fourier coefficients u_G = FFT(x)/N² (rfft2 layout) of a real (N, N, 2) field."""
        return sfft.rfft2(x, axes=(0, 1)) * (self.mask[..., None] / self.n ** 2)

    def ifft(self, c: np.ndarray) -> np.ndarray:
        """Real (N, N, 2) grid values Σ_G c_G e^{iG·r} of rfft2-layout coefficients."""
        return sfft.irfft2(c * self.n ** 2, s=(self.n, self.n), axes=(0, 1))

    def upsample(self, c: np.ndarray, factor: int) -> np.ndarray:
        """Exact values of the series c on the (factor·N)² grid (zero padding)."""
        m = factor * self.n
        pad = np.zeros((m, m // 2 + 1, 2), dtype=complex)
        n1, n2 = self.index
        pad[n1[self.mask] % m, n2[self.mask]] = c[self.mask]
        return sfft.irfft2(pad * m ** 2, s=(m, m), axes=(0, 1))

    def project(self, x: np.ndarray) -> np.ndarray:
        """Orthogonal projection of a grid field onto the Fourier basis."""
        return self.ifft(self.fft(x))

    def apply(self, kmat: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Σ_G K_G u_G e^{iG·r} for per-G 2×2 matrices kmat (rfft layout, masked)."""
        return self.ifft(np.einsum("...xy,...y->...x", kmat, self.fft(x)))

    def curl_div(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spectral ∂x u_y − ∂y u_x and ∇·u of a field in the basis, on the grid."""
        c, g = self.fft(x), self.gvec
        curl = 1j * (g[..., 0] * c[..., 1] - g[..., 1] * c[..., 0])
        div = 1j * (g[..., 0] * c[..., 0] + g[..., 1] * c[..., 1])
        both = self.ifft(np.stack([curl, div], -1))
        return both[..., 0], both[..., 1]


def compact_series(grid: MoireGrid, coeffs: np.ndarray, rel: float = 1e-12
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-plane (n1, n2, c) with |c| > rel·max|c|; the field is 2 Re Σ c e^{iG·r}."""
    n1, n2 = grid.index
    half = grid.mask & ((n2 > 0) | (n1 > 0))
    amp = np.linalg.norm(coeffs, axis=-1)
    keep = half & (amp > rel * max(float(amp.max()), 1e-300))
    return n1[keep], n2[keep], coeffs[keep]


def interpolate(lattice: np.ndarray, series: tuple[np.ndarray, np.ndarray, np.ndarray],
                positions: np.ndarray, chunk_bytes: float = 16e6) -> np.ndarray:
    """Exact trigonometric interpolation u(r) = 2 Re Σ c_G e^{iG·r} at (n, 2) positions.

    Phases factorise, e^{iG·r} = e^{2πi n1 f1} e^{2πi n2 f2} (f fractional coordinates), so
    per chunk of atoms only two small exponential tables are built; memory ≈ 4·chunk_bytes.
    """
    n1, n2, c = series
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    out = np.zeros((positions.shape[0], 2))
    if n1.size == 0:
        return out
    frac = positions @ np.linalg.inv(lattice)
    k1 = np.arange(n1.min(), n1.max() + 1)
    k2 = np.arange(0, n2.max() + 1)
    step = max(1, int(chunk_bytes // (16 * (n1.size + k1.size + k2.size))))
    for s in range(0, positions.shape[0], step):
        f = frac[s:s + step]
        e1 = np.exp(2j * math.pi * f[:, :1] * k1)
        e2 = np.exp(2j * math.pi * f[:, 1:] * k2)
        out[s:s + step] = 2.0 * ((e1[:, n1 - k1[0]] * e2[:, n2]) @ c).real
    return out


def domain_wall_length(a: float, mu: float, v0: float) -> float:
    """ℓ = (a/4π)√(μ/V0) [nm], the shear domain wall's sine-Gordon length (module doc)."""
    return a / (4.0 * math.pi) * math.sqrt(mu / v0) if v0 > 0 else math.inf


def default_grid(lattice: np.ndarray, a: float, mu: float, v0: float) -> int:
    """N = next fast FFT size ≥ max(32, 2.5 L/ℓ), capped at 512 (module doc)."""
    length = float(np.linalg.norm(lattice, axis=1).max())
    want = 32 if v0 <= 0 else max(32, math.ceil(2.5 * length / domain_wall_length(a, mu, v0)))
    return min(512, sfft.next_fast_len(min(want, 512), real=True))


def newton_cg(g: MoireGrid, delta0: np.ndarray, a: float, p: dict[str, float],
               say: Callable[[str], None], frame: np.ndarray | None = None
               ) -> tuple[np.ndarray, float, int, float]:
    """Minimise E(u) = ½E_el[u] + ∫V(δ0 + Q u) (module doc; Q = ``frame``, the rotation that
    takes u into the frame of the GSFE's reciprocal vectors, default 1); returns
    (u, E, steps, residual)."""
    q_mat = np.eye(2) if frame is None else np.asarray(frame, dtype=float)
    kmat = 0.5 * elastic_matrix(g.gvec, p["lame_lambda"], p["lame_mu"]) * g.mask[..., None, None]
    shift = 8.0 * math.pi ** 2 * p["gsfe_v0"] / a ** 2 + 1e-12 * p["lame_mu"]
    minv = np.linalg.inv(kmat + shift * np.eye(2)) * g.mask[..., None, None]

    def state(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        kx = g.apply(kmat, x)
        v, dv, hv = gsfe(delta0 + x @ q_mat.T, a, p["gsfe_v0"])
        energy = g.area * float(np.mean(0.5 * (x * kx).sum(-1) + v))  # chain rule: Qᵀ∇V, QᵀHQ
        return energy, g.project(kx + dv @ q_mat), np.einsum("ai,...ab,bj->...ij", q_mat, hv,
                                                             q_mat)

    def dot(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((x * y).sum(-1)))

    x = np.zeros_like(delta0)
    energy, force, hv = state(x)
    f0 = rms = math.sqrt(dot(force, force))
    say(f"relax: N = {g.n}, E0 = {energy:.6e} meV, |f0| = {f0:.3e} meV/nm^3")
    steps = 0
    while f0 > 0 and rms > p["tol"] * f0:
        if steps >= int(p["max_iter"]):
            raise RuntimeError(f"relaxation not converged in max_iter = {steps} Newton steps: "
                               f"|f|/|f0| = {rms / f0:.3e} > tol = {p['tol']:.1e}")
        steps += 1
        eta = min(0.5, math.sqrt(rms / f0))
        r = -force
        z = g.apply(minv, r)
        d, q, rz = np.zeros_like(x), z, dot(r, z)
        for ncg in range(1, 501):
            hq = g.project(g.apply(kmat, q) + np.einsum("...xy,...y->...x", hv, q))
            curv = dot(q, hq)
            if curv <= 0:
                d = d if ncg > 1 else z
                break
            alpha = rz / curv
            d, r = d + alpha * q, r - alpha * hq
            if math.sqrt(dot(r, r)) <= eta * rms:
                break
            z = g.apply(minv, r)
            rz, rz_old = dot(r, z), rz
            q = z + (rz / rz_old) * q
        slope, step = g.area * dot(force, d), 1.0
        for _ in range(40):
            trial = state(x + step * d)
            if trial[0] <= energy + 1e-4 * step * slope + 1e-13 * abs(energy):
                break
            step *= 0.5
        else:
            raise RuntimeError(f"relaxation line search failed at Newton step {steps}")
        x, (energy, force, hv) = x + step * d, trial
        rms = math.sqrt(dot(force, force))
        say(f"relax: step {steps:3d}  E = {energy:.12e} meV  |f|/|f0| = {rms / f0:.3e}  "
            f"CG {ncg:3d}  step {step:.3g}")
    return x, energy, steps, (rms / f0 if f0 > 0 else 0.0)
