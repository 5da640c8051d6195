"""Matrix entries of the continuum Hamiltonian (2.5a.1): kinetic blocks and harmonics.

Each function returns a list of entries (rows, cols, H0, Hx, Hy, H2) of valley +1, arrays
over plane waves (one vectorised block per layer, orbital pair or harmonic — the loops run
over the few terms of the spec, never over plane waves or k). Index of (ℓ, G, o):
(ℓ n_G + g) n_o + o.

Dirac layer (orbitals A, B), p = k + p_0, p_0 = G − κ_ℓ (Cartesian):
  H_AA = m/2 + U, H_BB = −m/2 + U, H_AB = ħv e^{iφ}(p_x − i p_y) = H_BA*,
  so H0_AB = ħv e^{iφ}(p_0x − i p_0y), Hx_AB = ħv e^{iφ}, Hy_AB = −i ħv e^{iφ}.
Parabolic layer: H = c|p|² + U, so H0 = c|p_0|² + U, Hx = 2c p_0x, Hy = 2c p_0y, H2 = c.
Harmonic (a, b, s, M): H[(a, G + s), (b, G)] = M and H[(b, G), (a, G + s)] = M†, for every
G with G + s inside the cutoff.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.models.continuum.spec import ContinuumSpec, shifted_index

Entry = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _index(layer: int, g: np.ndarray, orbital: int, ng: int, no: int) -> np.ndarray:
    return (layer * ng + g) * no + orbital


def kinetic_entries(spec: ContinuumSpec, gvec: np.ndarray, b: np.ndarray) -> list[Entry]:
    """Diagonal blocks of every layer (module doc); the diagonal is always in the pattern."""
    ng, no = len(gvec), spec.orbitals
    g = np.arange(ng)
    zero = np.zeros(ng, complex)
    out: list[Entry] = []
    for ell, layer in enumerate(spec.layers):
        p0 = (gvec - np.asarray(layer.point, dtype=float)) @ b  # (ng, 2)
        if layer.kinetic == "parabolic":
            i = _index(ell, g, 0, ng, no)
            c = layer.c
            out.append((i, i, c * np.einsum("gi,gi->g", p0, p0) + layer.potential + zero,
                        2 * c * p0[:, 0] + zero, 2 * c * p0[:, 1] + zero, c + zero))
            continue
        ia, ib = _index(ell, g, 0, ng, no), _index(ell, g, 1, ng, no)
        hv = layer.hbar_v * np.exp(1j * layer.rotation)
        half = layer.mass / 2
        off = hv * (p0[:, 0] - 1j * p0[:, 1])
        out += [(ia, ia, half + layer.potential + zero, zero, zero, zero),
                (ib, ib, -half + layer.potential + zero, zero, zero, zero),
                (ia, ib, off, hv + zero, -1j * hv + zero, zero),
                (ib, ia, np.conj(off), np.conj(hv) + zero, 1j * np.conj(hv) + zero, zero)]
    return out


def harmonic_entries(spec: ContinuumSpec, gvec: np.ndarray) -> list[Entry]:
    """Intralayer potentials and interlayer tunnelling of every harmonic, with their h.c."""
    ng, no = len(gvec), spec.orbitals
    out: list[Entry] = []
    for h in spec.harmonics:
        target = shifted_index(gvec, int(h.shift[0]), int(h.shift[1]))
        g = np.flatnonzero(target >= 0)
        zero = np.zeros(g.size, complex)
        matrix = np.asarray(h.matrix, dtype=complex)
        for s in range(no):
            for t in range(no):
                row = _index(h.a, target[g], s, ng, no)
                col = _index(h.b, g, t, ng, no)
                out.append((row, col, matrix[s, t] + zero, zero, zero, zero))
                out.append((col, row, np.conj(matrix[s, t]) + zero, zero, zero, zero))
    return out
