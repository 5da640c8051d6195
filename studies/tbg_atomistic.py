"""Atomistic commensurate TBG (theory §2.6) through SLEPc: flat-band width, geometry, valleys.

Why: the atomistic cell is the model without continuum approximations; where its flat bands
are narrowest (the atomistic magic angle) and what topology and metric they carry are the
physics inputs of docs/validation.md and of the transport study. This is a physics study, not a
benchmark (the cost of the same model is bench/bench_atomistic.py).

Part ``width``: for each m the four flat bands per spin (2 valleys × 2) and the remote bands
next to them from a windowed SLEPc solve (nev = 8 nearest charge neutrality, eigenvectors
only) on a coarse moiré path Γ–K–M–Γ; prints the flat-band width W, the gaps to the remote
bands (indirect: min over the path of the remote band minus max of the flat band; negative
= overlap) and the smallest direct gap; the atomistic magic angle is the m of minimum W.
Part ``bands``: bands along a finer path with the remote bands (nev = 16) at one m (figure).
Part ``geometry``: at one m, link Chern numbers and integrated quantum metric of the flat
bands on an n×n moiré grid via ``driver.compute`` with the SLEPc window of the 4 flat bands
(out-of-window metric included), and the window isolation.
Part ``valley``: valley-resolved topology and metric (geometry/valley.py, theory §5.8): the
window of the 4 states nearest E_CN split by the valley operator at every k, valley Chern
numbers per group and per band, (1/2π)∫Tr g d²k per valley group from link distances, the
valley separation, for each m, sublattice mass M and n×n grid (grids that divide an earlier
one reuse its solves); rows are appended to docs/figures/tbg/atomistic_valley.json.
The cost of this model (``perf``: one k-point of the nev = 8 window at m = 31; ``grid``: the
four flat bands on an n×n moiré grid on 2 ranks) is measured by bench/bench_atomistic.py, part
of the benchmark suite (bench/run.py, docs/performance.md §8).

Charge neutrality is found with the same SLEPc solver: the four Dirac states at the moiré K
nearest the monolayer Dirac energy ε_D (``monolayer_dirac_energy``), E_CN = the mean of the
middle two (SPEC §2.6; same definition as ``neutrality_energy``, which uses SciPy's eigsh).

Usage (one heavy process at a time; the machine has 2 cores)::

    .venv/bin/python studies/tbg_atomistic.py width --m 25 26 27 28 29 30 31
    .venv/bin/python studies/tbg_atomistic.py bands --m 29
    .venv/bin/python studies/tbg_atomistic.py geometry --m 29 --grid 6
    .venv/bin/python studies/tbg_atomistic.py valley --m 27 --grid 12 6 9 --mass 0 10
"""

# ruff: noqa: E402  (the thread settings must precede the numpy/petsc4py imports)
from __future__ import annotations

from qgt_mpi._env import pin_threads  # environment before numpy/petsc4py

pin_threads()  # one BLAS/OpenMP thread per process, as `qgt-mpi run` sets (MUMPS too)

# isort: split
import argparse
import json
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from mpi4py import MPI

from qgt_mpi.geometry.valley import ValleyBasis, valley_geometry
from qgt_mpi.models.tbg_atomistic import monolayer_dirac_energy, shift_energy, tbg_atomistic
from qgt_mpi.run.driver import compute, window_isolated
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "tbg"
CACHE = OUT / "atomistic_width.json"
PATH = ("G", "K", "M", "G")


def neutral_model(m: int, comm: MPI.Comm = MPI.COMM_SELF, mass: float = 0.0):
    """(model with its zero at charge neutrality, E_CN [meV], K-state spread [meV])."""
    model = tbg_atomistic(m, mass=mass)
    e_d = monolayer_dirac_energy(model.params)
    solver = SlepcSolver(WindowOptions(nev=4, target=e_d), comm)
    e = np.sort(solver.solve(model, model.dirac_point()[None], velocities=False).energies[0])
    return shift_energy(model, 0.5 * (e[1] + e[2])), 0.5 * (e[1] + e[2]), e[3] - e[0]


