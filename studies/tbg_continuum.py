"""Continuum TBG (Bistritzer–MacDonald, theory §2.5): flat bands vs angle, and their transport.

Why: the Bistritzer–MacDonald flat bands are the paper's physical target; these tables and
figures (docs/validation.md) check the model against the known widths and gaps and show the
transport of its real quantum geometry. A physics study, not a benchmark.

Part A (issue 8 item 2): realistic coupling w0/w1 = 0.8, w1 = 110 meV, no sublattice mass;
flat-band width W (both flat bands together) and the gaps to the remote bands on a 24×24
moiré grid, for θ = 1.00°…1.20°, at 3 and 5 plane-wave shells (convergence).
Part B (issue 8 item 4): the flat bands at 1.05° with an hBN-like sublattice mass of 10 meV
(C = ±1 per valley) through the windowed engine: σ_xx (Drude + geometric), σ_xy of one valley,
Seebeck vs μ; and the same two bands made exactly flat with their eigenvectors kept
(solver.flatten), i.e. the paper's model with TBG's real quantum geometry.
Writes docs/figures/tbg/*.png and prints markdown tables. Run:
    .venv/bin/python studies/tbg_continuum.py        (about a minute)
"""

from __future__ import annotations

import qgt_mpi  # noqa: F401  (environment before numpy/petsc4py)

# isort: split
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from mpi4py import MPI

from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers.flat import FlatBands
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "tbg"
ANGLES = np.round(np.arange(1.00, 1.2001, 0.01), 2)


def flat_band_stats(theta: float, shells: int, grid: int = 24) -> tuple[float, float, float]:
    """(W, gap below, gap above) [meV] of the two flat bands of valley +1."""
    model = bm_continuum(theta=theta, w0=88.0, w1=110.0, shells=shells)
    k = kgrid_points(model.reciprocal, grid, grid, 0, grid * grid)
    mid = model.norb // 2
    e = np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])[:, mid - 2 : mid + 2]
    width = e[:, 1:3].max() - e[:, 1:3].min()
    return width, e[:, 1].min() - e[:, 0].max(), e[:, 3].min() - e[:, 2].max()


def part_a() -> None:
    rows = {s: np.array([flat_band_stats(t, s) for t in ANGLES]) for s in (3, 5)}
    print("| θ [°] | W [meV] (3 shells) | W (5 shells) | gap below (5) | gap above (5) |")
    print("|---|---|---|---|---|")
    for i, t in enumerate(ANGLES):
        a, b = rows[3][i], rows[5][i]
        print(f"| {t:.2f} | {a[0]:.3f} | {b[0]:.3f} | {b[1]:.2f} | {b[2]:.2f} |")
    fig, ax = plt.subplots(figsize=(3.4, 2.6), constrained_layout=True)
    agree = np.max(np.abs(rows[5][:, 0] - rows[3][:, 0])) * 1e3
    ax.plot(ANGLES, rows[5][:, 0], "o-", ms=3, color="C0",
            label=f"flat-band width W (3 vs 5 shells: {agree:.0f} μeV)")
    ax.plot(ANGLES, np.minimum(rows[5][:, 1], rows[5][:, 2]), "s-", ms=3, color="C3",
            label="gap to remote bands")
    ax.set_xlabel("twist angle θ (°)")
    ax.set_ylabel("energy (meV)")
    ax.legend(fontsize=7, frameon=False)
    fig.savefig(OUT / "bm_width_gap_vs_angle.png", dpi=300)
    plt.close(fig)


