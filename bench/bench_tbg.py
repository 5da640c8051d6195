"""Twisted bilayer graphene model builders: magic α, trace condition, convergence, build cost.

Part ``magic`` (issue 8, item 1): the first chiral magic α of the BM continuum model
(w0 = 0, theory §2.5) by minimising the flat-band width ε_max of the upper flat band over an
N×N moiré grid (bounded scalar minimisation, dense solver), then the trace condition of the
sublattice-polarised flat bands at α* and away from it. A sublattice mass m makes the chiral
zero modes (σz = ±1) exact eigenstates at ±m/2, so the ordinary per-band geometry
(geometry/bands.py) gives their metric and curvature: C, ∫Tr g d²k/2π and
max_k |Tr g − |Ω|| / <|Ω|> (theory §5).

Part ``shells``: flat-band energies of the realistic model (w0/w1 = 0.8, w1 = 110 meV,
1.05°) at Γ, K, M and a generic point versus the plane-wave cutoff, against 7 shells.

Part ``angles`` (issue 8, item 2): the realistic model's flat-band width (both flat bands, a
12×12 grid plus K) and the gaps to the remote bands for θ = 1.00°…1.20°, 4 shells.

Part ``atomistic``: build time of the (m, 1) commensurate cell (theory §2.6) for several m, the
time of one ``values(k)`` and (``--neutrality``) of the charge-neutrality search at m = 31.

Part ``relaxed`` (issue 19): the continuum relaxation of the (m, 1) cell (theory §2.6a) at
m = 31 and 60, reading and building m = 31 from a POSCAR written by ``write_structure`` (kind
``atomistic``, charge-neutrality search included), and one shift-and-invert window solve
(MUMPS, 12 eigenvalues nearest E_CN at K) of the rigid and the relaxed m = 31 cell: the
relaxed cell's cost per k-point relative to the rigid one.

Why: the first three parts validate the continuum model (docs/validation.md quotes them; the
magic α of tests/test_bm_continuum.py comes from ``magic``); ``atomistic`` measures the cost
of building the largest models, which every atomistic run pays once (docs/performance.md §7).

Suite presets (bench/run.py, parts ``atomistic`` and ``relaxed``): ``quick`` = m = 5, 10, 20,
31, 2 repetitions; ``full`` = the same, 3 repetitions, and the charge-neutrality search at
m = 31; both run ``relaxed``.

Usage::

    .venv/bin/python bench/bench_tbg.py [magic] [shells] [angles] [atomistic] [--neutrality]
                                        [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import add_suite_options, case_record, format_table, write_record
from scipy.optimize import minimize_scalar

from qgt_mpi.geometry.bands import band_geometry
from qgt_mpi.models.bm_continuum import BMContinuum
from qgt_mpi.models.tbg_atomistic import neutrality_energy, tbg_atomistic
from qgt_mpi.solvers import DenseSolver


def table(header: list[str], rows: list[list[object]]) -> None:
    print(format_table(header, [[str(c) for c in row] for row in rows]), flush=True)


def grid(model: BMContinuum, n: int) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij")
    return np.column_stack([i.ravel(), j.ravel()]) @ model.b


def width(alpha: float, shells: int, n: int) -> float:
    """Upper chiral flat band's maximum over the grid in units of ħv k_θ (≥ 0 by symmetry)."""
    model = BMContinuum(alpha=alpha, w0=0.0, w1=110.0, shells=shells)
    e = np.linalg.eigvalsh(model.hamiltonian(grid(model, n), derivatives=False)[0])
    return float(e[:, model.norb // 2].max() / (model.hbar_v * model.k_theta))


def magic(shells: int, n: int) -> None:
    rows = []
    for s in (shells - 1, shells):
        t0 = time.perf_counter()
        res = minimize_scalar(width, bounds=(0.57, 0.60), args=(s, n), method="bounded",
                              options={"xatol": 1e-9})
        rows.append([s, n, f"{res.x:.8f}", f"{res.fun:.2e}", f"{time.perf_counter() - t0:.1f}"])
    table(["shells", "grid", "alpha*", "width/(hv k)", "time [s]"], rows)
    alpha_star = float(res.x)
    rows = []
    for alpha in (alpha_star, alpha_star - 0.005, 0.57, 0.55, 0.50):
        model = BMContinuum(alpha=alpha, w0=0.0, w1=110.0, shells=4, mass=10.0)
        eig = DenseSolver().solve(model, grid(model, 12))
        curvature, metric = band_geometry(eig)
        band = model.norb // 2
        area = abs(np.linalg.det(model.b)) / 144
        trace, omega = metric[:, band, 0] + metric[:, band, 1], curvature[:, band]
        viol = np.abs(trace - np.abs(omega)).max() / np.abs(omega).mean()
        rows.append([f"{alpha:.7f}", f"{omega.sum() * area / (2 * np.pi):+.6f}",
                     f"{trace.sum() * area / (2 * np.pi):.6f}", f"{viol:.2e}"])
    table(["alpha", "C (sum Omega dA/2pi)", "int Tr g/2pi", "violation"], rows)


def shells_table() -> None:
    pts = {"Gamma": (0.0, 0.0), "K": (1 / 3, 1 / 3), "M": (0.5, 0.5), "generic": (0.1, 0.2)}
    energies = {}
    for s in (2, 3, 4, 5, 7):
        model = BMContinuum(theta=1.05, w0=88.0, w1=110.0, shells=s)
        k = np.array(list(pts.values())) @ model.b
        e = np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])
        energies[s] = (model.norb, e[:, model.norb // 2 - 1:model.norb // 2 + 1])
    ref = energies[7][1]
    rows = [[s, norb, *[f"{np.abs(e - ref)[i].max():.1e}" for i in range(len(pts))]]
            for s, (norb, e) in energies.items() if s != 7]
    table(["shells", "norb", *[f"|de| {p} [meV]" for p in pts]], rows)


def angles(shells: int, n: int) -> None:
    """Realistic model (w0/w1 = 0.8): flat-band width and gaps to the remote bands vs θ."""
    rows = []
    for theta in np.round(np.arange(1.00, 1.2001, 0.02), 2):
        model = BMContinuum(theta=float(theta), w0=88.0, w1=110.0, shells=shells)
        k = np.concatenate([grid(model, n), [model.high_symmetry_points()["K"]]])
        e = np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])
        h = model.norb // 2
        flat = e[:, h - 1:h + 1]
        rows.append([f"{theta:.2f}", f"{model.alpha:.4f}", f"{np.ptp(flat):.3f}",
                     f"{e[:, h + 1].min() - flat.max():.2f}",
                     f"{flat.min() - e[:, h - 2].max():.2f}"])
    table(["theta [deg]", "alpha", "W flat [meV]", "gap above [meV]", "gap below [meV]"], rows)


