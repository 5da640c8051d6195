"""Write a 2D :class:`TightBinding` as Wannier90 files (``_hr.dat``, ``_tb.dat``, ``.xyz``).

For exchange with Wannier90-based tools and for the tests and benchmarks of the reader: the
model is embedded in 3D (the in-plane vectors at the chosen ``plane`` slots, a third vector
of length ``c`` along z), energies meV → eV, lengths (lattice constants) × ``scale`` Å.
Numbers are written with 17 significant digits so that reading back is exact up to the
unit conversions. Serial.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.models.lattice import TightBinding

MEV_TO_EV = 1e-3


def embed(model: TightBinding, plane=(1, 2), scale: float = 1.0, c: float = 10.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3D lattice (3, 3) Å, centres (norb, 3) Å and cells R (nh, 3) of the 2D model."""
    i, j = plane[0] - 1, plane[1] - 1
    third = 3 - i - j
    lat = np.zeros((3, 3))
    lat[i, :2], lat[j, :2], lat[third, 2] = model.lattice[0], model.lattice[1], c / scale
    R = np.zeros((model.R.shape[0], 3), dtype=np.int64)
    R[:, i], R[:, j] = model.R[:, 0], model.R[:, 1]
    centres = np.zeros((model.norb, 3))
    centres[:, :2] = model.positions
    return lat * scale, centres * scale, R


def cell_blocks(model: TightBinding, R3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cells (nrpts, 3), closed under R → −R, and H(R) blocks (nrpts, n, n) in eV."""
    cells = np.unique(np.concatenate([R3, -R3]), axis=0)
    index = {tuple(r): k for k, r in enumerate(cells)}
    blocks = np.zeros((len(cells), model.norb, model.norb), complex)
    rows = np.array([index[tuple(r)] for r in R3], dtype=np.int64)
    np.add.at(blocks, (rows, model.a, model.b), model.t * MEV_TO_EV)
    return cells, blocks


def _degeneracy_lines(deg: np.ndarray) -> list[str]:
    return [" ".join(f"{int(d):4d}" for d in deg[k:k + 15]) for k in range(0, len(deg), 15)]


def hr_text(model: TightBinding, R3: np.ndarray, deg: np.ndarray | None = None) -> str:
    """Text of ``_hr.dat``; each block is written as H(R)·N_R for weights ``deg`` (N_R)."""
    cells, blocks = cell_blocks(model, R3)
    deg = np.ones(len(cells), dtype=np.int64) if deg is None else np.asarray(deg)
    n = model.norb
    lines = ["written by qgt_mpi (models/w90write.py)", f"{n:12d}", f"{len(cells):12d}"]
    lines += _degeneracy_lines(deg)
    pairs = [(mm, nn) for nn in range(n) for mm in range(n)]  # m fastest within a cell
    for r, block, d in zip(cells, blocks, deg, strict=True):
        lines += [f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{mm + 1:5d}{nn + 1:5d} "
                  f"{block[mm, nn].real * d:.17g} {block[mm, nn].imag * d:.17g}"
                  for mm, nn in pairs]
    return "\n".join(lines) + "\n"


def tb_text(model: TightBinding, lattice3: np.ndarray, centres: np.ndarray,
            R3: np.ndarray) -> str:
    """Text of ``_tb.dat``: lattice, hoppings, and a diagonal position matrix (the centres)."""
    cells, blocks = cell_blocks(model, R3)
    n = model.norb
    lines = ["written by qgt_mpi (models/w90write.py)"]
    lines += [" ".join(f"{x:.17g}" for x in row) for row in lattice3]
    lines += [f"{n:12d}", f"{len(cells):12d}", *_degeneracy_lines(np.ones(len(cells), int))]
    pairs = [(mm, nn) for nn in range(n) for mm in range(n)]
    for r, block in zip(cells, blocks, strict=True):
        lines += ["", f"{r[0]:5d}{r[1]:5d}{r[2]:5d}"]
        lines += [f"{mm + 1:5d}{nn + 1:5d} {block[mm, nn].real:.17g} {block[mm, nn].imag:.17g}"
                  for mm, nn in pairs]
    for r in cells:
        lines += ["", f"{r[0]:5d}{r[1]:5d}{r[2]:5d}"]
        for mm, nn in pairs:
            x = centres[mm] if (mm == nn and not np.any(r)) else np.zeros(3)
            lines.append(f"{mm + 1:5d}{nn + 1:5d} " + " ".join(f"{v:.17g} 0" for v in x))
    return "\n".join(lines) + "\n"


def xyz_text(centres: np.ndarray) -> str:
    """Text of ``_centres.xyz`` (Wannier centres as rows labelled X)."""
    rows = [f"X {x:.17g} {y:.17g} {z:.17g}" for x, y, z in centres]
    return "\n".join([str(len(rows)), "Wannier centres, written by qgt_mpi", *rows]) + "\n"