def part_b() -> None:
    model = bm_continuum(theta=1.05, w0=88.0, w1=110.0, shells=3, mass=10.0)
    temps, delta = np.array([2.0, 5.0, 10.0]), 0.1
    window = {"delta_out": np.array([delta]), "chern_below": 0}
    opts = WindowOptions(nev=2, target=0.0)
    mu = np.linspace(-5.0, 5.0, 101)  # inside the window bands (far-off limit valid)
    runs = {}
    tr, geo = compute(MPI.COMM_SELF, model, (18, 18), temps, mu, np.full((1, 2), delta), 4.0,
                      solver=SlepcSolver(opts, MPI.COMM_SELF), window=window)[1:]
    runs["dispersive"] = tr
    centres = 0.5 * (geo["band_min"] + geo["band_max"])
    flat = FlatBands(SlepcSolver(opts, MPI.COMM_SELF), centres)
    runs["flattened"] = compute(MPI.COMM_SELF, model, (18, 18), temps, mu,
                                np.full((1, 2), delta), 4.0, solver=flat, window=window)[1]
    print(f"\nflat bands at 1.05°, mass 10 meV: C = {geo['chern_groups'][:2].tolist()}, "
          f"extent {np.round(geo['band_min'], 3).tolist()} .. "
          f"{np.round(geo['band_max'], 3).tolist()} meV; flattened to {np.round(centres, 3)}")
    print("| run | T [K] | max |S| [μV/K] | at μ [meV] | σ_xx at that μ [e²/h] | Drude share |")
    print("|---|---|---|---|---|---|")
    for name, r in runs.items():
        for i, t in enumerate(temps):
            s = r["seebeck"][:, 0, i]
            j = int(np.nanargmax(np.abs(s)))
            share = r["sigma_xx_drude"][j, 0, i] / r["sigma_xx"][j, 0, i]
            print(f"| {name} | {t:g} | {abs(s[j]):.1f} | {mu[j]:.2f} | "
                  f"{r['sigma_xx'][j, 0, i]:.4g} | {share:.3f} |")
    _figure_b(mu, temps, runs, geo)
    _seebeck_vs_temperature(model, opts, window, geo, centres)


def _seebeck_vs_temperature(model, opts, window, geo, centres) -> None:
    """S(T) with μ on the lower flat band (its centre), dispersive and flattened (paper Fig. 3c).

    Four flavours (spin × valley) multiply σ and α alike, so S does not depend on them.
    """
    temps, delta = np.geomspace(0.5, 80.0, 40), 0.1
    mu = np.array([centres[0]])
    out = {}
    for name, solver in (("dispersive", SlepcSolver(opts, MPI.COMM_SELF)),
                         ("flattened", FlatBands(SlepcSolver(opts, MPI.COMM_SELF), centres))):
        out[name] = compute(MPI.COMM_SELF, model, (18, 18), temps, mu, np.full((1, 2), delta),
                            4.0, solver=solver, window=window)[1]["seebeck"][0, 0]
    gap = centres[1] - centres[0]
    print(f"\nS(T) at mu = {centres[0]:.3f} meV (lower flat band centre); flattened gap "
          f"Delta = {gap:.3f} meV, Delta/2k_B = {gap / 2 / 0.08617333:.1f} K")
    print("| run | max |S| [μV/K] | T* [K] | S at 5 K | S at 20 K |")
    print("|---|---|---|---|---|")
    for name, s in out.items():
        j = int(np.argmax(np.abs(s)))
        at = [float(np.interp(t, temps, s)) for t in (5.0, 20.0)]
        print(f"| {name} | {abs(s[j]):.1f} | {temps[j]:.1f} | {at[0]:.1f} | {at[1]:.1f} |")
    fig, ax = plt.subplots(figsize=(3.4, 2.6), constrained_layout=True)
    for (name, s), style in zip(out.items(), ("-", "--"), strict=True):
        ax.semilogx(temps, s, style, color="C0", label=name)
    ax.axhline(-86.17 * np.log(2), color="k", lw=0.6, ls=":", label="-(k_B/e) ln 2")
    ax.set_xlabel("temperature T (K)")
    ax.set_ylabel("Seebeck S (μV/K)")
    ax.set_ylim(-70.0, 20.0)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    fig.savefig(OUT / "bm_seebeck_vs_temperature.png", dpi=300)
    plt.close(fig)


def _figure_b(mu, temps, runs, geo) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.6), constrained_layout=True)
    styles = {"dispersive": "-", "flattened": "--"}
    for name, r in runs.items():
        for i, t in enumerate(temps):
            axes[0].plot(mu, r["seebeck"][:, 0, i], styles[name], color=f"C{i}", lw=1,
                         label=f"{name}, {t:g} K")
            axes[1].semilogy(mu, r["sigma_xx"][:, 0, i], styles[name], color=f"C{i}", lw=1)
    for ax in axes:
        for e in (*geo["band_min"], *geo["band_max"]):
            ax.axvline(e, color="0.7", lw=0.5)
        ax.set_xlabel("chemical potential μ (meV)")
    axes[0].axhline(86.17 * np.log(2), color="k", lw=0.6, ls=":")
    axes[0].axhline(-86.17 * np.log(2), color="k", lw=0.6, ls=":")
    axes[0].set_ylabel("Seebeck S (μV/K)")
    axes[1].set_ylabel("σ_xx (e²/h, 4 flavours)")
    axes[0].legend(fontsize=6, frameon=False, ncol=2)
    fig.savefig(OUT / "bm_flat_band_transport.png", dpi=300)
    plt.close(fig)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    part_a() if "--transport-only" not in sys.argv else None
    part_b()