def atomistic(neutrality: bool, ms: tuple[int, ...] = (5, 10, 20, 31), repeat: int = 1,
              records: list[dict] | None = None) -> None:
    """Build time and one ``values(k)`` of the (m, 1) cells; optionally E_CN at the last m."""
    rows = []
    for m in ms:
        builds, fills = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            model = tbg_atomistic(m)
            builds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.values(model.dirac_point())
            fills.append(time.perf_counter() - t0)
        rows.append([m, f"{model.theta:.4f}", model.norb, model.t.size,
                     f"{model.t.size / model.norb:.1f}", f"{min(builds):.2f}",
                     f"{min(fills):.3f}"])
        if records is not None:
            records.append(case_record(
                f"m={m}", {"m": m, "theta_deg": model.theta, "norb": model.norb,
                           "bonds": int(model.t.size)}, builds,
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                values_s=fills, values_min_s=min(fills),
                bonds_per_orbital=model.t.size / model.norb))
    table(["m", "theta [deg]", "N", "bonds", "bonds/N", "build [s]",
                        "values(k) [s]"], rows)
    if neutrality:
        t0 = time.perf_counter()
        e_cn = neutrality_energy(model)
        seconds = time.perf_counter() - t0
        print(f"m = {ms[-1]}: E_CN = {e_cn:.4f} meV (shift-invert eigsh, {seconds:.1f} s)")
        if records is not None:
            records.append(case_record(f"neutrality m={ms[-1]}", {"m": ms[-1]}, [seconds],
                                       e_cn_meV=e_cn))


