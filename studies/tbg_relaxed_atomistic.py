"""Relaxed against rigid atomistic TBG (theory §2.6, §2.6a; issue 19): flat bands and their gaps.

Why: the rigid atomistic cell has flat bands that touch the remote bands at Γ (docs/validation.md,
"Atomistic TBG through the SLEPc engine"); continuum relaxation (Nam & Koshino 2017: in-plane
displacement + corrugation d_AA = 0.360 nm, d_AB = 0.335 nm) is meant to isolate them. This
study measures it. Every number is from shift-and-invert eigenvalues of one k at a time
(``nearest_eigenvalues``, MUMPS through SLEPc, serial), energy zero at charge neutrality of each
cell (``build_model`` default).

Flat bands: at charge neutrality the four flat bands per spin (2 valleys × 2) hold the two
highest states below E_CN and the two lowest above; the remote band below (above) is the third
state below (above). Gap below = min over k of (lowest flat) − max over k of (remote below)
(indirect; < 0 = overlap), likewise above; the direct gap is the smallest gap at one k.

Parts (one heavy process at a time; the machine has 2 cores):
  ``points``  Γ, K, M for each m, rigid and relaxed (count = 12 eigenvalues nearest 0): flat
              energies, gaps at each point, width over the three points; plus the continuum
              model (``tbg_continuum``, koshino2018, valley +1, 3 shells) at the same θ on a
              ``--cgrid`` grid.
  ``grid``    an n×n moiré grid (count = 10) at one m, rigid and relaxed one after the other.
  ``bands``   Γ–K–M–Γ (``--points``) with count = 12 at one m, rigid and relaxed (figure).
  ``facts``   relaxation facts and build times for ``--m`` cells, and the time to read and
              build m = 31 back from a POSCAR written by ``qgt-mpi model save``.
Results are cached in docs/figures/tbg_relaxed_atomistic/results.json (keyed by part, m, cell)
and the markdown tables are printed.

Usage::

    .venv/bin/python studies/tbg_relaxed_atomistic.py points --m 25 26 27 28 29 30 31 32 33 34 35
    .venv/bin/python studies/tbg_relaxed_atomistic.py grid --m 31 --grid 12
    .venv/bin/python studies/tbg_relaxed_atomistic.py bands --m 31 --points 40
    .venv/bin/python studies/tbg_relaxed_atomistic.py facts --m 31 60
"""

# ruff: noqa: E402  (the thread settings must precede the numpy/petsc4py imports)
from __future__ import annotations

from qgt_mpi._env import pin_threads

pin_threads()  # one BLAS/OpenMP thread per process, as `qgt-mpi run` sets (MUMPS too)

# isort: split
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from qgt_mpi.models import build_model
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.models.tbg_atomistic import nearest_eigenvalues

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "figures" / "tbg_relaxed_atomistic"
CACHE = OUT / "results.json"
CELLS = ("rigid", "relaxed")
PATH = ("G", "K", "M", "G")


def model_for(m: int, cell: str, **extra):
    params = {"m": m, **extra}
    if cell == "relaxed":
        params["relax"] = {"method": "continuum"}
    return build_model("tbg_atomistic", params)


