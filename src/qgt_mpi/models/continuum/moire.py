"""Physical continuum models as specs for the one builder (theory §2.5, §2.5a).

Bistritzer–MacDonald TBG (theory §2.5): q1 = k_θ(0, −1), q2 = k_θ(√3/2, 1/2),
q3 = k_θ(−√3/2, 1/2), k_θ = 2k_D sin(θ/2), k_D = 4π/(3a); b1 = q2 − q1, b2 = q3 − q1;
Dirac layers at κ_1 = (1/3, 1/3), κ_2 = (2/3, 2/3) (so p = k + G + q1, k + G + 2q1);
tunnelling ⟨2, G + s_j| H |1, G⟩ = T_j = w0 σ0 + w1 (cos φ_j σx + sin φ_j σy),
φ_j = 2π(j − 1)/3, s_j = (0, 0), (1, 0), (0, 1).

Strained TBG (theory §2.5a): layer ℓ rotated by θ_ℓ = ∓θ/2 and strained by E_ℓ = ∓S/2,
S = R(φ)ᵀ diag(−ε, νε) R(φ) (uniaxial heterostrain ε along φ, Poisson ratio ν); its Dirac
points K_ℓ^(j) = (1 − E_ℓᵀ) R(θ_ℓ) C₃^{j−1} K_D + A_ℓ, K_D = (4π/3a)(1, 0), with the strain
gauge field A_ℓ = (√3β/2a)(E_xx − E_yy, −2E_xy) of layer ℓ (valley +1); q_j = K_1^(j) − K_2^(j),
b1 = q2 − q1, b2 = q3 − q1, Dirac points D_1,2 = M ± q1/2 about the cutoff centre M; the cones
are optionally rotated by θ_ℓ. At ε = 0 without cone rotation this is ``bm_spec`` exactly.

Helical trilayer graphene (theory §2.5a): three Dirac layers with equal consecutive twists θ,
to first order in θ Dirac points κ_ℓ = (1/6, 1/6), (1/2, 1/2), (5/6, 5/6) (the middle layer's
on the cutoff centre M); layers 1–2 coupled by the BM T_j, layers 2–3 by the same T_j shifted
by the offset d = D(a_1 + 2a_2)/3 of the second moiré (D = ``domain`` = ±1, the two
C_2zT-breaking domains, AA of one moiré on AB of the other): T_j e^{−i s_j·(1, 2)2πD/3}.

Twisted homobilayer TMD, valley K [Wu et al., PRL 122, 086402 (2019)] (theory §2.5a):
  H = [[c|k − κ₊|² + Δ_b(r) + U/2, Δ_T(r)], [Δ_T(r)†, c|k − κ₋|² + Δ_t(r) − U/2]],
c = −ħ²/2m*, Δ_{b,t}(r) = 2V Σ_{j=1,3,5} cos(g_j·r ± ψ), Δ_T(r) = w(1 + e^{−ig_2·r}
+ e^{−ig_3·r}), g_j = (4π/√3 a_M)(cos((j−1)π/3), sin((j−1)π/3)), a_M = a/(2 sin(θ/2)),
U = ``layer_potential``. Reciprocal basis b1 = g_2, b2 = g_3 (so g_1 = b1 − b2,
g_3 = b2, g_5 = −b1); κ₊ = (b1 + b2)/3, κ₋ = 2(b1 + b2)/3, zone corners with
κ₋ − κ₊ = (0, 4π/3a_M): then the three tunnelling momenta 0, −g_2, −g_3 are those of
momentum conservation, p_b − p_t ∈ {Q − C₃ⁿQ}, Q = κ₋ − κ₊ (theory §2.5a). Layer b is
layer 0 (``layer`` operator +1).
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.models.continuum.presets import HBAR2_2ME
from qgt_mpi.models.continuum.spec import ContinuumSpec, Harmonic, Layer

BM_SHIFTS = ((0, 0), (1, 0), (0, 1))  # G' − G of the tunnelling T_1, T_2, T_3
TMD_G135 = ((1, -1), (0, 1), (-1, 0))  # g_1, g_3, g_5 in reduced coordinates of (g_2, g_3)
TMD_TUNNEL = ((0, 0), (-1, 0), (0, -1))  # 0, −g_2, −g_3


def bm_spec(theta: float, w0: float, w1: float, hbar_v: float, shells: int, valley: int,
            mass: float = 0.0, a: float = 0.246, info: dict | None = None) -> ContinuumSpec:
    """The Bistritzer–MacDonald model (theory §2.5) as a spec; θ in degrees."""
    kt = 2.0 * (4.0 * math.pi / (3.0 * a)) * math.sin(math.radians(theta) / 2.0)
    s3 = math.sqrt(3.0)
    q = kt * np.array([[0.0, -1.0], [s3 / 2, 0.5], [-s3 / 2, 0.5]])
    b = np.array([q[1] - q[0], q[2] - q[0]])
    layers = tuple(Layer("dirac", point, hbar_v=hbar_v, mass=mass)
                   for point in ((1 / 3, 1 / 3), (2 / 3, 2 / 3)))
    harmonics = []
    for j, shift in enumerate(BM_SHIFTS):
        phi = 2.0 * math.pi * j / 3.0
        tj = np.array([[w0, w1 * np.exp(-1j * phi)], [w1 * np.exp(1j * phi), w0]])
        harmonics.append(Harmonic(1, 0, shift, tj))  # Hermitian: M = T_j† = T_j
    return ContinuumSpec(b, layers, tuple(harmonics), shells, valley, dict(info or {}))


def strained_spec(theta: float, w0: float, w1: float, hbar_v: float, shells: int,
                  valley: int, mass: float = 0.0, strain: float = 0.0, strain_angle: float = 0.0,
                  poisson: float = 0.16, beta: float = 3.14, rotate_cones: bool = False,
                  a: float = 0.246, info: dict | None = None) -> ContinuumSpec:
    """TBG with rotated cones and uniaxial heterostrain (module doc); angles in degrees."""
    phi = math.radians(strain_angle)
    rot = np.array([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]])
    big_s = rot.T @ np.diag([-strain, poisson * strain]) @ rot
    k_d = 4.0 * math.pi / (3.0 * a) * np.array([1.0, 0.0])
    dirac = []
    for sign in (-1.0, 1.0):  # layer 1: −θ/2, −S/2; layer 2: +θ/2, +S/2
        t, e = math.radians(sign * theta / 2), sign * big_s / 2
        r_t = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        gauge = math.sqrt(3.0) * beta / (2.0 * a) * np.array([e[0, 0] - e[1, 1], -2 * e[0, 1]])
        dirac.append([(np.eye(2) - e.T) @ r_t @ _c3(j) @ k_d + gauge for j in range(3)])
    q = np.array([dirac[0][j] - dirac[1][j] for j in range(3)])
    b = np.array([q[1] - q[0], q[2] - q[0]])
    centre = np.array([0.5, 0.5])
    half = np.linalg.solve(b.T, q[0]) / 2  # q1/2 reduced: D_1 = M + q1/2, D_2 = M − q1/2
    layers = tuple(Layer("dirac", tuple(centre - s * half), hbar_v=hbar_v, mass=mass,
                         rotation=math.radians(s * theta / 2) if rotate_cones else 0.0)
                   for s in (-1.0, 1.0))
    bm = bm_spec(theta, w0, w1, hbar_v, shells, valley, mass, a)
    return ContinuumSpec(b, layers, bm.harmonics, shells, valley, dict(info or {}))


def _c3(j: int) -> np.ndarray:
    """Rotation by 2πj/3."""
    c, s = math.cos(2 * math.pi * j / 3), math.sin(2 * math.pi * j / 3)
    return np.array([[c, -s], [s, c]])


def helical_spec(theta: float, w0: float, w1: float, hbar_v: float, shells: int, valley: int,
                 mass: float = 0.0, domain: int = 1, info: dict | None = None) -> ContinuumSpec:
    """Helical trilayer graphene (module doc) as a spec; θ the consecutive twist, degrees."""
    bm = bm_spec(theta, w0, w1, hbar_v, shells, valley, mass)
    layers = tuple(Layer("dirac", (p / 6, p / 6), hbar_v=hbar_v, mass=mass) for p in (1, 3, 5))
    second = [Harmonic(2, 1, h.shift, h.matrix * np.exp(
        -2j * np.pi * domain * (h.shift[0] + 2 * h.shift[1]) / 3)) for h in bm.harmonics]
    return ContinuumSpec(bm.b, layers, bm.harmonics + tuple(second), shells, valley,
                         dict(info or {}))


def tmd_spec(theta: float, a: float, mstar: float, V: float, w: float, psi: float,
             layer_potential: float, shells: int, valley: int,
             info: dict | None = None) -> ContinuumSpec:
    """The twisted homobilayer TMD model of valley K (module doc) as a spec.

    θ, ψ in degrees; a in nm; m* in m_e; V, w, layer_potential in meV.
    """
    a_m = a / (2.0 * math.sin(math.radians(theta) / 2.0))
    g = 4.0 * math.pi / (math.sqrt(3.0) * a_m)
    b = g * np.array([[0.5, math.sqrt(3.0) / 2], [-0.5, math.sqrt(3.0) / 2]])  # g_2, g_3
    c = -HBAR2_2ME / mstar
    layers = (Layer("parabolic", (1 / 3, 1 / 3), c=c, potential=layer_potential / 2),
              Layer("parabolic", (2 / 3, 2 / 3), c=c, potential=-layer_potential / 2))
    phase = np.exp(1j * math.radians(psi))
    harmonics = [Harmonic(0, 0, s, np.array([[V * phase]])) for s in TMD_G135]
    harmonics += [Harmonic(1, 1, s, np.array([[V * np.conj(phase)]])) for s in TMD_G135]
    harmonics += [Harmonic(0, 1, s, np.array([[w + 0j]])) for s in TMD_TUNNEL]
    facts = {"moire_length": a_m, **(info or {})}
    return ContinuumSpec(b, layers, tuple(harmonics), shells, valley, facts, spin=1)
