"""Side-by-side timing and physics check of qgt_mpi against WannierBerri (Haldane model).

Why: the issue's speed goal is stated against WannierBerri (docs/performance.md §3). Not part
of the suite (bench/run.py): WannierBerri lives in an external venv; the qgt_mpi side alone is
case 4 of bench/bench_scale.py.

WannierBerri (pip ``wannierberri``, with ``pythtb``, ``numba`` and ``ray``) is never part of
this repository: with ``--install`` this script creates a throwaway venv outside the repo
(default /tmp/qgt-bench-peer, ``/usr/bin/python3 -m venv`` without system site packages)
and pip-installs it there. Without the venv the WannierBerri part is reported as skipped.

Model: Haldane, t1 = 1, t2 = 0.3, M = 0.2, φ = π/2 (meV for qgt_mpi; WannierBerri reads the
same numbers as eV, which changes no conductance in units of e²/h). Convention mapping onto a
pythtb ``tb_model`` (orbital 0 = our A at reduced (0, 0), orbital 1 = B at (1/3, 1/3)):
on-site [+M, −M] (pythtb's Haldane example writes [−Δ, +Δ], so Δ = −M); NN hops t1 from A to
B in the cells (0,0), (−1,0), (0,−1); NNN hops t2 e^{+iφ} for A→A and t2 e^{−iφ} for B→B along
a1, a2 − a1, −a2, which is the example's t2 e^{iφ} pattern.

Timed, as whole processes (wall time of a subprocess):

* WannierBerri anomalous Hall conductivity (``calculators.static.AHC``) on a 400×400×1 grid
  at 281 Fermi levels in [−4, 4], serial and with ``--ray`` ray workers; the best is kept;
* ``mpirun -n 2 qgt-mpi run`` (best of ``--repeat``, run before WannierBerri so that no ray
  process is still alive) on the same model, grid and 281 μ, computing σ_xx (Drude and
  geometric), σ_xy, Seebeck and κ_xx at T = 10 K, δ = 0.05 meV.

Physics: WannierBerri's T = 0, zero-broadening AHC (S/m of a 3D crystal whose third lattice
vector is 1 Å, converted to e²/h per layer) against qgt_mpi σ_xy at T = 0.01 K, δ = 0.0005 meV;
the in-gap plateau must equal the Chern number of the occupied band.

Usage::

    .venv/bin/python bench/peer_wannierberri.py [--install] [--venv DIR] [--nk 400] [--ray 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
from _common import (
    MODELS,
    format_table,
    kpass_seconds,
    read_timing,
    run_qgt,
    write_deck,
)

E2_OVER_H_SIEMENS = 3.874045846e-5  # e²/h in S
WB_CELL_HEIGHT_M = 1e-10  # pythtb 2D models get a unit third lattice vector: 1 Å
MODEL = MODELS["dispersive"]
EF = (-4.0, 4.0, 281)
WB_PACKAGES = ["wannierberri", "pythtb", "numba", "ray", "pyfftw"]

WB_DRIVER = textwrap.dedent('''
    """WannierBerri AHC of the Haldane model; written and run by bench/peer_wannierberri.py."""
    import json
    import sys

    import numpy as np

    cfg = json.loads(sys.argv[1])
    import pythtb
    import wannierberri as wberri

    t1, t2, mass, phi = cfg["t1"], cfg["t2"], cfg["mass"], cfg["phi"]
    model = pythtb.tb_model(2, 2, [[1.0, 0.0], [0.5, 3**0.5 / 2]], [[0.0, 0.0], [1/3, 1/3]])
    model.set_onsite([mass, -mass])
    for cell in ([0, 0], [-1, 0], [0, -1]):
        model.set_hop(t1, 0, 1, cell)
    for cell in ([1, 0], [-1, 1], [0, -1]):
        model.set_hop(t2 * np.exp(1j * phi), 0, 0, cell)
        model.set_hop(t2 * np.exp(-1j * phi), 1, 1, cell)
    system = wberri.system.System_R.from_pythtb(model)
    if cfg["ray"] > 0:
        import ray
        ray.init(num_cpus=cfg["ray"], include_dashboard=False, log_to_driver=False)
    nk = cfg["nk"]
    grid_kw = {"NK": [nk, nk, 1]}
    if cfg["nkfft"]:
        grid_kw = {"NKFFT": [cfg["nkfft"]] * 2 + [1], "NKdiv": [nk // cfg["nkfft"]] * 2 + [1]}
    grid = wberri.Grid(system, **grid_kw)
    efermi = np.linspace(*cfg["ef"])
    calc = {"ahc": wberri.calculators.static.AHC(Efermi=efermi)}
    result = wberri.run(system, grid, calc, parallel=cfg["ray"] > 0, fout_name="wb",
                        print_progress_step_time=1e9)
    np.savez(cfg["out"], efermi=efermi, ahc=result.results["ahc"].data,
             grid=grid.str_short)
''')


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--install", action="store_true", help="create the peer venv and pip install")
    p.add_argument("--venv", type=Path, default=Path("/tmp/qgt-bench-peer"))
    p.add_argument("--nk", type=int, default=400, help="k-grid N (N x N x 1)")
    p.add_argument("--ray", type=int, default=2, help="ray worker processes (0: skip)")
    p.add_argument("--nkfft", type=int, nargs="*", default=[0, 50],
                   help="WannierBerri FFT grid sizes to try (0 = its own choice)")
    p.add_argument("--np", type=int, default=2, help="MPI ranks for qgt_mpi")
    p.add_argument("--repeat", type=int, default=3, help="qgt_mpi timed runs (best kept)")
    return p


def install(venv: Path) -> str | None:
    """Create ``venv`` (no system site packages) and pip install WannierBerri into it.

    Parameters
    ----------
    venv : Path
        Target directory, outside the repository.

    Returns
    -------
    str or None
        None on success, otherwise a one-line reason.
    """
    steps = [["/usr/bin/python3", "-m", "venv", str(venv)],
             [str(venv / "bin" / "pip"), "install", "-q", *WB_PACKAGES]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if "WARNING" not in ln]
            return f"{' '.join(cmd[:3])} failed: {(lines or ['?'])[-1]}"
    return None


def run_wannierberri(venv: Path, tmp: Path, nk: int, ray: int, nkfft: int) -> dict:
    """Run the WannierBerri driver as one process and time it.

    Parameters
    ----------
    venv : Path
        Peer venv.
    tmp : Path
        Working directory (WannierBerri writes its files into the cwd).
    nk : int
        Grid N.
    ray : int
        Ray workers; 0 for serial mode.
    nkfft : int
        FFT grid size (0: WannierBerri's choice).

    Returns
    -------
    dict
        ``wall`` (s), ``ok``, ``error`` and, on success, ``efermi``, ``ahc`` (S/m, (nEF, 3))
        and ``grid``.
    """
    out = tmp / f"wb_{ray}_{nkfft}.npz"
    cfg = {"t1": MODEL["t1"], "t2": MODEL["t2"], "mass": MODEL["mass"], "phi": MODEL["phi"],
           "nk": nk, "ray": ray, "nkfft": nkfft, "ef": list(EF), "out": str(out)}
    driver = tmp / "wb_driver.py"
    driver.write_text(WB_DRIVER)
    cmd = [str(venv / "bin" / "python"), str(driver), json.dumps(cfg)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"wall": wall, "ok": False, "error": tail}
    data = np.load(out)
    return {"wall": wall, "ok": True, "efermi": data["efermi"], "ahc": data["ahc"],
            "grid": str(data["grid"])}


def wb_sigma_xy(ahc_s_per_m: np.ndarray) -> np.ndarray:
    """WannierBerri AHC z component (S/m, cell height 1 Å) → σ_xy per layer in e²/h."""
    return ahc_s_per_m[:, 2] * WB_CELL_HEIGHT_M / E2_OVER_H_SIEMENS


def run_qgt_case(tmp: Path, name: str, nk: int, nprocs: int, temperature: float,
                 delta: float) -> dict:
    """Run qgt_mpi on the comparison model at 281 μ and one (T, δ).

    Parameters
    ----------
    tmp : Path
        Directory for deck and result.
    name : str
        Deck stem.
    nk, nprocs : int
        Grid N and MPI ranks.
    temperature, delta : float
        K and meV.

    Returns
    -------
    dict
        ``wall``, ``peak_kb``, ``kpass``, ``mu``, ``sigma_xy``, ``chern`` or ``error``.
    """
    sweep = {"temperature": [temperature], "mu": {"start": EF[0], "stop": EF[1], "num": EF[2]},
             "delta": [delta]}
    deck, out = write_deck(tmp, name, model=MODEL, size=nk, sweep=sweep)
    rec = run_qgt(deck, out, nprocs)
    if rec.returncode != 0:
        return {"wall": rec.wall, "error": (rec.stderr.strip().splitlines() or ["?"])[-1]}
    with h5py.File(out, "r") as f:
        res = {key: f[f"transport/{key}"][()] for key in ("mu", "sigma_xy")}
        res["chern"] = f["geometry/chern"][()]
    res.update(wall=rec.wall, peak_kb=rec.peak_kb, kpass=kpass_seconds(read_timing(out)))
    return res


def timing_table(wb_runs: list[tuple[str, dict]], qgt: dict, nk: int) -> str:
    """Table of whole-process wall times and the speed-up over the best WannierBerri run."""
    rows = []
    for label, run in wb_runs:
        cell = f"{run['wall']:.2f}" if run["ok"] else f"FAILED ({run['error'][:50]})"
        rows.append([f"WannierBerri AHC, {label}", cell, run.get("grid", "")])
    rows.append([f"qgt_mpi mpirun -n {qgt['nprocs']} (sxx, sxy, S, kxx)",
                 f"{qgt['wall']:.2f}", f"{nk}x{nk}, k-pass {qgt['kpass']:.2f} s/rank"])
    ok = [run["wall"] for _, run in wb_runs if run["ok"]]
    text = format_table(["run (281 Fermi levels)", "wall [s]", "grid / note"], rows)
    if ok:
        text += f"\nbest WannierBerri {min(ok):.2f} s / qgt_mpi {qgt['wall']:.2f} s = "
        text += f"speed-up {min(ok) / qgt['wall']:.1f}x"
    return text


def physics_report(wb: dict | None, qgt: dict) -> str:
    """Compare σ_xy(μ) of both codes; check the in-gap plateau against the Chern number."""
    mu, sxy = qgt["mu"], qgt["sigma_xy"][:, 0, 0]
    gap = np.abs(mu) < 0.5
    lines = [f"qgt_mpi Chern numbers (lower, upper band): {qgt['chern'].tolist()}",
             f"qgt_mpi sigma_xy in the gap (|mu| < 0.5): {sxy[gap].min():+.6f} .. "
             f"{sxy[gap].max():+.6f} e^2/h"]
    if wb is None:
        return "\n".join([*lines, "WannierBerri: not run (see above)"])
    wsxy = wb_sigma_xy(wb["ahc"])
    diff = np.abs(wsxy - sxy)
    same_sign = np.sign(wsxy[gap].mean()) == np.sign(sxy[gap].mean())
    lines += [f"WannierBerri sigma_xy in the gap: {wsxy[gap].min():+.6f} .. "
              f"{wsxy[gap].max():+.6f} e^2/h",
              f"|difference| max over all 281 mu: {diff.max():.3e} e^2/h "
              f"(at mu = {mu[np.argmax(diff)]:+.3f}), in the gap: {diff[gap].max():.3e}, "
              f"median: {np.median(diff):.3e}",
              f"same sign convention: {same_sign}"]
    probe = [0, 70, 105, 130, 140, 150, 175, 210, 280]
    rows = [[f"{mu[i]:+.3f}", f"{wsxy[i]:+.6f}", f"{sxy[i]:+.6f}"] for i in probe]
    lines.append(format_table(["mu", "WB sxy [e2/h]", "qgt sxy [e2/h]"], rows))
    return "\n".join(lines)


def wannierberri_runs(args, tmp: Path) -> list[tuple[str, dict]]:
    """All WannierBerri timings requested (serial and ray, each FFT choice)."""
    runs = []
    modes = [0] + ([args.ray] if args.ray > 0 else [])
    for ray in modes:
        for nkfft in args.nkfft:
            label = ("serial" if ray == 0 else f"ray x{ray}") + (
                f", NKFFT {nkfft}" if nkfft else ", default NKFFT")
            run = run_wannierberri(args.venv, tmp, args.nk, ray, nkfft)
            runs.append((label, run))
            print(f"  done: {label}: {run['wall']:.2f} s ok={run['ok']}", flush=True)
    return runs


def main() -> None:
    """Install (optionally), time both codes, compare σ_xy, print the tables."""
    args = _parser().parse_args()
    if args.install:
        err = install(args.venv)
        print(f"install into {args.venv}: " + ("ok" if err is None else f"FAILED: {err}"))
    have_wb = (args.venv / "bin" / "python").exists()
    if not have_wb:
        print(f"WannierBerri venv {args.venv} missing: run with --install; WB part skipped")
    with tempfile.TemporaryDirectory(prefix="qgt-peer-") as tmpdir:
        tmp = Path(tmpdir)
        runs = [run_qgt_case(tmp, f"peer_timed{i}", args.nk, args.np, 10.0, 0.05)
                for i in range(args.repeat)]
        qgt = min(runs, key=lambda r: r["wall"])
        wb_runs = wannierberri_runs(args, tmp) if have_wb else []
        phys = run_qgt_case(tmp, "peer_physics", args.nk, args.np, 0.01, 0.0005)
    if "error" in qgt or "error" in phys:
        sys.exit(f"qgt_mpi run failed: {qgt.get('error') or phys.get('error')}")
    qgt["nprocs"] = args.np
    print("\n" + timing_table(wb_runs, qgt, args.nk))
    print("qgt_mpi: T = 10 K, delta = 0.05 meV; both codes timed as whole processes.\n")
    ok = [run for _, run in wb_runs if run["ok"]]
    print(physics_report(ok[0] if ok else None, phys))
    print("WB: T = 0, no broadening (Fermi sea); qgt_mpi: T = 0.01 K, delta = 0.0005 meV.")


if __name__ == "__main__":
    main()