def split(e: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(4 flat energies, remote below, remote above) of one k from eigenvalues around E_CN."""
    e = np.sort(e)
    lo, hi = e[e < 0.0], e[e >= 0.0]
    if len(lo) < 3 or len(hi) < 3:
        raise RuntimeError(f"need 3 states each side of E_CN, got {e}")
    return np.concatenate([lo[-2:], hi[:2]]), float(lo[-3]), float(hi[2])


def solve(model, k: np.ndarray, count: int) -> list[np.ndarray]:
    return [np.sort(nearest_eigenvalues(model.csr(kk)[0], 0.0, count)) for kk in k]


def stats(es: list[np.ndarray]) -> dict:
    parts = [split(e) for e in es]
    flat = np.array([p[0] for p in parts])
    below = np.array([p[1] for p in parts])
    above = np.array([p[2] for p in parts])
    return {"width": float(flat.max() - flat.min()),
            "gap_below": float(flat[:, 0].min() - below.max()),
            "gap_above": float(above.min() - flat[:, 3].max()),
            "direct_below": float((flat[:, 0] - below).min()),
            "direct_above": float((above - flat[:, 3]).min()),
            "flat": flat.tolist(), "below": below.tolist(), "above": above.tolist()}


def load() -> dict:
    return json.loads(CACHE.read_text()) if CACHE.exists() else {}


def store(key: str, value) -> None:
    rows = load()
    rows[key] = value
    CACHE.write_text(json.dumps(rows))


def continuum(theta: float, n: int) -> tuple[float, float]:
    """(W, smaller gap) [meV] of the two flat bands of valley +1, koshino2018, n×n grid."""
    model = build_model("tbg_continuum", {"theta": float(theta), "params": "koshino2018"})
    k = kgrid_points(model.reciprocal, n, n, 0, n * n)
    mid = model.norb // 2
    e = np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])[:, mid - 2:mid + 2]
    return (float(e[:, 1:3].max() - e[:, 1:3].min()),
            float(min(e[:, 1].min() - e[:, 0].max(), e[:, 3].min() - e[:, 2].max())))


# ------------------------------------------------------------------------------------ points
def part_points(ms: list[int], cgrid: int) -> None:
    for m in ms:
        for cell in CELLS:
            t0 = time.perf_counter()
            model = model_for(m, cell)
            hs = model.high_symmetry_points()
            es = solve(model, np.array([hs[p] for p in "GKM"]), 12)
            store(f"points/{m}/{cell}", {"theta": model.theta, "norb": model.norb,
                                         "energies": [e.tolist() for e in es], **stats(es),
                                         "seconds": time.perf_counter() - t0})
            print(f"m = {m} {cell}: {time.perf_counter() - t0:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        store(f"continuum/{m}", continuum(model.theta, cgrid) + (cgrid,))
    points_tables()


def points_tables() -> None:
    rows = load()
    ms = sorted({int(k.split("/")[1]) for k in rows if k.startswith("points/")})
    print("\n### flat bands and nearest remote bands at Γ, K, M (meV from E_CN)\n")
    print("| m | θ (°) | cell | point | remote below | 4 flat bands | remote above "
          "| gap below | gap above |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in ms:
        for cell in CELLS:
            r = rows.get(f"points/{m}/{cell}")
            if r is None:
                continue
            for i, p in enumerate("ΓKM"):
                f = r["flat"][i]
                print(f"| {m} | {r['theta']:.4f} | {cell} | {p} | {r['below'][i]:.2f} | "
                      + ", ".join(f"{v:.2f}" for v in f)
                      + f" | {r['above'][i]:.2f} | {f[0] - r['below'][i]:.2f} | "
                      f"{r['above'][i] - f[3]:.2f} |")
    print("\n### width and gaps from Γ, K, M only, against the continuum model\n")
    print("| m | θ (°) | W rigid | gap below / above rigid | W relaxed "
          "| gap below / above relaxed | continuum koshino2018: W, gap (valley +1) |")
    print("|---|---|---|---|---|---|---|")
    for m in ms:
        a, b = rows.get(f"points/{m}/rigid"), rows.get(f"points/{m}/relaxed")
        c = rows.get(f"continuum/{m}")
        if a is None or b is None:
            continue
        print(f"| {m} | {a['theta']:.4f} | {a['width']:.2f} | {a['gap_below']:.2f} / "
              f"{a['gap_above']:.2f} | {b['width']:.2f} | {b['gap_below']:.2f} / "
              f"{b['gap_above']:.2f} | "
              + (f"{c[0]:.2f}, {c[1]:.2f} ({c[2]}×{c[2]})" if c else "") + " |")
    full = [m for m in ms if f"points/{m}/relaxed" in rows and f"points/{m}/rigid" in rows]
    if not full:
        return
    for cell in CELLS:
        best = min(full, key=lambda m: rows[f"points/{m}/{cell}"]["width"])
        r = rows[f"points/{best}/{cell}"]
        print(f"\nminimum width {cell}: m = {best}, θ = {r['theta']:.4f}°, W = {r['width']:.2f}")
    fig, ax = plt.subplots(figsize=(3.6, 2.7), constrained_layout=True)
    th = [rows[f"points/{m}/rigid"]["theta"] for m in full]
    for cell, c in zip(CELLS, ("C0", "C3"), strict=True):
        w = [rows[f"points/{m}/{cell}"]["width"] for m in full]
        g = [min(rows[f"points/{m}/{cell}"]["gap_below"],
                 rows[f"points/{m}/{cell}"]["gap_above"]) for m in full]
        ax.plot(th, w, "o-", ms=3, color=c, label=f"W, {cell}")
        ax.plot(th, g, "s--", ms=3, color=c, label=f"smaller gap, {cell}")
    ax.axhline(0.0, color="0.6", lw=0.5)
    ax.set_xlabel("twist angle θ (°)")
    ax.set_ylabel("energy (meV), from Γ, K, M")
    ax.legend(fontsize=6, frameon=False)
    fig.savefig(OUT / "width_vs_angle.png", dpi=200)
    plt.close(fig)


# -------------------------------------------------------------------------------------- grid
def part_grid(m: int, n: int) -> None:
    for cell in CELLS:
        t0 = time.perf_counter()
        model = model_for(m, cell)
        k = kgrid_points(model.reciprocal, n, n, 0, n * n)
        es = solve(model, k, 10)
        s = stats(es)
        store(f"grid/{m}/{n}/{cell}", {"theta": model.theta, "width": s["width"],
                                       **{x: s[x] for x in ("gap_below", "gap_above",
                                                            "direct_below", "direct_above")},
                                       "flat_range": [float(np.min(s["flat"])),
                                                      float(np.max(s["flat"]))],
                                       "seconds": time.perf_counter() - t0, "nk": len(k)})
        print(f"m = {m} {cell} {n}×{n}: {time.perf_counter() - t0:.0f} s, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    grid_table()


def grid_table() -> None:
    rows = load()
    print("\n| m | grid | cell | flat bands span (meV) | W | gap below (indirect / direct) "
          "| gap above (indirect / direct) | s per k |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(k for k in rows if k.startswith("grid/")):
        _, m, n, cell = key.split("/")
        r = rows[key]
        print(f"| {m} | {n}×{n} | {cell} | {r['flat_range'][0]:.2f} … {r['flat_range'][1]:.2f} "
              f"| {r['width']:.2f} | {r['gap_below']:.2f} / {r['direct_below']:.2f} | "
              f"{r['gap_above']:.2f} / {r['direct_above']:.2f} | {r['seconds'] / r['nk']:.1f} |")


# ------------------------------------------------------------------------------------- bands
def moire_path(model, n_points: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Cartesian k along Γ–K–M–Γ, ~n_points spaced by arc length; (k, s, ticks)."""
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


def part_bands(m: int, n_points: int) -> None:
    for cell in CELLS:
        t0 = time.perf_counter()
        model = model_for(m, cell)
        k, s, ticks = moire_path(model, n_points)
        es = solve(model, k, 12)
        count = min(len(e) for e in es)
        e = np.array([np.sort(x)[np.argsort(np.abs(np.sort(x)))[:count]] for x in es])
        store(f"bands/{m}/{cell}", {"theta": model.theta, "norb": model.norb, "s": s.tolist(),
                                    "ticks": ticks, "energies": [x.tolist() for x in es],
                                    "seconds": time.perf_counter() - t0})
        print(f"bands m = {m} {cell}: {len(k)} k, {time.perf_counter() - t0:.0f} s", flush=True)
    bands_figure(m)


def bands_figure(m: int) -> None:
    rows = load()
    fig, axes = plt.subplots(1, 2, figsize=(6.8, 3.2), sharey=True, constrained_layout=True)
    for ax, cell in zip(axes, CELLS, strict=True):
        r = rows[f"bands/{m}/{cell}"]
        s, ticks = np.array(r["s"]), r["ticks"]
        for x, e in zip(s, r["energies"], strict=True):
            e = np.sort(e)
            flat, _, _ = split(e)
            rest = e[~np.isin(e, flat)]
            ax.plot(np.full(len(rest), x), rest, ".", ms=2.5, color="0.45")
            ax.plot(np.full(4, x), flat, ".", ms=3, color="C3")
        for x in ticks:
            ax.axvline(x, color="0.7", lw=0.5)
        ax.axhline(0.0, color="0.8", lw=0.4)
        ax.set_xticks(ticks, ["Γ", "K", "M", "Γ"])
        ax.set_xlim(ticks[0], ticks[-1])
        ax.set_ylim(-130, 130)
        ax.set_title(f"{cell}: θ = {r['theta']:.3f}°, N = {r['norb']}", fontsize=8)
    axes[0].plot([], [], ".", color="C3", label="4 flat bands (2 below, 2 above E_CN)")
    axes[0].plot([], [], ".", color="0.45", label="remote bands (12 nearest E_CN)")
    axes[0].legend(fontsize=6, frameon=False, loc="lower left")
    axes[0].set_ylabel("E − E_CN (meV)")
    fig.savefig(OUT / f"bands_m{m}.png", dpi=200)
    plt.close(fig)


# ------------------------------------------------------------------------------------- facts
def part_facts(ms: list[int]) -> None:
    from qgt_mpi.models import relax as relax_module

    for m in ms:
        t0 = time.perf_counter()
        rigid = model_for(m, "rigid")
        t_rigid = time.perf_counter() - t0
        calls = []
        original = relax_module.relax_twisted_bilayer

        def timed(*a, _orig=original, **kw):
            t = time.perf_counter()
            out = _orig(*a, **kw)
            calls.append(time.perf_counter() - t)
            return out

        relax_module.relax_twisted_bilayer = timed
        try:
            t0 = time.perf_counter()
            relaxed = model_for(m, "relaxed")
            t_relaxed = time.perf_counter() - t0
        finally:
            relax_module.relax_twisted_bilayer = original
        info = {k: v for k, v in relaxed.info.items() if k.startswith("relax_")}
        store(f"facts/{m}", {"theta": relaxed.theta, "norb": relaxed.norb,
                             "build_rigid_s": t_rigid, "build_relaxed_s": t_relaxed,
                             "relax_call_s": calls[0] if calls else None, **info})
        print(f"m = {m}: rigid build {t_rigid:.1f} s, relaxed build {t_relaxed:.1f} s", flush=True)
        del rigid, relaxed
    # read-back of m = 31 from a POSCAR written by `qgt-mpi model save`
    with tempfile.TemporaryDirectory() as tmp:
        deck = Path(tmp) / "deck.toml"
        deck.write_text('[model]\nkind = "tbg_atomistic"\nm = 31\n[model.relax]\n'
                        'method = "continuum"\n')
        poscar = Path(tmp) / "POSCAR"
        t0 = time.perf_counter()
        subprocess.run([str(Path(os.sys.executable).parent / "qgt-mpi"), "model", "save",
                        str(deck), "-o", str(poscar)], check=True, capture_output=True)
        t_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = build_model("atomistic", {"structure": str(poscar)})
        t_read = time.perf_counter() - t0
        ref = model_for(31, "relaxed")
        hs = ref.high_symmetry_points()
        e_ref = solve(ref, hs["K"][None], 8)[0]
        e_back = solve(back, back.high_symmetry_points()["K"][None], 8)[0]
        store("facts/poscar31", {"save_s": t_save, "read_build_s": t_read,
                                 "norb": back.norb, "bytes": poscar.stat().st_size,
                                 "k_max_diff_meV": float(np.abs(e_ref - e_back).max())})
    facts_table()


def facts_table() -> None:
    rows = load()
    print("\n| m | θ (°) | N | max displacement (nm) | energy gain (meV/nm²) | AA fraction "
          "| AB fraction | iterations | residual | relaxation (s) | build rigid / relaxed (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted((k for k in rows if k.startswith("facts/") and k[6:].isdigit()),
                      key=lambda k: int(k[6:])):
        r = rows[key]
        print(f"| {key[6:]} | {r['theta']:.4f} | {r['norb']} | "
              f"{r['relax_max_displacement_nm']:.4f} | {r['relax_energy_gain_meV_per_nm2']:.1f} | "
              f"{r['relax_aa_fraction']:.4f} | {r['relax_ab_fraction']:.4f} | "
              f"{r['relax_iterations']} | {r['relax_residual']:.1e} | "
              f"{r['relax_call_s'] or float('nan'):.1f} | {r['build_rigid_s']:.1f} / "
              f"{r['build_relaxed_s']:.1f} |")
    p = rows.get("facts/poscar31")
    if p:
        print(f"\nPOSCAR m = 31 ({p['bytes']} bytes): save {p['save_s']:.1f} s, "
              f"read + build {p['read_build_s']:.1f} s, N = {p['norb']}, "
              f"K eigenvalues vs tbg_atomistic: max diff {p['k_max_diff_meV']:.2e} meV")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=("points", "grid", "bands", "facts", "tables"))
    ap.add_argument("--m", type=int, nargs="+", default=[31])
    ap.add_argument("--grid", type=int, default=12)
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--cgrid", type=int, default=24, help="continuum comparison grid")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part == "points":
        part_points(args.m, args.cgrid)
    elif args.part == "grid":
        for m in args.m:
            part_grid(m, args.grid)
    elif args.part == "bands":
        for m in args.m:
            part_bands(m, args.points)
    elif args.part == "facts":
        part_facts(args.m)
    else:
        points_tables()
        grid_table()
        facts_table()


if __name__ == "__main__":
    main()
