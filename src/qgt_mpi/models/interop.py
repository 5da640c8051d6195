"""Models built with PythTB or TBmodels, converted to :class:`TightBinding` (theory §1).

Both packages use the same Bloch convention as qgt_mpi when orbital positions are included
(H_ij(k) = Σ_R t_ij(R) e^{ik·(R + τ_j − τ_i)}), so the conversion copies the lattice, the
orbital positions and the hoppings; amplitudes are read as meV (``energy_scale`` converts).
Neither package is imported here: the converters read the model objects they are given.
Install them with ``pip install pythtb`` (TBmodels: ``pip install tbmodels``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from qgt_mpi.models.lattice import TightBinding


def _with_partners(R: ArrayLike, a: ArrayLike, b: ArrayLike, t: ArrayLike
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every listed term and its Hermitian conjugate (both packages add the h.c. themselves)."""
    R = np.asarray(R, dtype=np.int64).reshape(-1, 2)
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    t = np.asarray(t, dtype=complex)
    return (np.concatenate([R, -R]), np.concatenate([a, b]), np.concatenate([b, a]),
            np.concatenate([t, t.conj()]))


def _check_2d(lattice: np.ndarray, where: str) -> np.ndarray:
    lattice = np.asarray(lattice, dtype=float)
    if lattice.shape != (2, 2):
        raise ValueError(f"{where}: qgt_mpi needs a 2D model with a 2x2 lattice, got shape "
                         f"{lattice.shape}")
    return lattice


def from_pythtb(model, energy_scale: float = 1.0) -> TightBinding:
    """Convert a 2D spinless ``pythtb.tb_model`` (amplitudes × ``energy_scale`` → meV).

    PythTB stores each hopping t_ij(R) = <i 0|H|j R> once and adds its h.c.; on-site
    energies separately.
    """
    if getattr(model, "_dim_k", None) != 2 or getattr(model, "_nspin", 1) != 1:
        raise ValueError("from_pythtb: need a spinless PythTB model with dim_k = 2 "
                         "(split a spinful model into its spin blocks first)")
    lattice = _check_2d(model.get_lat(), "from_pythtb")
    reduced = np.asarray(model.get_orb(), dtype=float).reshape(-1, 2)
    hops = model._hoppings  # [amplitude, i, j, R] (PythTB's documented storage)
    R = [np.asarray(h[3], dtype=np.int64) for h in hops]
    rows = _with_partners(R, [h[1] for h in hops], [h[2] for h in hops],
                          [complex(h[0]) for h in hops])
    norb = reduced.shape[0]
    onsite = np.asarray(model._site_energies, dtype=float).ravel()
    diag = np.arange(norb)
    return TightBinding(lattice, reduced @ lattice,
                        np.concatenate([rows[0], np.zeros((norb, 2), np.int64)]),
                        np.concatenate([rows[1], diag]), np.concatenate([rows[2], diag]),
                        energy_scale * np.concatenate([rows[3], onsite.astype(complex)]),
                        {"kind": "pythtb"})


def from_tbmodels(model, energy_scale: float = 1.0) -> TightBinding:
    """Convert a 2D ``tbmodels.Model`` (amplitudes × ``energy_scale`` → meV).

    TBmodels stores half of the terms in ``hop`` ({R: matrix}, the R = 0 block holding half
    of the on-site part) and adds the h.c.; ``pos`` are reduced positions, ``uc`` the cell.
    """
    if getattr(model, "dim", None) != 2:
        raise ValueError("from_tbmodels: need a 2D tbmodels.Model (dim = 2)")
    if model.uc is None:
        raise ValueError("from_tbmodels: the model has no unit cell (pass uc=... to tbmodels)")
    lattice = _check_2d(model.uc, "from_tbmodels")
    reduced = np.asarray(model.pos, dtype=float).reshape(-1, 2)
    cells = list(model.hop)
    dense = [m.toarray() if hasattr(m, "toarray") else m for m in model.hop.values()]
    blocks = np.array([np.asarray(m, dtype=complex) for m in dense])
    cell, a, b = np.nonzero(blocks)
    R = np.asarray(cells, dtype=np.int64).reshape(-1, 2)[cell]
    R, a, b, t = _with_partners(R, a, b, blocks[cell, a, b])
    return TightBinding(lattice, reduced @ lattice, R, a, b, energy_scale * t,
                        {"kind": "tbmodels"})
