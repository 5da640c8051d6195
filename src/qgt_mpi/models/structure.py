"""Structure files in and out: a periodic 2D cell of carbon atoms read with ASE (theory §2.6b).

``kind = "atomistic"`` reads any format ASE reads (``ase.io.read``: POSCAR/CONTCAR, extended
XYZ, LAMMPS data and dump, CIF, ...) and builds the carbon p_z model of models/carbon.py from
the positions as given — rigid, relaxed in-plane, corrugated, any number of layers, any
stacking or twist. Conventions:

* Units: ASE's Å, converted to nm (×0.1). The cell's first two vectors must lie in the xy
  plane (|z component| ≤ 1e-6 Å) and be periodic; the third (vacuum, or a LAMMPS box height)
  is ignored, so a cell periodic in z must be taller than the layers plus ``cutoff``.
* Atoms: carbon only (other elements are refused by name). LAMMPS files carry atom types,
  not elements: every atom is read as carbon (types usually label layers for the
  Kolmogorov–Crespi potential).
* Layers: atoms sorted by z and split where consecutive heights differ by more than
  ``LAYER_GAP`` = 0.1 nm (graphene layers are 0.33–0.37 nm apart; relaxation corrugates a
  layer by ≤ 0.03 nm); numbered from the bottom and reported (count, mean z, atoms).
* ASE is called with ``parallel=False``: under mpi4py its readers and writers otherwise
  broadcast over COMM_WORLD, and only rank 0 calls them here (a run hung on 2 ranks).
* Atoms are wrapped into the home cell (fractional coordinates in [−1e-6, 1 − 1e-6)); a
  wrapped atom changes H(k) only by a diagonal gauge (theory §1.2).

Writing (``qgt-mpi model save`` of a carbon model): ``write_structure`` through ASE, the format
from the file name (``.xyz``/``.extxyz``: extended XYZ, 8 decimals in Å; ``POSCAR``,
``CONTCAR``, ``.vasp``: VASP, 16 digits; ``.lmp``/``.data``: LAMMPS data, 17 digits; ``.cif``),
with the third cell vector a 2 nm vacuum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

LAYER_GAP = 0.1  # nm: a jump in z larger than this starts a new layer (module doc)
ANGSTROM = 0.1  # nm
VACUUM = 2.0  # nm: the third cell vector written to structure files
_LAMMPS = ("lammps-data", "lammps-dump-text", "lammps-dump-binary")
WRITE_FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".vasp": "vasp", ".lmp": "lammps-data",
                 ".data": "lammps-data", ".cif": "cif"}


class StructureError(ValueError):
    """A structure file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Structure:
    """A periodic 2D carbon cell: ``lattice`` (2, 2) rows nm, ``positions`` (N, 3) nm,
    ``layer`` (N,) from the bottom, ``source`` and ``format`` for provenance."""

    lattice: np.ndarray
    positions: np.ndarray
    layer: np.ndarray
    source: str
    format: str

    def layers(self) -> list[tuple[int, float]]:
        """(atoms, mean z in nm) of each layer, bottom first."""
        return [(int(np.sum(self.layer == i)), float(self.positions[self.layer == i, 2].mean()))
                for i in range(int(self.layer.max()) + 1)]


def _atoms(path: str, fmt: str | None):
    """``ase.io.read`` of the last image, errors as StructureError naming the file."""
    try:
        import ase.io
    except ImportError:  # pragma: no cover - ase is installed by make setup
        raise StructureError("reading structure files needs ASE (pip install ase)") from None
    from qgt_mpi.io.input_guard import check_input

    check_input(path, "structure", "model.structure")  # regular file within its size cap
    kwargs: dict[str, Any] = {"atom_style": "atomic"} if fmt == "lammps-data" else {}
    try:
        atoms = ase.io.read(path, index=-1, format=fmt, parallel=False, **kwargs)
    except Exception as exc:  # ASE raises many kinds; one line names the file and the cause
        what = f"format {fmt!r}" if fmt else "the format guessed from its name"
        hint = (f" (an element name ASE does not know, e.g. a POSCAR species line "
                f"{exc}: write C there)" if isinstance(exc, KeyError) else "")
        raise StructureError(f"structure {path!r}: ASE cannot read it as {what}: "
                             f"{type(exc).__name__}: {exc}{hint}".splitlines()[0]) from None
    return atoms if not isinstance(atoms, list) else atoms[-1]


