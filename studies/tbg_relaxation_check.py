"""The continuum relaxation (theory §2.6a) against atomistic relaxations of the same cell.

Why: the relaxed m = 31 flat bands of the built-in continuum relaxation are 35 meV wide
(docs/validation.md, "Relaxed atomistic TBG"), while the REBO + Kolmogorov–Crespi cell of a
public geometry library is flat to a few meV at the same angle, and the default GSFE strength
V0 = 160 meV/nm² is not checked against the paper. This study measures (a) how strongly each
structure is relaxed, with descriptors computed from the atoms alone, and (b) the flat bands
at Γ, K, M of each structure with the same Slater–Koster model, so that the GSFE strength
and the corrugation can be compared with an atomistic relaxation.

Structure descriptors (from the atoms; ``descriptors``):
  * in-plane displacement u_l of each layer from a rigid honeycomb lattice rotated by the
    commensurate twist (θ of the (m, 1) cell; the common orientation and the mean of u_l
    fitted), max |u_l| and rms |u_l| (Å);
  * AA-like fraction: share of bottom-layer atoms with a top-layer atom of the same
    sublattice within a/(2√3) in plane (rigid cell 0.302; relaxation shrinks it);
  * local interlayer distance: mean height of the top atoms within 3 Å in plane minus the
    bottom atom's height, its minimum (AB), maximum (AA) and quantiles (Å).
Spectra (``spectra``): the 12 eigenvalues nearest charge neutrality at Γ, K, M
(shift-and-invert, MUMPS, serial) split into flat and remote bands as in
studies/tbg_relaxed_atomistic.py; W = flat-band width over the three points, gaps indirect.

Usage::

    .venv/bin/python studies/tbg_relaxation_check.py descriptors FILE [FILE ...] [--m 31]
    .venv/bin/python studies/tbg_relaxation_check.py spectra --m 31 --v0 160 80 38.8
    .venv/bin/python studies/tbg_relaxation_check.py spectra --files lib.vasp --a 0.2456

POSCAR files of the built-in cells come from ``qgt-mpi model save DECK -o cell.vasp``.
"""

# ruff: noqa: E402  (the thread settings must precede the numpy/petsc4py imports)
from __future__ import annotations

from qgt_mpi._env import pin_threads

pin_threads()

# isort: split
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tbg_relaxed_atomistic import solve, stats  # the sibling study's split rule

from qgt_mpi.models import build_model
from qgt_mpi.models.carbon import bond_sublattice, pairs


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from ase.io import read

    atoms = read(str(path), format="vasp", parallel=False)
    return atoms.get_positions(), np.array(atoms.get_cell())[:2, :2]


def _layer_u(xy: np.ndarray, a: float, phi: float) -> np.ndarray:
    """Displacement of each atom from the nearest site of a honeycomb lattice with a bond
    along angle ``phi`` through atom 0, mean removed (Å)."""
    def unit(t: float) -> np.ndarray:
        return np.array([math.cos(t), math.sin(t)])
    basis = a * np.column_stack([unit(phi + math.pi / 6), unit(phi + math.pi / 2)])
    inv = np.linalg.inv(basis)
    f = (xy - xy[0]) @ inv.T
    bond = (a / math.sqrt(3.0)) * unit(phi) @ inv.T
    best = None
    for off in (np.zeros(2), bond, -bond):
        g = f - off
        u = (g - np.round(g)) @ basis.T
        if best is None:
            best = u
        else:
            closer = np.linalg.norm(u, axis=1) < np.linalg.norm(best, axis=1)
            best[closer] = u[closer]
    return best - best.mean(axis=0)


def _bond_angle(xy: np.ndarray) -> float:
    """Layer orientation mod 60° from its nearest-neighbour bonds (radians)."""
    d, idx = cKDTree(xy).query(xy, k=4)
    v = xy[idx[:, 1:]] - xy[:, None, :]
    ang = np.arctan2(v[..., 1], v[..., 0])[d[:, 1:] < 1.6]
    return float(np.angle(np.mean(np.exp(6j * ang))) / 6)


