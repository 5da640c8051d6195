"""Transport of the TBG flat bands versus filling, continuum and atomistic (issue 8 item 4).

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
- ``bm_m10_flat``: those bands exactly flattened at their centres (``solver.flatten``,
  eigenvectors and geometry kept) — the paper's assumption with TBG's real quantum geometry.
- ``atom``: atomistic m = 27 (θ = 1.203°, the cell nearest the atomistic magic angle), the
  SLEPc window of the 4 flat bands nearest neutrality with the out-of-window metric; both
  valleys are in the model, degeneracy 2 (spin).
- ``atom_flat``: those 4 bands flattened: the lower pair at its mean centre, the upper pair at
  its mean centre (the same target makes each valley pair one degenerate group).
Valley runs are added as Onsager tensors (``_tbg_combine.combine``). Writes
docs/figures/tbg/tbg_transport_{continuum,atomistic}.png and prints markdown tables. Run:

    .venv/bin/python bench/tbg_transport.py continuum      # ≈ 2 min (6 runs)
    .venv/bin/python bench/tbg_transport.py atomistic      # ≈ 6–8 min (2 runs of 9×9)
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
BM = {"kind": "bm_continuum", "theta": 1.05, "w0": 88.0, "w1": 110.0, "shells": 3}


def deck(title: str, degeneracy: int, model: dict, solver: dict, grid: int, bands: list[int],
         output: Path, chunk: int) -> str:
    """TOML text of a fixed-filling deck (docs/input.md)."""
    sweep = {"temperature": TEMPS, "filling": [float(x) for x in (NU + 4) / 8],
             "filling_bands": bands, "delta": DELTAS}
    parts = [f"title = {toml_value(title)}", f"degeneracy = {degeneracy}"]
    for name, table_ in (("model", model), ("solver", solver), ("kgrid", {"size": [grid, grid]}),
                         ("sweep", sweep), ("output", {"file": str(output), "kresolved": False}),
                         ("run", {"chunk": chunk})):
        parts += ["", f"[{name}]", *(f"{k} = {toml_value(v)}" for k, v in table_.items())]
    return "\n".join(parts) + "\n"


def run(workdir: Path, name: str, **kwargs) -> dict[str, np.ndarray]:
    """Write deck ``name``, run it on 2 ranks (2 pools), return its transport datasets."""
    out = workdir / f"{name}.h5"
    path = workdir / f"{name}.toml"
    path.write_text(deck(name, output=out, **kwargs))
    start = time.perf_counter()
    subprocess.run(["mpirun", "-n", "2", str(QGT), "run", str(path), "--overwrite", "--pools",
                    "2"], check=True, env=mpi_env(), capture_output=True, text=True)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"ran {name}: {time.perf_counter() - start:.1f} s wall (load {load})")
    data = read_run(out)
    nu = data["density"] - 4.0
    assert np.allclose(nu, NU[:, None, None], atol=1e-9), "filling → ν mapping"
    return data


def centres(data: dict[str, np.ndarray]) -> np.ndarray:
    """Band centres (min + max)/2 [meV] of the window bands."""
    return 0.5 * (data["band_min"] + data["band_max"])


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
        cases[name] = combine(raw[name])
    _checks(raw, cases, flat)
    return cases


def atomistic(workdir: Path, grid: int) -> dict[str, dict]:
    """m = 27, window of the 4 flat bands; dispersive and flattened."""
    solver = {"kind": "slepc", "nev": 4, "target": 0.0, "chern_below": 0}
    model = {"kind": "tbg_atomistic", "m": 27}
    common = {"degeneracy": 2, "model": model, "grid": grid, "bands": [0, 1, 2, 3],
              "chunk": grid * ((grid + 1) // 2)}
    disp = run(workdir, "atom", solver=solver, **common)
    c = centres(disp)
    flat = [float(np.mean(c[:2]))] * 2 + [float(np.mean(c[2:]))] * 2
    print(f"atomistic band centres {np.round(c, 4).tolist()} meV; flattened to {flat}")
    flatr = run(workdir, "atom_flat", solver=dict(solver, flatten=flat), **common)
    print(f"self-check of the tensor algebra: {max(self_check(disp), self_check(flatr)):.1e}")
    return {"atom": combine([disp]), "atom_flat": combine([flatr])}


def _checks(raw: dict, cases: dict, flat) -> None:
    """Physics checks printed with the tables (valley sum, self-consistency, Drude = 0)."""
    worst = max(self_check(r) for runs in raw.values() for r in runs)
    print(f"self-check of the tensor algebra on single runs: {worst:.1e}")
    for name, runs in raw.items():
        p, m = runs
        xy = np.max(np.abs(p["sigma_xy"] + m["sigma_xy"])) / np.max(np.abs(p["sigma_xy"]) + 1e-300)
        xx = np.max(np.abs(p["sigma_xx"] - m["sigma_xx"]) / p["sigma_xx"])
        print(f"{name}: valley −1 vs +1: σ_xx equal to {xx:.1e}, σ_xy opposite to {xy:.1e} "
              f"(max |σ_xy| one valley {np.max(np.abs(p['sigma_xy'])):.3g} e²/h); "
              f"σ_yy/σ_xx − 1 ≤ {np.max(np.abs(p['sigma_yy'] / p['sigma_xx'] - 1)):.1e}")
        pol = p["seebeck_xx"][:, 1]
        print(f"  valley-polarised (valley +1 only) S_xx at δ = 0.2 meV, ν = −3, −1, +1, +3: "
              f"{np.round(pol[[4, 14, 24, 34]], 1).tolist()} μV/K (rows T)")
    print(f"flattened at {np.round(flat, 4).tolist()} meV; max Drude part of σ_xx: "
          f"{np.max(np.abs(cases['bm_m10_flat']['sigma_xx_drude'])):.1e} e²/h")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["continuum", "atomistic"])
    p.add_argument("--grid", type=int, default=None, help="N for an N×N grid (18 / 9)")
    p.add_argument("--workdir", type=Path, default=None, help="keep decks and results here")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if a.part == "continuum":
            cases = continuum(work, a.grid or 18)
        else:
            cases = atomistic(work, a.grid or 9)
    table(a.part, NU, TEMPS, DELTAS, cases)
    figure(a.part, NU, TEMPS, cases)


if __name__ == "__main__":
    main()
