"""Full thermopower tensor of the paper's flat Chern band at fixed filling (issue 11 figure).

Why: the measured thermopower of a partly filled flat Chern band is the tensor σ⁻¹α, not the
diagonal ratio; this figure (``make figures``) and its numbers (docs/validation.md) show the
difference. A figure maker, not a benchmark.

Flattened Haldane model (t1 = 1, t2 = 0.3, M = 0, φ = π/2; two flat bands at ∓Δ/2,
Δ = 0.5 meV, C = ∓1), δ_1 = δ_2 = 0.01 meV, at fixed electron density: ν electrons per cell
in the two flat bands (ν = filling of the lower band at T → 0; the band group (0, 1) is held at
filling ν/2). For each ν, μ(ν, T) is solved per temperature (transport/filling.py); the
figure shows the measured S_xx = (σ⁻¹α)_xx, the paper's diagonal ratio
−L^(1)_xx/(eT L^(0)_xx) and the Nernst signal S_xy versus T, with (k_B/e) ln 2, 2 ln 2
and the entropy per carrier (k_B/e) s(ν)/ν.

Usage: python studies/thermopower_tensor.py [OUTDIR]  (default docs/figures/thermopower_tensor);
prints the numbers quoted in docs/validation.md. Serial, ~10 s.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from mpi4py import MPI

from qgt_mpi.constants import K_B_OVER_E_UV_PER_K
from qgt_mpi.kernels.hall_moments import entropy
from qgt_mpi.models import build_model
from qgt_mpi.plot.style import new_figure, save
from qgt_mpi.run.driver import compute

GAP, DELTA, GRID = 0.5, 0.01, 24
FILLINGS = np.array([0.25, 0.5, 0.75])
TEMPS = np.geomspace(0.02, 50.0, 161)
LN2 = K_B_OVER_E_UV_PER_K * math.log(2)


def run() -> dict[str, np.ndarray]:
    """Observables at fixed filling, arrays (n_ν, n_T)."""
    model = build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": math.pi / 2},
                        {"gap": GAP, "range": math.inf, "nfine": 48})
    _, out, _ = compute(MPI.COMM_SELF, model, (GRID, GRID), TEMPS, np.array([-GAP / 2]),
                        np.array([[DELTA, DELTA]]), filling=FILLINGS / 2, filling_bands=[0, 1])
    return {k: v[:, 0] for k, v in out.items() if v.ndim >= 3}


def crossings(t: np.ndarray, y: np.ndarray, level: float) -> list[float]:
    """Temperatures where y crosses level (log-linear interpolation)."""
    out = []
    for i in np.nonzero(np.diff(np.sign(y - level)))[0]:
        lt = np.log(t[i : i + 2])
        out.append(float(np.exp(np.interp(level, sorted(y[i : i + 2]),
                                          lt if y[i] < y[i + 1] else lt[::-1]))))
    return out


def report(res: dict[str, np.ndarray]) -> None:
    """Print the numbers of docs/validation.md (|S| in μV/K, T in K)."""
    for i, nu in enumerate(FILLINGS):
        sxx, paper = -res["seebeck_xx"][i], -res["seebeck"][i]
        k = int(np.argmax(sxx))
        plateau = K_B_OVER_E_UV_PER_K * entropy(nu) / nu
        print(f"nu={nu}: s(nu)/nu (k_B/e) = {plateau:.2f}; max -S_xx = {sxx[k]:.2f} at "
              f"T = {TEMPS[k]:.3g} K; -S_xx = ln2 at T = {crossings(TEMPS, sxx, LN2)}; "
              f"= 2ln2 at T = {crossings(TEMPS, sxx, 2 * LN2)}; max -S_paper = "
              f"{paper.max():.2f} at T = {TEMPS[np.argmax(paper)]:.3g} K; max |Nernst| = "
              f"{np.abs(res['seebeck_xy'][i]).max():.2f}")
        for t in (0.1, 0.5, 1.0, 2.0, 5.0, 20.0):
            j = int(np.argmin(np.abs(TEMPS - t)))
            print(f"   T={TEMPS[j]:.3g} K: -S_xx={sxx[j]:.2f} -S_paper={paper[j]:.2f} "
                  f"S_xy={res['seebeck_xy'][i, j]:.2f} sigma_xx={res['sigma_xx'][i, j]:.3e} "
                  f"sigma_xy={res['sigma_xy'][i, j]:.4f} mu={res['mu'][i, j]:.4f}")


def draw(res: dict[str, np.ndarray], outdir: str) -> list[str]:
    """Three panels: −S_xx (full tensor), the paper's diagonal ratio, the Nernst signal."""
    fig, ax = new_figure(3, 1, width=3.6, height=3.2)
    colors = ("tab:blue", "tab:orange", "tab:green")
    for i, nu in enumerate(FILLINGS):
        c = colors[i]
        ax[0, 0].semilogx(TEMPS, -res["seebeck_xx"][i], color=c, label=f"ν = {nu}")
        ax[0, 0].axhline(K_B_OVER_E_UV_PER_K * entropy(nu) / nu, color=c, ls=":", lw=1)
        ax[0, 1].semilogx(TEMPS, -res["seebeck"][i], color=c, label=f"ν = {nu}")
        ax[0, 2].semilogx(TEMPS, res["seebeck_xy"][i], color=c, label=f"ν = {nu}")
    for a in ax[0, :2]:
        a.axhline(LN2, color="k", ls="--", lw=0.8)
        a.axhline(2 * LN2, color="k", ls="-.", lw=0.8)
    ax[0, 0].set_ylabel(r"$-S_{xx} = -(\sigma^{-1}\alpha)_{xx}$ [μV/K]")
    ax[0, 1].set_ylabel(r"$-S_{\rm paper}$ [μV/K]")
    ax[0, 2].set_ylabel(r"Nernst $S_{xy}$ [μV/K]")
    ax[0, 0].set_title("full tensor; dotted: (k_B/e) s(ν)/ν", fontsize=8)
    ax[0, 1].set_title("paper Eq. 19; dashed: ln 2, dash-dot: 2 ln 2", fontsize=8)
    ax[0, 2].set_title("Nernst signal", fontsize=8)
    for a, loc in zip(ax[0], ("upper left", "lower right", "lower right"), strict=True):
        a.set_xlabel("T [K]")
        a.legend(loc=loc)
    fig.suptitle(f"flat Chern band, Δ = {GAP} meV, δ₁ = δ₂ = {DELTA} meV, fixed density "
                 "ν electrons per cell", fontsize=9)
    return save(fig, outdir, "thermopower_tensor")


if __name__ == "__main__":
    result = run()
    report(result)
    print(draw(result, sys.argv[1] if len(sys.argv) > 1 else "docs/figures/thermopower_tensor"))