SUITE = {"quick": {"ms": (5, 10, 20, 31), "repeat": 2, "neutrality": False},
         "full": {"ms": (5, 10, 20, 31), "repeat": 3, "neutrality": True}}


def relaxed(repeat: int, records: list[dict] | None = None) -> None:
    """Relaxation time (m = 31, 60), m = 31 from a structure file, window solve rigid/relaxed."""
    import os
    import tempfile

    from qgt_mpi.models import build_model
    from qgt_mpi.models.relax import relax_twisted_bilayer
    from qgt_mpi.models.structure import write_structure
    from qgt_mpi.models.tbg_atomistic import nearest_eigenvalues, rigid_cell

    rows = []
    for m in (31, 60):
        lattice, _, _, theta = rigid_cell(m, 0.246, 0.335)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = relax_twisted_bilayer(lattice, 0.246, theta)
            times.append(time.perf_counter() - t0)
        rows.append([f"relax m = {m}", f"{min(times):.3f}",
                     f"grid {result.grid}, {result.iterations} Newton steps, max |u| "
                     f"{result.max_displacement():.4f} nm"])
        if records is not None:
            records.append(case_record(f"relax m={m}", {"m": m, "grid": result.grid}, times,
                                       max_displacement_nm=result.max_displacement(),
                                       iterations=result.iterations))
    relaxed_model = build_model("tbg_atomistic", {"m": 31, "relax": {"method": "continuum"}})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "POSCAR")
        write_structure(path, relaxed_model.lattice,
                        np.column_stack([relaxed_model.positions, relaxed_model.z]))
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            build_model("atomistic", {"structure": path})
            times.append(time.perf_counter() - t0)
    rows.append(["read + build m = 31 (POSCAR, neutrality)", f"{min(times):.2f}", ""])
    if records is not None:
        records.append(case_record("file m=31", {"m": 31}, times))
    rigid_model = build_model("tbg_atomistic", {"m": 31})
    solve = {}
    for name, model in (("rigid", rigid_model), ("relaxed", relaxed_model)):
        h = model.csr(model.high_symmetry_points()["K"])[0]
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            nearest_eigenvalues(h, 0.0, 12)
            times.append(time.perf_counter() - t0)
        solve[name] = min(times)
        rows.append([f"window solve at K, {name} m = 31", f"{min(times):.2f}",
                     f"nnz {h.nnz:,}"])
        if records is not None:
            records.append(case_record(f"solve {name} m=31", {"m": 31, "cell": name}, times,
                                       nnz=int(h.nnz)))
    rows.append(["relaxed / rigid", f"{solve['relaxed'] / solve['rigid']:.2f}", ""])
    table(["case", "time [s]", "note"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*",
                        default=["magic", "shells", "angles", "atomistic", "relaxed"])
    parser.add_argument("--shells", type=int, default=5)
    parser.add_argument("--grid", type=int, default=6)
    parser.add_argument("--neutrality", action="store_true")
    add_suite_options(parser)
    args = parser.parse_args()
    if args.suite:
        preset = SUITE[args.suite]
        records: list[dict] = []
        atomistic(preset["neutrality"], preset["ms"], preset["repeat"], records)
        relaxed(preset["repeat"], records)
        write_record(args.json, "tbg_build", args.suite, dict(preset), records)
        return
    if "magic" in args.parts:
        magic(args.shells, args.grid)
    if "shells" in args.parts:
        shells_table()
    if "angles" in args.parts:
        angles(4, 12)
    if "atomistic" in args.parts:
        atomistic(args.neutrality)
    if "relaxed" in args.parts:
        relaxed(2)


if __name__ == "__main__":
    main()
