"""Haldane model on the honeycomb lattice (theory §2.2).

Lattice a1 = (1, 0), a2 = (1/2, √3/2); orbitals A at τ_A = 0 and B at τ_B = (a1 + a2)/3,
so the nearest-neighbour distance is 1/√3. With the Bloch convention of theory §1,
H(k) = h_0 + h·σ with

- h_x − i h_y = t1 Σ_δ e^{ik·δ} over the three A→B bonds δ,
- h_0 = 2 t2 cos φ Σ_i cos(k·c_i),  h_z = M − 2 t2 sin φ Σ_i sin(k·c_i),

c_1 = a1, c_2 = a2 − a1, c_3 = −a2 the next-nearest-neighbour vectors. The lower band is a
Chern band for |M| < 3√3 |t2 sin φ|.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.models.lattice import TightBinding

LATTICE = np.array([[1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]])
POSITIONS = np.array([[0.0, 0.0], (LATTICE[0] + LATTICE[1]) / 3.0])
# Nearest neighbours: B sits at R + τ_B for R ∈ {0, −a1, −a2} around A at the origin.
NN_CELLS = np.array([[0, 0], [-1, 0], [0, -1]])
# Next-nearest-neighbour vectors c_1 = a1, c_2 = a2 − a1, c_3 = −a2 (lattice coefficients).
NNN_CELLS = np.array([[1, 0], [-1, 1], [0, -1]])


def haldane(t1: float, t2: float, mass: float, phi: float) -> TightBinding:
    """Build the Haldane model (theory §2.2).

    Parameters
    ----------
    t1 : nearest-neighbour hopping (meV); H_AB = t1 Σ_δ e^{ik·δ}.
    t2 : magnitude of the next-nearest-neighbour hopping (meV).
    mass : sublattice mass M (meV): +M on A, −M on B.
    phi : Haldane phase φ (rad); A→A hops along c_i carry t2 e^{+iφ}, B→B t2 e^{−iφ}.

    Returns
    -------
    TightBinding with the full (hermitian) hopping list.
    """
    a_idx, b_idx = 0, 1
    rows = [  # (R, a, b, t) of the half list; from_half adds the reverse hops.
        *[(r, a_idx, b_idx, t1) for r in NN_CELLS],
        *[(r, a_idx, a_idx, t2 * np.exp(1j * phi)) for r in NNN_CELLS],
        *[(r, b_idx, b_idx, t2 * np.exp(-1j * phi)) for r in NNN_CELLS],
        (np.zeros(2, int), a_idx, a_idx, mass),
        (np.zeros(2, int), b_idx, b_idx, -mass),
    ]
    R = np.array([row[0] for row in rows])
    a = np.array([row[1] for row in rows])
    b = np.array([row[2] for row in rows])
    t = np.array([row[3] for row in rows], dtype=complex)
    info = {"kind": "haldane", "t1": float(t1), "t2": float(t2), "mass": float(mass),
            "phi": float(phi)}
    return TightBinding.from_half(LATTICE, POSITIONS, R, a, b, t, info)


def d_vector(k: np.ndarray, t1: float, t2: float, mass: float, phi: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Analytic (h_0, h) of the Haldane model at Cartesian k; shapes (nk,), (nk, 3).

    Independent of the hopping-list machinery; used to test it.
    """
    k = np.asarray(k, dtype=float).reshape(-1, 2)
    delta = NN_CELLS @ LATTICE + POSITIONS[1]
    nnn = NNN_CELLS @ LATTICE
    f = t1 * np.exp(1j * k @ delta.T).sum(axis=1)
    h0 = 2 * t2 * np.cos(phi) * np.cos(k @ nnn.T).sum(axis=1)
    hz = mass - 2 * t2 * np.sin(phi) * np.sin(k @ nnn.T).sum(axis=1)
    return h0, np.column_stack([f.real, -f.imag, hz])
