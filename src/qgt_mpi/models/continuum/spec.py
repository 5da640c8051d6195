"""What a continuum moiré model is, as data: layers, kinetic terms, harmonics (theory §2.5a).

A continuum model of one valley is fixed by

* the moiré reciprocal vectors b1, b2 (Cartesian rows, 1/nm) and a plane-wave cutoff
  ``shells``: G = n1 b1 + n2 b2 with (|n1| + |n2| + |n1 + n2|)/2 ≤ shells (1 + 3s(s+1)
  vectors, the same set for every layer);
* per layer ℓ a kinetic term at the momentum p = k + G − κ_ℓ measured from the layer's band
  extremum κ_ℓ (reduced coordinates of b1, b2), and a constant layer potential U_ℓ:
  Dirac, h_ℓ(p) = ħv [[m/2ħv, e^{iφ_ℓ}(p_x − i p_y)], [e^{−iφ_ℓ}(p_x + i p_y), −m/2ħv]]
  (φ_ℓ the rotation of the cone, m a sublattice mass; two orbitals A, B), or parabolic,
  h_ℓ(p) = s ħ²|p|²/2m* (s = −1 for a valence band; one orbital);
* harmonics (a, b, s, M): the Fourier component M e^{i g_s·r}, g_s = s1 b1 + s2 b2, of the
  block (layer a ← layer b), i.e. ⟨a, G + g_s| H |b, G⟩ = M (an orbital matrix), with the
  Hermitian partner ⟨b, G| H |a, G + g_s⟩ = M† added by the builder. Intralayer moiré
  potentials (a = b, s ≠ 0) and interlayer tunnelling (a ≠ b) are both lists of them.

``valley`` +1 is the model as written, −1 its time-reversal partner, 0 both (block diagonal);
``spin`` the spin states each valley carries (2 for graphene, 1 for spin-valley-locked TMD
valence bands): a run's ``degeneracy`` above spin × valleys counts a valley the model lacks.
Presets (models/continuum/presets.py) are functions of physical parameters returning a
:class:`ContinuumSpec`; the builder (models/continuum/builder.py) never looks at which one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINETIC_ORBITALS = {"dirac": 2, "parabolic": 1}
VALLEYS = {1: (1,), -1: (-1,), 0: (1, -1)}  # valley key -> the valleys it contains


@dataclass(frozen=True)
class Layer:
    """One layer's kinetic term and potential (see the module doc).

    Parameters
    ----------
    kinetic : "dirac" or "parabolic".
    point : κ_ℓ in reduced coordinates of (b1, b2): where p = 0.
    hbar_v : Dirac velocity ħv (meV·nm). rotation : cone rotation φ_ℓ (radians).
    mass : Dirac sublattice mass m (meV), +m/2 on A, −m/2 on B.
    c : parabolic coefficient s ħ²/2m* (meV·nm², negative for a valence band).
    potential : constant layer potential U_ℓ (meV) on every orbital of the layer.
    """

    kinetic: str
    point: tuple[float, float]
    hbar_v: float = 0.0
    rotation: float = 0.0
    mass: float = 0.0
    c: float = 0.0
    potential: float = 0.0


@dataclass(frozen=True)
class Harmonic:
    """⟨a, G + s1 b1 + s2 b2| H |b, G⟩ = matrix (orbitals of a × orbitals of b), plus h.c."""

    a: int
    b: int
    shift: tuple[int, int]
    matrix: np.ndarray


@dataclass(frozen=True)
class ContinuumSpec:
    """A continuum model as data (module doc); ``info`` is reported by ``describe()``."""

    b: np.ndarray
    layers: tuple[Layer, ...]
    harmonics: tuple[Harmonic, ...]
    shells: int
    valley: int = 1
    info: dict = field(default_factory=dict)
    spin: int = 2  # spin states per valley (1: spin-valley locked, e.g. TMD valence bands)

    @property
    def orbitals(self) -> int:
        """Orbitals per layer (the same for every layer)."""
        counts = {KINETIC_ORBITALS[layer.kinetic] for layer in self.layers}
        if len(counts) != 1:
            raise ValueError("every layer of a continuum model needs the same kinetic kind")
        return counts.pop()


def hex_shells(shells: int) -> np.ndarray:
    """Integer pairs (n1, n2) with (|n1| + |n2| + |n1 + n2|)/2 ≤ shells; (1 + 3s(s+1), 2)."""
    r = np.arange(-shells, shells + 1)
    n1, n2 = (x.ravel() for x in np.meshgrid(r, r, indexing="ij"))
    keep = (np.abs(n1) + np.abs(n2) + np.abs(n1 + n2)) <= 2 * shells
    return np.column_stack([n1[keep], n2[keep]])


def shifted_index(gvec: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Index of G + n1 b1 + n2 b2 in ``gvec`` for every G, −1 outside the cutoff (vectorised)."""
    span = int(np.abs(gvec).max()) + max(abs(n1), abs(n2)) + 1
    table = np.full((2 * span + 1, 2 * span + 1), -1, dtype=np.int64)
    table[gvec[:, 0] + span, gvec[:, 1] + span] = np.arange(len(gvec))
    shifted = gvec + np.array([n1, n2])
    inside = np.all(np.abs(shifted) <= span, axis=1)
    out = np.full(len(gvec), -1, dtype=np.int64)
    out[inside] = table[shifted[inside, 0] + span, shifted[inside, 1] + span]
    return out


def check_spec(spec: ContinuumSpec) -> None:
    """ValueError for a malformed spec: shapes, layer indices, kinetic kinds, valley."""
    if float(spec.shells) != int(spec.shells) or int(spec.shells) < 1:
        raise ValueError(f"shells must be an integer >= 1, got {spec.shells}")
    if spec.valley not in VALLEYS:
        raise ValueError(f"valley must be 1, -1 or 'both', got {spec.valley}")
    if np.asarray(spec.b).shape != (2, 2) or not spec.layers:
        raise ValueError("a continuum model needs b (2, 2) and at least one layer")
    for layer in spec.layers:
        if layer.kinetic not in KINETIC_ORBITALS:
            raise ValueError(f"kinetic must be one of {sorted(KINETIC_ORBITALS)}")
    no, nl = spec.orbitals, len(spec.layers)
    for h in spec.harmonics:
        if not (0 <= h.a < nl and 0 <= h.b < nl) or np.shape(h.matrix) != (no, no):
            raise ValueError(f"harmonic {h.a}<-{h.b} shift {h.shift}: layers in [0, {nl}) "
                             f"and a {no}x{no} matrix needed")
        if h.a == h.b and tuple(h.shift) == (0, 0):
            raise ValueError("a constant intralayer term is a layer potential, not a harmonic")