def descriptors(path: Path, m: int) -> dict:
    """The three descriptors of the module doc for one two-layer (m, 1) cell file."""
    pos, cell = _read(path)
    a = float(np.linalg.norm(cell[0])) / math.sqrt(3 * m * m + 3 * m + 1)
    theta = math.acos((3 * m * m + 3 * m + 0.5) / (3 * m * m + 3 * m + 1))
    top = pos[:, 2] > pos[:, 2].mean()
    bot_xy, top_xy = pos[~top, :2], pos[top, :2]
    pb, pt = _bond_angle(bot_xy), _bond_angle(top_xy)
    sign = 1.0 if ((pt - pb + math.pi / 6) % (math.pi / 3) - math.pi / 6) > 0 else -1.0
    mid0 = 0.5 * (pb + pt) if abs(pt - pb) < 0.5 else 0.5 * (pb + pt + math.pi / 3)

    def cost(mid: float) -> float:
        return sum(float(np.sqrt((_layer_u(xy, a, mid + s * sign * theta / 2) ** 2).sum(1).mean()))
                   for xy, s in ((bot_xy, -1.0), (top_xy, 1.0)))
    mid = minimize_scalar(cost, bracket=(mid0 - 1e-3, mid0 + 1e-3), tol=1e-12).x
    u = [np.linalg.norm(_layer_u(xy, a, mid + s * sign * theta / 2), axis=1)
         for xy, s in ((bot_xy, -1.0), (top_xy, 1.0))]
    # AA-like fraction from sublattices (nm for the carbon helpers)
    layer = top.astype(int)
    i, j, d3 = pairs(pos / 10.0, cell / 10.0, 0.16)
    sub = bond_sublattice(layer, i, j, d3, a / 10.0)[0]
    images = [(p, q) for p in (-1, 0, 1) for q in (-1, 0, 1)]
    frac = []
    for s in (0, 1):
        b = pos[(layer == 0) & (sub == s), :2]
        t = pos[(layer == 1) & (sub == s), :2]
        t = np.vstack([t + p * cell[0] + q * cell[1] for p, q in images])
        frac.append(float(np.mean(cKDTree(t).query(b)[0] < a / (2 * math.sqrt(3.0)))))
    topall = np.vstack([pos[top] + np.append(p * cell[0] + q * cell[1], 0.0) for p, q in images])
    near = cKDTree(topall[:, :2]).query_ball_point(pos[~top, :2], 3.0)
    dz = np.array([topall[n, 2].mean() for n in near]) - pos[~top, 2]
    return {"file": str(path), "a": a, "max_u": [float(x.max()) for x in u],
            "rms_u": [float(np.sqrt((x ** 2).mean())) for x in u], "aa_fraction": frac,
            "dz_min": float(dz.min()), "dz_max": float(dz.max()), "dz_mean": float(dz.mean()),
            "dz_quantiles": np.quantile(dz, [0.1, 0.5, 0.9]).tolist()}


def spectra(model) -> dict:
    hs = model.high_symmetry_points()
    st = stats(solve(model, np.array([hs[p] for p in "GKM"]), 12))
    return {k: st[k] for k in ("width", "gap_below", "gap_above", "flat")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=("descriptors", "spectra"))
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--m", type=int, default=31)
    ap.add_argument("--v0", type=float, nargs="*", default=[], help="spectra: GSFE V0 values")
    ap.add_argument("--d", type=float, nargs=2, default=None, metavar=("D_AA", "D_AB"))
    ap.add_argument("--a", type=float, default=0.246, help="spectra of files: key a (nm)")
    args = ap.parse_args()
    if args.part == "descriptors":
        for f in args.files:
            print(json.dumps(descriptors(f, args.m)), flush=True)
        return
    for f in args.files:
        t0 = time.perf_counter()
        model = build_model("atomistic", {"structure": str(f), "format": "vasp", "a": args.a})
        print(json.dumps({"file": str(f), **spectra(model),
                          "seconds": time.perf_counter() - t0}), flush=True)
    for v0 in args.v0:
        relax = {"method": "continuum", "gsfe_v0": v0}
        if args.d:
            relax.update(d_aa=args.d[0], d_ab=args.d[1])
        t0 = time.perf_counter()
        model = build_model("tbg_atomistic", {"m": args.m, "relax": relax})
        print(json.dumps({"m": args.m, "relax": relax, **spectra(model),
                          "seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
