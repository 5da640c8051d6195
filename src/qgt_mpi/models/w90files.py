"""Parsers of Wannier90 output files: ``seedname_hr.dat``, ``seedname_tb.dat``, ``_centres.xyz``.

Formats (Wannier90 user guide, ``write_hr``, ``write_tb``, ``write_xyz``): energies in eV,
lengths in Å, H_mn(R) = <m 0|H|n R>, each Wigner–Seitz cell R listed with its degeneracy
weight N_R; the hopping is H_mn(R)/N_R. Every problem raises one
:class:`~qgt_mpi.models.textfile.ModelFileError` naming the file and the line. Serial: the
caller runs these on one rank and broadcasts the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qgt_mpi.io.checks import CELL_INDEX_MAX
from qgt_mpi.models.textfile import Cursor, ModelFileError, read_lines, row_numbers, table

_DEG_PER_LINE = 15  # Wannier90 writes the degeneracy weights 15 to a line


@dataclass
class Hoppings:
    """Raw hoppings of a Wannier90 file: R (nh, 3), 0-based a = m, b = n, t (eV), line numbers."""

    num_wann: int
    R: np.ndarray
    a: np.ndarray
    b: np.ndarray
    t: np.ndarray
    lines: np.ndarray
    path: str


def _degeneracies(cur: Cursor, nrpts: int) -> np.ndarray:
    """The nrpts weights N_R >= 1 on ceil(nrpts/15) lines; Σ 1/N_R must be an integer."""
    nlines = -(-nrpts // _DEG_PER_LINE)
    rows = cur.take(nlines, f"degeneracy weights ({nrpts} integers, 15 per line)")
    for k, (line, fields) in enumerate(rows):
        want = min(_DEG_PER_LINE, nrpts - k * _DEG_PER_LINE)
        if len(fields) != want or not all(f.isdigit() and int(f) >= 1 for f in fields):
            raise ModelFileError(cur.path, line, f"degeneracy line must hold {want} integers "
                                 f">= 1 (nrpts = {nrpts}), found {' '.join(fields)!r}")
    deg = np.array([int(f) for _, fields in rows for f in fields], dtype=float)
    total = np.sum(1.0 / deg)
    if abs(total - round(total)) > 1e-6 * max(1.0, total) or round(total) < 1:
        raise ModelFileError(cur.path, rows[0][0], f"degeneracy weights are inconsistent: "
                             f"sum of 1/N_R = {total:.8g} is not the (integer) number of "
                             "k-points of the Wannier90 grid")
    return deg


def _check_blocks(path: str, R: np.ndarray, keys: np.ndarray, lines: np.ndarray,
                  nrpts: int, nw: int) -> None:
    """Each block of nw² rows has one R and every (m, n) once; blocks have distinct R."""
    rb, lb = R.reshape(nrpts, nw * nw, 3), lines.reshape(nrpts, nw * nw)
    off = np.any(rb != rb[:, :1], axis=2)
    if np.any(off):
        blk, row = np.argwhere(off)[0]
        raise ModelFileError(path, int(lb[blk, row]), f"R changes inside the block of cell "
                             f"{rb[blk, 0].tolist()} (each cell has num_wann² = {nw * nw} rows)")
    kb = np.sort(keys.reshape(nrpts, nw * nw), axis=1)
    wrong = np.any(kb != np.arange(nw * nw), axis=1)
    if np.any(wrong):
        blk = int(np.argmax(wrong))
        raise ModelFileError(path, int(lb[blk, 0]), f"cell {rb[blk, 0].tolist()} does not list "
                             f"every orbital pair (m, n) in 1..{nw} exactly once")
    _, first = np.unique(rb[:, 0], axis=0, return_index=True)
    if first.size != nrpts:
        blk = int(np.setdiff1d(np.arange(nrpts), first)[0])
        raise ModelFileError(path, int(lb[blk, 0]), f"cell {rb[blk, 0].tolist()} is listed twice")


def _check_cells(path: str, cells: np.ndarray, lines: np.ndarray) -> None:
    """Refuse |R_i| > CELL_INDEX_MAX before the cast to int64 (2^63 - 1 wrapped around)."""
    far = np.any(np.abs(cells) > CELL_INDEX_MAX, axis=1)
    if np.any(far):
        i = int(np.argmax(far))
        raise ModelFileError(path, int(lines[i]), f"cell R = {cells[i].tolist()}: |R_i| must "
                             f"be <= {CELL_INDEX_MAX}")


def _shown(x: float) -> int | float:
    """An index as written: an int when it is one (no overflow warning for 1e308)."""
    return int(x) if abs(x) < 2**62 and float(x).is_integer() else float(x)


def _orbitals(path: str, cols: np.ndarray, lines: np.ndarray, nw: int) -> np.ndarray:
    """0-based orbital indices from 1-based columns, refused outside 1..nw."""
    bad = np.any((cols < 1) | (cols > nw), axis=1)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ModelFileError(path, int(lines[i]), f"orbital index {[_shown(x) for x in cols[i]]} "
                             f"outside 1..{nw} (num_wann)")
    return cols.astype(np.int64) - 1


def read_hr(path: str) -> Hoppings:
    """Parse ``seedname_hr.dat``: header, num_wann, nrpts, weights, nrpts·num_wann² rows."""
    cur = Cursor(path, read_lines(path), start=1)  # line 1 is a free-form header
    nw = cur.integer("num_wann")
    nrpts = cur.integer("nrpts (number of Wigner-Seitz cells)")
    deg = _degeneracies(cur, nrpts)
    data, lines = table(cur, nrpts * nw * nw, 7, "R1 R2 R3 m n Re(H) Im(H)",
                        int_cols=(0, 1, 2, 3, 4))
    cur.finish()
    _check_cells(path, data[:, :3], lines)
    R = data[:, :3].astype(np.int64)
    mn = _orbitals(path, data[:, 3:5], lines, nw)
    _check_blocks(path, R, mn[:, 0] * nw + mn[:, 1], lines, nrpts, nw)
    t = (data[:, 5] + 1j * data[:, 6]) / np.repeat(deg, nw * nw)
    return Hoppings(nw, R, mn[:, 0], mn[:, 1], t, lines, path)


def _tb_blocks(cur: Cursor, nrpts: int, nw: int, ncols: int, what: str):
    """nrpts blocks of (R line, nw² rows of ncols numbers); R (nrpts, 3), rows, line numbers."""
    cells, rows, lines = [], [], []
    for _ in range(nrpts):  # one iteration per Wigner-Seitz cell, rows parsed vectorised
        line = cur.rows[cur.pos][0] if cur.pos < len(cur.rows) else cur.end_line()
        cell = cur.floats(3, "cell R1 R2 R3")
        if np.any(cell != np.round(cell)):
            raise ModelFileError(cur.path, line, f"cell R must be integers, found {cell}")
        _check_cells(cur.path, cell[None], np.array([line]))
        data, ln = table(cur, nw * nw, ncols, what, int_cols=(0, 1))
        cells.append(np.repeat(cell[None].astype(np.int64), nw * nw, axis=0))
        rows.append(data)
        lines.append(ln)
    return np.concatenate(cells), np.concatenate(rows), np.concatenate(lines)


def read_tb(path: str) -> tuple[np.ndarray, Hoppings, np.ndarray]:
    """Parse ``seedname_tb.dat``: lattice (3, 3) Å, hoppings, and centres (num_wann, 3) Å.

    The centres are the diagonal position matrix elements Re <n 0|r|n 0> of the file.
    """
    cur = Cursor(path, read_lines(path, "tb"), start=1)
    lattice = np.array([cur.floats(3, f"lattice vector a{i + 1} (Å)") for i in range(3)])
    if abs(np.linalg.det(lattice)) < 1e-12:
        raise ModelFileError(path, 2, "lattice vectors are linearly dependent")
    nw = cur.integer("num_wann")
    nrpts = cur.integer("nrpts (number of Wigner-Seitz cells)")
    deg = _degeneracies(cur, nrpts)
    R, ham, lines = _tb_blocks(cur, nrpts, nw, 4, "m n Re(H) Im(H)")
    mn = _orbitals(path, ham[:, :2], lines, nw)
    _check_blocks(path, R, mn[:, 0] * nw + mn[:, 1], lines, nrpts, nw)
    Rr, pos, plines = _tb_blocks(cur, nrpts, nw, 8, "m n Re(x) Im(x) Re(y) Im(y) Re(z) Im(z)")
    cur.finish()
    pmn = _orbitals(path, pos[:, :2], plines, nw)
    _check_blocks(path, Rr, pmn[:, 0] * nw + pmn[:, 1], plines, nrpts, nw)
    diag = np.all(Rr == 0, axis=1) & (pmn[:, 0] == pmn[:, 1])
    if np.count_nonzero(diag) != nw:
        raise ModelFileError(path, int(plines[0]), "position matrix has no R = 0 block")
    centres = np.empty((nw, 3))
    centres[pmn[diag, 0]] = pos[diag][:, [2, 4, 6]]
    t = (ham[:, 2] + 1j * ham[:, 3]) / np.repeat(deg, nw * nw)
    return lattice, Hoppings(nw, R, mn[:, 0], mn[:, 1], t, lines, path), centres


def read_centres(path: str, num_wann: int) -> np.ndarray:
    """Wannier centres (num_wann, 3) Å from ``seedname_centres.xyz`` (rows labelled ``X``)."""
    cur = Cursor(path, read_lines(path, "centres"))
    count = cur.integer("number of entries (first line of an .xyz file)")
    if cur.pos < len(cur.rows) and cur.rows[cur.pos][0] == 2:
        cur.pos += 1  # line 2 is a comment
    rows = cur.take(count, "entries 'symbol x y z'")
    centres = [(ln, f) for ln, f in rows if f[0].upper() == "X"]
    if len(centres) != num_wann:
        raise ModelFileError(path, rows[0][0], f"found {len(centres)} Wannier centres (rows "
                             f"labelled X), but the model has num_wann = {num_wann}")
    return np.array([row_numbers(path, ln, f[1:], 3, "centre x y z (Å)") for ln, f in centres])