def read_structure(path: str, fmt: str | None = None) -> Structure:
    """Read ``path`` (any ASE format; ``fmt`` overrides the guess) as a 2D carbon cell.

    Not collective (the registry's builder reads on rank 0 and broadcasts).

    Raises
    ------
    StructureError for unreadable files, non-carbon atoms, a cell that is not periodic in
    the xy plane, or an empty file.
    """
    atoms = _atoms(path, fmt)
    name = f"structure {path!r}"
    if len(atoms) == 0:
        raise StructureError(f"{name}: no atoms")
    if fmt not in _LAMMPS:
        other = sorted(set(atoms.get_chemical_symbols()) - {"C"})
        if other:
            raise StructureError(f"{name}: elements {other} present; only carbon p_z orbitals "
                                 "are modelled (remove the other atoms, or model a substrate "
                                 "by the key mass)")
    cell = np.asarray(atoms.cell.array, dtype=float)
    if not all(atoms.pbc[:2]) or np.linalg.matrix_rank(cell[:2, :2]) < 2:
        raise StructureError(f"{name}: needs a cell periodic along its first two vectors "
                             f"(pbc {list(map(bool, atoms.pbc))}, cell {cell.tolist()} Å)")
    if np.abs(cell[:2, 2]).max() > 1e-6:
        raise StructureError(f"{name}: the first two cell vectors must lie in the xy plane "
                             f"(z components {cell[:2, 2].tolist()} Å)")
    pos = np.asarray(atoms.positions, dtype=float) * ANGSTROM
    lattice = cell[:2, :2] * ANGSTROM
    frac = pos[:, :2] @ np.linalg.inv(lattice)
    pos[:, :2] -= np.floor(frac + 1e-6) @ lattice
    order = np.argsort(pos[:, 2], kind="stable")
    jumps = np.flatnonzero(np.diff(pos[order, 2]) > LAYER_GAP)
    layer = np.empty(len(pos), dtype=np.int64)
    layer[order] = np.searchsorted(jumps, np.arange(len(pos)), side="left")
    if atoms.pbc[2] and np.linalg.norm(cell[2]) * ANGSTROM <= np.ptp(pos[:, 2]) + 0.5:
        raise StructureError(f"{name}: periodic in z with a height of "
                             f"{np.linalg.norm(cell[2]):.3f} Å; a 2D cell needs a vacuum "
                             "(third vector taller than the layers plus the cutoff)")
    return Structure(lattice, pos, layer, os.path.abspath(path), fmt or "guessed")


def write_format(path: str) -> str | None:
    """The ASE format :func:`write_structure` uses for ``path``, or None (not a structure)."""
    base = os.path.basename(path)
    if base.startswith(("POSCAR", "CONTCAR")):
        return "vasp"
    return WRITE_FORMATS.get(os.path.splitext(base)[1].lower())


def write_structure(path: str, lattice: np.ndarray, positions: np.ndarray,
                    fmt: str | None = None) -> str:
    """Write carbon atoms at ``positions`` (N, 3) nm in ``lattice`` (2, 2) nm with ASE.

    The format is ``fmt``, or follows the file name (:func:`write_format`). Returns it.
    Serial; the caller makes the write atomic.
    """
    import ase.io
    from ase import Atoms

    fmt = fmt or write_format(path)
    if fmt is None:
        raise StructureError(f"{path!r}: not a structure file name ({', '.join(WRITE_FORMATS)},"
                             " POSCAR, CONTCAR)")
    z = positions[:, 2]
    cell = np.zeros((3, 3))
    cell[:2, :2] = lattice / ANGSTROM
    cell[2, 2] = (np.ptp(z) + VACUUM) / ANGSTROM
    shifted = positions.copy()
    shifted[:, 2] += 0.5 * VACUUM - z.min()
    atoms = Atoms(["C"] * len(positions), positions=shifted / ANGSTROM, cell=cell,
                  pbc=[True, True, True])
    kwargs = {"direct": False, "sort": False} if fmt == "vasp" else {}
    ase.io.write(path, atoms, format=fmt, parallel=False, **kwargs)
    return fmt
