"""Transport of the TBG flat bands versus filling, continuum and atomistic (issue 8 item 4).

Why: transport versus filling at fixed density is what experiments on TBG measure; the
tables and figures of docs/validation.md come from here. A physics study, not a benchmark.

Every run is an input deck executed with ``mpirun -n 2 qgt-mpi run DECK --pools 2`` (decks and
result files in ``--workdir``, default a temporary directory), so each number can be reproduced
with the CLI. Fixed-filling sweeps (docs/input.md ``[sweep] filling``): ν electrons per moiré
cell relative to charge neutrality, −4 < ν < 4, over 8 flat bands per cell (continuum: 2 bands
per valley × 2 valleys × 2 spins; atomistic: 4 bands (both valleys) × 2 spins). The engine's
``filling`` is the mean occupation f of the ``filling_bands`` per flavour, so

    ν = 8 f − 4,   f = (ν + 4)/8,

checked on every run through the carrier density (``density`` − 4 = ν).

Cases (theory §2.5, §2.6; SPEC §2.5, §2.6):
- ``bm_m0``: continuum (BM) at 1.05°, w0/w1 = 0.8, w1 = 110 meV, 3 shells, no mass (C2zT: the
  two flat bands of a valley touch at K, K'); valley +1 and −1 runs, spin degeneracy 2 each.
- ``bm_m10``: the same with a sublattice mass of 10 meV (hBN alignment), C = ±1 per band.
- ``bm_m10_flat``: those bands exactly flattened at their mean energies over the k-grid
  (``solver.flatten``, eigenvectors and geometry kept) — the paper's assumption with TBG's real
  quantum geometry.
- ``atom``: atomistic m = 27 (θ = 1.203°, the cell nearest the atomistic magic angle), the
  SLEPc window of the 4 flat bands nearest neutrality with the out-of-window metric; both
  valleys are in the model, degeneracy 2 (spin).
- ``atom_flat``: those 4 bands flattened: the lower pair at its mean energy over the k-grid,
  the upper pair at its mean energy (the same target makes each valley pair one degenerate
  group, whose mutual pairs drop out, solvers/flat.py).
Valley runs are added as Onsager tensors (``_tbg_combine.combine``). Writes
docs/figures/tbg/tbg_transport_{continuum,atomistic}.png and prints markdown tables. Run:

    .venv/bin/python studies/tbg_transport.py continuum      # 6 runs, 40–100 s (shared machine)
    .venv/bin/python studies/tbg_transport.py atomistic      # 2 runs of 9×9, ≈ 10 min at load 5–8
    .venv/bin/python studies/tbg_transport.py atomistic --m 35 --relax --grid 12 \\
        --temps 1 2 5 10 20 40 80                          # relaxed magic angle (issue 19)
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import QGT, mpi_env, toml_value
from _tbg_combine import combine, read_run, self_check
from _tbg_report import figure, table

TEMPS = [2.0, 5.0, 10.0, 20.0, 40.0]  # K
DELTAS = [0.1, 0.2, 0.5]  # meV
NU = np.round(np.arange(-3.8, 3.801, 0.2), 10)  # electrons per moiré cell from neutrality
REUSE = False  # --reuse: read existing result files of --workdir instead of running again
BM = {"kind": "bm_continuum", "theta": 1.05, "w0": 88.0, "w1": 110.0, "shells": 3}


def deck(title: str, degeneracy: int, model: dict, solver: dict, grid: int, bands: list[int],
         output: Path, chunk: int) -> str:
    """TOML text of a fixed-filling deck (docs/input.md)."""
    sweep = {"temperature": TEMPS, "filling": [float(x) for x in (NU + 4) / 8],
             "filling_bands": bands, "delta": DELTAS}
    parts = [f"title = {toml_value(title)}", f"degeneracy = {degeneracy}"]
    kres = "flatten" not in solver  # band energies per k: their means are the flat energies
    for name, table_ in (("model", model), ("solver", solver), ("kgrid", {"size": [grid, grid]}),
                         ("sweep", sweep), ("output", {"file": str(output), "kresolved": kres}),
                         ("run", {"chunk": chunk})):
        parts += ["", f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table_.items())]
    return "\n".join(parts) + "\n"


def run(workdir: Path, name: str, **kwargs) -> dict[str, np.ndarray]:
    """Write deck ``name``, run it on 2 ranks (2 pools), return its transport datasets."""
    out = workdir / f"{name}.h5"
    path = workdir / f"{name}.toml"
    path.write_text(deck(name, output=out, **kwargs))
    if REUSE and out.exists():
        return read_run(out)
    start = time.perf_counter()
    subprocess.run(["mpirun", "-n", "2", str(QGT), "run", str(path), "--overwrite", "--pools",
                    "2"], check=True, env=mpi_env(), capture_output=True, text=True)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"ran {name}: {time.perf_counter() - start:.1f} s wall (load {load})")
    return read_run(out)


def _check_nu(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ν = density − 4 of all flavours together must be the requested filling."""
    err = np.max(np.abs(case["density"] - 4.0 - NU[:, None, None]))
    assert err < 1e-9, f"filling → ν mapping off by {err}"
    return case


def centres(data: dict[str, np.ndarray]) -> np.ndarray:
    """Mean energy over the k-grid [meV] of each window band (k-resolved output)."""
    return data["band_mean"]


