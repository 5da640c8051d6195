"""Supercells of tight-binding models with optional seeded on-site disorder (theory §2.7).

An n1×n2 supercell has lattice vectors n1 a1, n2 a2 and orbitals (c, a) at τ_a + c1 a1 + c2 a2
for cells c = (c1, c2), 0 ≤ c_i < n_i, with index (c1 n2 + c2) norb + a. A hopping t_ab(R)
from b in cell R to a in cell 0 becomes, for every cell c, a hopping from (c + R mod n, b) to
(c, a) with the SAME displacement d = R·A + τ_b − τ_a (theory §1). In the Bloch convention the
supercell's bands at K are then exactly the primitive bands at the folded points
K + (i/n1) b1 + (j/n2) b2 (0 ≤ i < n1, 0 ≤ j < n2), which the tests check.

Disorder: on-site energies drawn uniformly from [−W/2, W/2] (box distribution, meV) with
``numpy.random.default_rng(seed)``, one per supercell orbital, in orbital-index order, so a
seed fixes the disorder realisation independently of ranks and pools.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.models.lattice import TightBinding
from qgt_mpi.models.sparse import BondModel


def supercell(model: TightBinding, size: tuple[int, int], disorder_width: float = 0.0,
              seed: int = 0) -> BondModel:
    """The n1×n2 supercell of a tight-binding model as a sparse BondModel (theory §2.7).

    Parameters
    ----------
    model : TightBinding (Haldane, truncated flat-band, Wannier, ...).
    size : (n1, n2) ≥ 1.
    disorder_width : W ≥ 0 of the box distribution of on-site energies [meV].
    seed : random seed of the disorder realisation.

    Raises
    ------
    ValueError for a model without real-space hoppings or a bad size/width.
    """
    if not isinstance(model, TightBinding):
        raise ValueError("supercell needs a real-space tight-binding model (an exactly "
                         "flattened model has none: set flatten.range to a finite R_c)")
    n1, n2 = (int(s) for s in size)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"supercell size must be >= 1, got {size}")
    if not np.isfinite(disorder_width) or disorder_width < 0:
        raise ValueError(f"disorder width must be finite and >= 0, got {disorder_width}")
    norb, n_cells = model.norb, n1 * n2
    c1, c2 = np.divmod(np.arange(n_cells), n2)  # cell of each supercell block
    shifts = np.column_stack([c1, c2]) @ model.lattice  # (n_cells, 2) Cartesian offsets
    positions = (model.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    # Every (cell c, hopping h): row (c, a_h), column (c + R_h mod n, b_h).
    tgt1 = (c1[:, None] + model.R[None, :, 0]) % n1
    tgt2 = (c2[:, None] + model.R[None, :, 1]) % n2
    rows = (np.arange(n_cells)[:, None] * norb + model.a[None, :]).ravel()
    cols = ((tgt1 * n2 + tgt2) * norb + model.b[None, :]).ravel()
    d = np.broadcast_to(model.displacements, (n_cells, *model.displacements.shape))
    t = np.broadcast_to(model.t, (n_cells, model.t.size)).ravel()
    d = d.reshape(-1, 2)
    info = {**model.info, "kind": f"{model.info.get('kind', 'tight-binding')}+supercell",
            "supercell": f"{n1}x{n2}", "primitive_norb": norb}
    if disorder_width > 0:
        onsite = np.random.default_rng(seed).uniform(-0.5, 0.5, n_cells * norb) * disorder_width
        diag = np.arange(n_cells * norb)
        rows, cols = np.concatenate([rows, diag]), np.concatenate([cols, diag])
        d = np.concatenate([d, np.zeros((diag.size, 2))])
        t = np.concatenate([t, onsite.astype(complex)])
        info.update(disorder_width=float(disorder_width), disorder_seed=int(seed))
    lattice = np.array([n1 * model.lattice[0], n2 * model.lattice[1]])
    return BondModel(lattice, positions, rows, cols, d, t, info)


def folded_points(k: np.ndarray, primitive_reciprocal: np.ndarray, size: tuple[int, int]
                  ) -> np.ndarray:
    """Primitive k-points K + (i/n1) b1 + (j/n2) b2 that fold onto supercell point K; (n1 n2, 2)."""
    n1, n2 = size
    i, j = np.divmod(np.arange(n1 * n2), n2)
    return (np.asarray(k, dtype=float).reshape(1, 2) + np.outer(i / n1, primitive_reciprocal[0])
            + np.outer(j / n2, primitive_reciprocal[1]))