def moire_path(model, n_points: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Cartesian k along Γ–K–M–Γ with ~n_points points spaced by arc length; (k, s, ticks)."""
    hs = model.high_symmetry_points()
    corners = np.array([hs[p] for p in PATH])
    seg = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    counts = np.maximum(1, np.rint((n_points - 1) * seg / seg.sum())).astype(int)
    ks, ss = [], []
    for i, c in enumerate(counts):
        t = np.arange(c) / c
        ks.append(corners[i] + t[:, None] * (corners[i + 1] - corners[i]))
        ss.append(seg[:i].sum() + t * seg[i])
    ks.append(corners[-1:])
    ss.append(np.array([seg.sum()]))
    return np.concatenate(ks), np.concatenate(ss), list(np.concatenate([[0], np.cumsum(seg)]))


def path_energies(model, k: np.ndarray, nev: int) -> tuple[np.ndarray, np.ndarray]:
    """Window energies (nk, nev) [meV] nearest neutrality and the nearest computed eigenvalue
    below and above the window (nk, 2) (from the padding), eigenvectors only."""
    solver = SlepcSolver(WindowOptions(nev=nev, target=0.0), MPI.COMM_SELF)
    pairs = solver.solve(model, k, velocities=False)
    return pairs.energies, pairs.outside


def flat_stats(e: np.ndarray, outside: np.ndarray) -> dict[str, float]:
    """Width of the four flat bands and their gaps to the remote bands [meV].

    The flat bands at each k are the four eigenvalues nearest charge neutrality (at the
    moiré K the four Dirac states; elsewhere this equals counting 2 below and 2 above E_CN
    wherever the flat bands are separated from the remote ones). The remote band below
    (above) is the highest (lowest) other computed eigenvalue below (above) the four,
    taken from the window or, if none there, from the padding eigenvalues.
    """
    near = np.sort(np.take_along_axis(e, np.argsort(np.abs(e), axis=1)[:, :4], axis=1), axis=1)
    lo, hi = near[:, :1], near[:, -1:]
    rest = np.concatenate([e, outside], axis=1)
    below = np.where(rest < lo - 1e-9, rest, -np.inf).max(axis=1)
    above = np.where(rest > hi + 1e-9, rest, np.inf).min(axis=1)
    return {"width": float(near.max() - near.min()),
            "gap_below": float(near[:, 0].min() - below.max()),
            "gap_above": float(above.min() - near[:, 3].max()),
            "direct_gap": float(min((near[:, 0] - below).min(), (above - near[:, 3]).min())),
            "flat": near.tolist(), "remote": np.column_stack([below, above]).tolist()}


def part_width(ms: list[int], n_points: int) -> None:
    rows = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    for m in ms:
        t0 = time.perf_counter()
        model, e_cn, spread = neutral_model(m)
        k, s, ticks = moire_path(model, n_points)
        e, outside = path_energies(model, k, 8)
        stats = flat_stats(e, outside)
        rows[str(m)] = {"theta": model.theta, "norb": model.norb, "e_cn": e_cn,
                        "k_spread": spread, "seconds": time.perf_counter() - t0,
                        "nk": len(k), **stats, "s": s.tolist(), "ticks": ticks,
                        "energies": e.tolist()}
        print(f"m = {m}: done in {rows[str(m)]['seconds']:.0f} s, load {os.getloadavg()[0]:.1f}",
              flush=True)
        CACHE.write_text(json.dumps(rows))
    _width_table(rows)


def _width_table(rows: dict) -> None:
    print("| m | θ [°] | N | E_CN [meV] | W (4 flat bands) [meV] | gap below | gap above "
          "| min direct gap | s per k |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in sorted(rows, key=int):
        r = rows[m]
        print(f"| {m} | {r['theta']:.4f} | {r['norb']} | {r['e_cn']:.2f} | {r['width']:.2f} | "
              f"{r['gap_below']:.2f} | {r['gap_above']:.2f} | {r['direct_gap']:.2f} | "
              f"{r['seconds'] / (r['nk'] + 1):.1f} |")
    ms = sorted(rows, key=int)
    best = min(ms, key=lambda m: rows[m]["width"])
    print(f"\nminimum width at m = {best}, θ = {rows[best]['theta']:.4f}°")
    fig, ax = plt.subplots(figsize=(3.4, 2.6), constrained_layout=True)
    th = [rows[m]["theta"] for m in ms]
    ax.plot(th, [rows[m]["width"] for m in ms], "o-", ms=3, label="width W of the 4 flat bands")
    ax.plot(th, [min(rows[m]["gap_below"], rows[m]["gap_above"]) for m in ms], "s-", ms=3,
            color="C3", label="gap to remote bands (< 0: overlap)")
    ax.axhline(0.0, color="0.6", lw=0.5)
    ax.set_xlabel("twist angle θ (°)")
    ax.set_ylabel("energy (meV)")
    ax.legend(fontsize=7, frameon=False)
    fig.savefig(OUT / "atomistic_width_vs_angle.png", dpi=300)
    plt.close(fig)


def part_bands(m: int, n_points: int, nev: int) -> None:
    t0 = time.perf_counter()
    model, e_cn, _ = neutral_model(m)
    k, s, ticks = moire_path(model, n_points)
    e = path_energies(model, k, nev)[0]
    print(f"bands at m = {m} (θ = {model.theta:.4f}°, E_CN = {e_cn:.2f} meV): {len(k)} k, "
          f"{time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}")
    for name, x in zip(PATH, ticks, strict=True):
        j = int(np.argmin(np.abs(s - x)))
        print(f"  {name}: " + " ".join(f"{v:.2f}" for v in e[j]))
    _bands_figure(m, model.theta, model.norb, s, ticks, e)


def _bands_figure(m: int, theta: float, norb: int, s, ticks, e: np.ndarray) -> None:
    """Full window and a zoom on the flat bands. A window of the nev eigenvalues nearest 0
    holds every band with |E| < max|E| at that k; sorted window indices are not band
    indices, so the bands are drawn as points and the four nearest E_CN as lines."""
    near = flat_stats(e, np.full((len(s), 2), np.nan))["flat"]
    fig, axes = plt.subplots(1, 2, figsize=(6.8, 3.0), constrained_layout=True)
    for ax, lim in zip(axes, (None, 4.0), strict=True):
        ax.plot(np.repeat(s, e.shape[1]), e.ravel(), ".", ms=2.5, color="0.4",
                label="bands (window of 16)")
        ax.plot(s, near, "-", lw=1.0, color="C0")
        for x in ticks:
            ax.axvline(x, color="0.7", lw=0.5)
        ax.set_xticks(ticks, ["Γ", "K", "M", "Γ"])
        ax.set_xlim(ticks[0], ticks[-1])
        if lim:
            ax.set_ylim(-lim, lim)
    axes[0].plot([], [], "-", color="C0", label="4 states nearest E_CN")
    axes[0].legend(fontsize=6, frameon=False, loc="upper right")
    axes[0].set_ylabel("E − E_CN (meV)")
    fig.suptitle(f"atomistic TBG, unrelaxed: m = {m}, θ = {theta:.3f}°, N = {norb}",
                 fontsize=8)
    fig.savefig(OUT / f"atomistic_bands_m{m}.png", dpi=300)
    plt.close(fig)
    (OUT / f"atomistic_bands_m{m}.json").write_text(json.dumps(
        {"theta": theta, "norb": norb, "s": list(s), "ticks": list(ticks),
         "energies": e.tolist()}))


def part_geometry(m: int, grid: int) -> None:
    t0 = time.perf_counter()
    model, e_cn, _ = neutral_model(m)
    solver = SlepcSolver(WindowOptions(nev=4, target=0.0), MPI.COMM_SELF)
    geo = compute(MPI.COMM_SELF, model, (grid, grid), np.array([1.0]), np.array([0.0]),
                  np.full((1, 4), 0.1), 1.0, solver=solver,
                  window={"delta_out": np.array([0.1]), "chern_below": 0})[2]
    print(f"geometry at m = {m} (θ = {model.theta:.4f}°, E_CN = {e_cn:.2f} meV), "
          f"{grid}x{grid} grid: {time.perf_counter() - t0:.0f} s, load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"window isolated: {window_isolated(geo)}; window edges {geo['window_edges']} meV")
    print(f"band min {np.round(geo['band_min'], 2)}, max {np.round(geo['band_max'], 2)} meV")
    print(f"min gaps between window bands {np.round(geo['min_gap'], 3)} meV")
    print(f"link Chern (groups: bands 0..3, then [0,2), [0,3), [0,4)): "
          f"{geo['chern_groups'].tolist()}; flux {np.round(geo['chern_flux'], 3).tolist()}")
    print(f"Kubo-curvature Chern per band {np.round(geo['chern_curvature'], 3).tolist()}")
    out = geo["metric_integral_out"]
    group = 2.0 * np.pi * float(out[:, 0].sum() + out[:, 1].sum())
    print(f"the 4-band window as one group: link Chern {int(geo['chern_groups'][-1])} (flux "
          f"{geo['chern_flux'][-1]:.4f}); (1/2π)∫Tr g_P d²k = {group:.4f} (sum of the "
          "out-of-window parts: the metric of the projector on the window)")
    print(f"(1/2π)∫Tr g d²k per band {np.round(geo['trace_integral'], 3).tolist()} "
          f"(out-of-window part of ∫g: {np.round(geo['metric_integral_out'], 4).tolist()})")


def part_valley(m: int, grids: list[int], masses: list[float], gap_tol: float) -> None:
    """Valley-resolved geometry of the 4 states nearest E_CN (module doc); one row per grid."""
    store = OUT / "atomistic_valley.json"
    rows = json.loads(store.read_text()) if store.exists() else []
    for mass in masses:
        model, e_cn, _ = neutral_model(m, mass=mass)
        solver = SlepcSolver(WindowOptions(nev=4, target=0.0, pad=4), MPI.COMM_SELF)
        basis = ValleyBasis(solver, model.valley, (0, 4))
        for n in grids:
            t0 = time.perf_counter()
            try:
                geo = valley_geometry(MPI.COMM_SELF, model, basis, n, n)
            except Exception as exc:  # a row that says why (valleys not separated)
                print(f"m = {m}, M = {mass}, {n}x{n}: {exc}", flush=True)
                continue
            row = {"m": m, "theta": model.theta, "mass": mass, "grid": n, "e_cn": e_cn,
                   "seconds": time.perf_counter() - t0, "points": basis.solved,
                   "load": os.getloadavg()[0], **_jsonable(geo)}
            hs = model.high_symmetry_points()  # valley −1 then +1 energies [meV]
            levels = basis.solve(model, np.stack([hs[p] for p in ("G", "K", "M")])).energies
            row["levels"] = dict(zip(("G", "K", "M"), levels.round(3).tolist(), strict=True))
            print(f"  valley-resolved levels (−1, −1, +1, +1) [meV]: {row['levels']}")
            rows.append(row)
            store.write_text(json.dumps(rows, indent=1))
            _valley_row(row, gap_tol)


def _jsonable(geo: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in geo.items()}


def _valley_row(r: dict, gap_tol: float) -> None:
    """One markdown row: separation, valley C per group and per band, metric, time."""
    c = np.asarray(r["chern"])
    bands = []
    for v, name in ((0, "minus"), (1, "plus")):
        gap = r[f"band_gap_{name}"]
        bands.append(f"{c[2 + 2 * v]:+.2f}, {c[3 + 2 * v]:+.2f}" if gap > gap_tol
                     else f"ill-defined (gap {gap:.2g} meV)")
    tr = r["trace"]
    print(f"| {r['m']} ({r['theta']:.3f}°) | {r['mass']:g} | {r['grid']}×{r['grid']} | "
          f"{r['min_abs_valley']:.3f} / {r['valley_gap']:.3f} | {r['mixing']:.3f} | "
          f"{c[0]:+.3f}, {c[1]:+.3f} | {bands[0]} | {bands[1]} | {c[6]:+.3f} | "
          f"{tr[0]:.2f}, {tr[1]:.2f} | {tr[2]:.2f} | {max(r['max_flux']):.2f} | "
          f"{r['seconds']:.0f} s, {r['points']} pts (load {r['load']:.1f}) |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("width", "bands", "geometry", "valley", "table"))
    ap.add_argument("--m", type=int, nargs="+", default=[31])
    ap.add_argument("--points", type=int, default=13, help="k-points on the path")
    ap.add_argument("--nev", type=int, default=16, help="bands in the band-structure figure")
    ap.add_argument("--grid", type=int, nargs="+", default=None,
                    help="n of the n×n grid(s) (geometry, valley: 6)")
    ap.add_argument("--mass", type=float, nargs="+", default=[0.0], help="sublattice mass [meV]")
    ap.add_argument("--gap-tol", type=float, default=0.05,
                    help="valley: per-band C only where the bands of a valley stay this far "
                         "apart [meV]")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part == "width":
        part_width(args.m, args.points)
    elif args.part == "table":
        _width_table(json.loads(CACHE.read_text()))
    elif args.part == "bands":
        part_bands(args.m[0], args.points, args.nev)
    elif args.part == "geometry":
        part_geometry(args.m[0], (args.grid or [6])[0])
    else:
        part_valley(args.m[0], args.grid or [6], args.mass, args.gap_tol)


if __name__ == "__main__":
    main()
