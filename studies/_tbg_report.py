"""Tables and figures of studies/tbg_transport.py (TBG transport versus filling)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _tbg_combine import KB_OVER_E_UV, sign_changes

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "tbg"
LN2 = KB_OVER_E_UV * np.log(2.0)
I_DELTA = 1  # δ = 0.2 meV in the figures and the main table
ROWS = {"continuum": [("bm_m0", None), ("bm_m10", "bm_m10_flat")],
        "atomistic": [("atom", "atom_flat")]}
LABELS = {"bm_m0": "BM 1.05°, no mass", "bm_m10": "BM 1.05°, mass 10 meV",
          "bm_m10_flat": "same, flattened", "atom": "atomistic m = 27 (1.203°)",
          "atom_flat": "same, flattened",
          "atom_m35_relaxed": "atomistic m = 35 relaxed (0.932°)"}


def heikes(nu: np.ndarray, states: int) -> np.ndarray:
    """Entropy (Heikes) thermopower [μV/K] of ``states`` degenerate levels per cell.

    states = 8: all flat bands as one level, −(k_B/e) ln((4 − ν)/(4 + ν)) (k_BT ≫ W).
    states = 4: two levels (lower and upper flat band, 4 flavours each) with δ ≪ k_BT ≪ Δ:
    the partly filled level has filling f = (ν + 4)/4 (ν < 0) or ν/4 (ν > 0).
    """
    if states == 8:
        f = (nu + 4.0) / 8.0
    else:
        f = np.where(nu < 0, (nu + 4.0) / 4.0, nu / 4.0)
    with np.errstate(divide="ignore"):
        return -KB_OVER_E_UV * np.log((1.0 - f) / f)


def _at(nu: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(nu - value)))


def table(part: str, nu, temps, deltas, cases: dict) -> None:
    """Print the markdown tables of one part (δ = 0.2 meV, then the δ dependence at 10 K)."""
    picks = [_at(nu, v) for v in (-3.0, -2.0, -1.0, 1.0, 2.0, 3.0)]
    print(f"\n{part}: δ = {deltas[I_DELTA]} meV; σ in e²/h with all flavours, S in μV/K")
    print("| case | T [K] | σ_xx (ν = −2) | geometric share | L/L_0 (ν = −2) | max \\|σ_xy\\|, "
          "\\|S_xy\\| | max \\|S_xx\\| (at ν) | S_xx at ν = −3, −2, −1, +1, +2, +3 | "
          "S = 0 at ν |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c in cases.items():
        for i, t in enumerate(temps):
            s = c["seebeck_xx"][:, I_DELTA, i]
            j = int(np.nanargmax(np.abs(s)))
            sxx = c["sigma_xx"][:, I_DELTA, i]
            geo = c["sigma_xx_geometric"][picks[1], I_DELTA, i] / sxx[picks[1]]
            zeros = ", ".join(f"{z:+.2f}" for z in sign_changes(nu, s))
            lorenz = c["kappa_xx_full"][picks[1], I_DELTA, i] / sxx[picks[1]]
            xy = [np.max(np.abs(c[k][:, I_DELTA, i])) for k in ("sigma_xy", "seebeck_xy")]
            print(f"| {name} | {t:g} | {sxx[picks[1]]:.3g} | {geo:.3f} | {lorenz:.3f} | "
                  f"{xy[0]:.0e}, {xy[1]:.0e} | {abs(s[j]):.1f} "
                  f"({nu[j]:+.1f}) | {', '.join(f'{s[p]:.1f}' for p in picks)} | {zeros} |")
    print("\n| case | δ [meV] | σ_xx (ν = −2, 10 K) | max \\|S_xx\\| at 10 K (at ν) | "
          "S_xx (ν = −2, 10 K) |")
    print("|---|---|---|---|---|")
    i_t = list(temps).index(10.0)
    for name, c in cases.items():
        for d, delta in enumerate(deltas):
            s = c["seebeck_xx"][:, d, i_t]
            j = int(np.nanargmax(np.abs(s)))
            print(f"| {name} | {delta:g} | {c['sigma_xx'][picks[1], d, i_t]:.3g} | "
                  f"{abs(s[j]):.1f} ({nu[j]:+.1f}) | {s[picks[1]]:.1f} |")


def figure(part: str, nu, temps, cases: dict, suffix: str = "") -> None:
    """σ_xx (total and geometric) and S_xx versus ν; solid dispersive, dashed flattened.

    Written to docs/figures/tbg/tbg_transport_<part><suffix>.png.
    """
    rows = ROWS[part]
    if part == "atomistic":  # any cell of studies/tbg_transport.py --m/--relax
        rows = [(n, n + "_flat") for n in cases if not n.endswith("_flat")]
    i5 = list(temps).index(5.0) if 5.0 in temps else 0
    fig, axes = plt.subplots(len(rows), 2, figsize=(7.0, 2.7 * len(rows)),
                             constrained_layout=True, squeeze=False)
    for (disp, flat), (ax_s, ax_t) in zip(rows, axes, strict=True):
        for name, style in ((disp, "-"), (flat, "--")):
            if name is None:
                continue
            c = cases[name]
            for i, t in enumerate(temps):
                lab = f"{t:g} K" if name == disp else None
                ax_s.semilogy(nu, c["sigma_xx"][:, I_DELTA, i], style, color=f"C{i}", lw=1,
                              label=lab)
                ax_t.plot(nu, c["seebeck_xx"][:, I_DELTA, i], style, color=f"C{i}", lw=1)
            kind = "flat" if name == flat else "disp."
            ax_s.semilogy(nu, c["sigma_xx_geometric"][:, I_DELTA, i5], ":", color="k",
                          lw=0.8, label=f"geometric part, {temps[i5]:g} K ({kind})")
        for v, ls in ((LN2, ":"), (KB_OVER_E_UV, "-.")):
            for sgn in (1, -1):
                ax_t.axhline(sgn * v, color="0.4", lw=0.6, ls=ls)
        ax_t.plot(nu, heikes(nu, 8), color="0.5", lw=2.5, alpha=0.4,
                  label="k_BT ≫ W: −(k_B/e) ln((4−ν)/(4+ν))")
        if flat is not None and part == "continuum":  # two levels Δ ≫ δ apart
            ax_t.plot(nu, heikes(nu, 4), color="k", lw=0.7, alpha=0.6,
                      label="one flat level: −(k_B/e) ln((1−f)/f)")
        ax_t.legend(fontsize=6, frameon=False, loc="upper left")
        title = LABELS.get(disp, disp) + ("" if flat is None else "; dashed: flattened")
        ax_s.set_title(title, fontsize=8)
        ax_t.set_title("S_xx; dotted ±(k_B/e) ln 2, dash-dot ±k_B/e", fontsize=8)
        ax_s.set_ylabel("σ_xx (e²/h, all flavours)")
        ax_t.set_ylabel("Seebeck S_xx (μV/K)")
        ax_t.set_ylim(-200, 200)
        ax_s.legend(fontsize=6, frameon=False, ncol=2)
        for ax in (ax_s, ax_t):
            ax.set_xlabel("ν (electrons per moiré cell)")
            ax.set_xticks(range(-4, 5))
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / f"tbg_transport_{part}{suffix}.png", dpi=200)
    plt.close(fig)