def continuum(workdir: Path, grid: int) -> dict[str, dict]:
    """The three continuum cases, each the sum of valley +1 and −1."""
    solver = {"kind": "slepc", "nev": 2, "target": 0.0, "chern_below": 0}
    cases: dict[str, dict] = {}
    raw: dict[str, list] = {}
    flat = None
    for name, mass, flatten in (("bm_m0", 0.0, False), ("bm_m10", 10.0, False),
                                ("bm_m10_flat", 10.0, True)):
        s = dict(solver, flatten=[float(x) for x in flat]) if flatten else solver
        raw[name] = [run(workdir, f"{name}_v{v:+d}", degeneracy=2, model=dict(BM, mass=mass,
                                                                           valley=v),
                         solver=s, grid=grid, bands=[0, 1], chunk=grid * (grid // 4))
                     for v in (1, -1)]
        if name == "bm_m10":
            flat = centres(raw[name][0])
        cases[name] = _check_nu(combine(raw[name]))
    _checks(raw, cases, flat)
    return cases


def atomistic(workdir: Path, grid: int, m: int = 27, relax: bool = False) -> dict[str, dict]:
    """Cell m (default 27, rigid; ``relax``: continuum relaxation of theory §2.6a with its
    defaults), window of the 4 flat bands; dispersive and flattened."""
    solver = {"kind": "slepc", "nev": 4, "target": 0.0, "chern_below": 0}
    model: dict = {"kind": "tbg_atomistic", "m": m}
    if relax:
        model["relax"] = {"method": "continuum"}
    common = {"degeneracy": 2, "model": model, "grid": grid, "bands": [0, 1, 2, 3],
              "chunk": grid * ((grid + 1) // 2)}
    name = "atom" if (m, relax) == (27, False) else f"atom_m{m}" + ("_relaxed" if relax else "")
    disp = run(workdir, name, solver=solver, **common)
    c = centres(disp)
    flat = [float(np.mean(c[:2]))] * 2 + [float(np.mean(c[2:]))] * 2
    lo, hi = np.round(disp["band_min"], 4).tolist(), np.round(disp["band_max"], 4).tolist()
    print(f"atomistic band means {np.round(c, 4).tolist()} meV (min {lo}, max {hi}); "
          f"flattened to {np.round(flat, 4).tolist()}")
    flatr = run(workdir, f"{name}_flat", solver=dict(solver, flatten=flat), **common)
    print(f"self-check of the tensor algebra: {max(self_check(disp), self_check(flatr)):.1e}")
    return {name: _check_nu(combine([disp])), f"{name}_flat": _check_nu(combine([flatr]))}


def _checks(raw: dict, cases: dict, flat) -> None:
    """Physics checks printed with the tables (valley sum, self-consistency, Drude = 0)."""
    worst = max(self_check(r) for runs in raw.values() for r in runs)
    print(f"self-check of the tensor algebra on single runs: {worst:.1e}")
    for name, runs in raw.items():
        p, m = runs
        xy = np.max(np.abs(p["sigma_xy"] + m["sigma_xy"])) / np.max(np.abs(p["sigma_xx"]))
        xx = np.max(np.abs(p["sigma_xx"] - m["sigma_xx"]) / p["sigma_xx"])
        print(f"{name}: valley −1 vs +1: σ_xx equal to {xx:.1e}, |σ_xy(+) + σ_xy(−)|/σ_xx ≤ "
              f"{xy:.1e} (max |σ_xy| one valley {np.max(np.abs(p['sigma_xy'])):.3g} e²/h); "
              f"σ_yy/σ_xx − 1 ≤ {np.max(np.abs(p['sigma_yy'] / p['sigma_xx'] - 1)):.1e}")
        pol = p["seebeck_xx"][:, 1]
        print(f"  valley-polarised (valley +1 only) S_xx [μV/K] at δ = 0.2 meV, rows ν = −3, −1, "
              f"+1, +3, columns T = {TEMPS} K: {np.round(pol[[4, 14, 24, 34]], 1).tolist()}")
    print(f"flattened at {np.round(flat, 4).tolist()} meV; max Drude part of σ_xx: "
          f"{np.max(np.abs(cases['bm_m10_flat']['sigma_xx_drude'])):.1e} e²/h")


def main() -> None:
    global REUSE, TEMPS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["continuum", "atomistic"])
    p.add_argument("--grid", type=int, default=None, help="N for an N×N grid (18 / 9)")
    p.add_argument("--workdir", type=Path, default=None, help="keep decks and results here")
    p.add_argument("--reuse", action="store_true", help="reuse result files in --workdir")
    p.add_argument("--m", type=int, default=27, help="atomistic part: the (m, 1) cell")
    p.add_argument("--relax", action="store_true", help="atomistic part: relaxed cell")
    p.add_argument("--temps", type=float, nargs="+", default=None, help=f"K (default {TEMPS})")
    a = p.parse_args()
    REUSE = a.reuse
    TEMPS = a.temps or TEMPS
    with tempfile.TemporaryDirectory() as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if a.part == "continuum":
            cases = continuum(work, a.grid or 18)
        else:
            cases = atomistic(work, a.grid or 9, a.m, a.relax)
    table(a.part, NU, TEMPS, DELTAS, cases)
    default = a.grid is None or a.grid == (18 if a.part == "continuum" else 9)
    suffix = "" if default else f"_{a.grid}x{a.grid}"
    if a.part == "atomistic" and (a.m, a.relax) != (27, False):
        suffix = f"_m{a.m}" + ("_relaxed" if a.relax else "") + suffix
    figure(a.part, NU, TEMPS, cases, suffix)


if __name__ == "__main__":
    main()
