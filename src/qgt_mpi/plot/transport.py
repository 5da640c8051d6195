"""Conductivity figures: the paper's Fig. 2 (σ_xx vs δ, vs T, 1/σ_xx slopes) and σ_xy vs μ.

Each ``plot_*`` function takes the :class:`~qgt_mpi.plot.style.Transport` of a result file
and an output directory, draws only what the sweep supports, and returns the written paths.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.plot.style import (
    COLOURS,
    Transport,
    delta_label,
    fit_line,
    legend_below,
    new_figure,
    save,
    skip,
    spread,
)

# 1/σ_xx fit windows in units of Δ/k_B: low T (δ ≪ k_BT ≪ Δ) and high T (k_BT ≫ Δ).
LOW_WINDOW = (0.05, 0.2)
HIGH_WINDOW = (2.0, np.inf)
SIGMA_LABEL = r"$\sigma_{xx}$  [$e^2/h$]"


def plot_sigma_vs_delta(tr: Transport, outdir: str) -> list[str]:
    """Paper Fig. 2(b): σ_xx vs δ (δ_1 = δ_2) at T ≈ Δ/k_B, log–log, with a σ ∝ δ guide."""
    it, idx = tr.gap_temperature(), tr.equal_delta()
    if it is None or idx.size < 3:
        return skip("sigma_xx_vs_delta", tr.why_not_at_gap(it, idx))
    fig, axes = new_figure()
    ax = axes[0, 0]
    d = tr.delta[idx, 0]
    for im in tr.mu_subset():
        mu = tr.mu[im]
        ax.loglog(d, tr.data["sigma_xx"][im, idx, it], marker="o", ms=3, label=tr.mu_text(mu))
    ref = tr.data["sigma_xx"][0, idx, it]
    ax.loglog(d, ref[0] * d / d[0], color="0.4", ls=(0, (1, 3)), lw=1, label=r"$\propto\delta$")
    ax.set_xlabel(r"broadening $\delta = \delta_1 = \delta_2$  [meV]")
    ax.set_ylabel(SIGMA_LABEL)
    ax.set_title(rf"$T$ = {tr.temperature[it]:.3g} K $\approx \Delta/k_B$, "
                 rf"$\Delta$ = {tr.gap:.3g} meV")
    ax.legend()
    return save(fig, outdir, "sigma_xx_vs_delta")


def plot_sigma_vs_temperature(tr: Transport, outdir: str) -> list[str]:
    """Paper Fig. 2(c): σ_xx vs T (log–log); total, Drude and geometric parts separately."""
    if tr.temperature.size < 6:
        return skip("sigma_xx_vs_temperature", tr.why_few("temperature", 6))
    idel = tr.reference_delta()
    fig, axes = new_figure(height=2.6, legend_row=0.6)
    ax = axes[0, 0]
    notes = []
    for k, im in enumerate(tr.mu_subset()):
        mu = tr.mu[im]
        parts = {k: tr.data[k][im, idel] for k in ("sigma_xx", "sigma_xx_geometric",
                                                    "sigma_xx_drude")}
        line, = ax.loglog(tr.temperature, parts["sigma_xx"], color=COLOURS[k % len(COLOURS)],
                          ls="-", label=tr.mu_text(mu) + ": total")
        ax.loglog(tr.temperature, parts["sigma_xx_geometric"], color=line.get_color(),
                  ls="--", marker="", label="  geometric (interband)")
        drude = np.abs(parts["sigma_xx_drude"])
        if drude.max() > 1e-10 * np.abs(parts["sigma_xx"]).max():
            ax.loglog(tr.temperature, drude, color=line.get_color(), ls=":",
                      label="  Drude (intraband)")
        else:
            notes.append(f"{mu:+.3g}: {drude.max():.1e}")
    _gap_marker(ax, tr)
    note = ("Drude part < 1e-10 of the total (flat bands), not drawn" if notes else None)
    ax.set_xlabel(r"temperature $T$  [K]")
    ax.set_ylabel(SIGMA_LABEL)
    ax.set_title(delta_label(tr.delta[idel]) + r";  dotted: $T = \Delta/k_B$"
                 if tr.gap else delta_label(tr.delta[idel]))
    legend_below(fig, ax, ncols=2, title=note)
    return save(fig, outdir, "sigma_xx_vs_temperature")


def _gap_marker(ax, tr: Transport) -> None:
    """Vertical dotted line at T = Δ/k_B (flattened models)."""
    if tr.gap is not None:
        ax.axvline(tr.gap / K_B_MEV_PER_K, color="0.5", ls=":", lw=1)


def inverse_sigma_fits(tr: Transport, im: int, idel: int) -> dict[str, tuple]:
    """Straight-line fits of 1/σ_xx(T) in the low- and high-T windows.

    Returns {"low"/"high": (slope [h/e² per K], intercept [h/e²], mask)} for the windows
    that hold at least 3 temperatures (windows in units of Δ/k_B: LOW_WINDOW, HIGH_WINDOW).
    """
    if tr.gap is None:
        raise ValueError("fit windows need a flattened model's gap")
    t_gap = tr.gap / K_B_MEV_PER_K
    inv = 1.0 / tr.data["sigma_xx"][im, idel]
    fits = {}
    for name, (lo, hi) in (("low", LOW_WINDOW), ("high", HIGH_WINDOW)):
        mask = (tr.temperature >= lo * t_gap) & (tr.temperature <= hi * t_gap)
        if mask.sum() >= 3:
            fits[name] = (*fit_line(tr.temperature[mask], inv[mask]), mask)
    return fits


def plot_inverse_sigma(tr: Transport, outdir: str) -> list[str]:
    """Paper Fig. 2(d, e): 1/σ_xx vs T at low and at high T with the fitted slopes printed."""
    name = "inverse_sigma_xx_slopes"
    if tr.gap is None:
        return skip(name, "the model is not flattened (no gap Δ for the fit windows)")
    if tr.temperature.size < 6:
        return skip(name, tr.why_few("temperature", 6))
    im, idel = tr.mu_index(-0.5 * tr.gap), tr.reference_delta()
    fits = inverse_sigma_fits(tr, im, idel)
    if not fits:
        return skip(name, f"fewer than 3 temperatures in both fit windows, T/(Δ/k_B) in "
                    f"{LOW_WINDOW} and {HIGH_WINDOW}")
    fig, axes = new_figure(ncols=len(fits), height=2.6)
    inv = 1.0 / tr.data["sigma_xx"][im, idel]
    for ax, (name, (slope, icpt, mask)) in zip(axes[0], fits.items(), strict=True):
        t = tr.temperature[mask]
        ax.plot(t, inv[mask], "o", ls="none", ms=3, label="computed")
        ax.plot(t, slope * t + icpt, color="k", ls="-", lw=1, label="linear fit")
        ax.text(0.05, 0.95, f"slope = {slope:.4g} (h/e²)/K\nintercept = {icpt:.3g} h/e²",
                transform=ax.transAxes, va="top", fontsize=7)
        regime = r"$T \ll \Delta/k_B$" if name == "low" else r"$T \gg \Delta/k_B$"
        ax.set_title(f"{name} T ({regime})")
        ax.set_xlabel(r"temperature $T$  [K]")
        ax.set_ylabel(r"$1/\sigma_{xx}$  [$h/e^2$]")
        ax.legend(loc="lower right")
    if len(fits) == 2:
        ratio = fits["low"][0] / fits["high"][0]
        fig.suptitle(f"{tr.mu_text(tr.mu[im])}, {delta_label(tr.delta[idel])}; "
                     f"slope ratio low/high = {ratio:.3g}")
    return save(fig, outdir, "inverse_sigma_xx_slopes")


def plot_hall_vs_mu(tr: Transport, outdir: str) -> list[str]:
    """σ_xy vs μ across the bands and the gap, each T (smallest δ) and each δ (lowest T)."""
    if tr.mu.size < 8:
        return skip(f"sigma_xy_vs_{tr.axis_name('mu')}", tr.why_few("mu", 8))
    sxy = tr.data["sigma_xy"]
    id0 = int(np.argmin(tr.delta.max(axis=1)))
    fig, axes = new_figure(height=2.6, legend_row=0.45)
    ax = axes[0, 0]
    for it in spread(tr.temperature.size, 4):
        t = tr.temperature[it]
        ax.plot(tr.mu, sxy[:, id0, it], label=f"$T$ = {t:.3g} K, " + delta_label(tr.delta[id0]))
    for idel in spread(tr.delta.shape[0], 4):
        if idel != id0:
            ax.plot(tr.mu, sxy[:, idel, 0],
                    label=f"$T$ = {tr.temperature[0]:.3g} K, " + delta_label(tr.delta[idel]))
    note = _mark_plateau(ax, tr)
    ax.set_xlabel(tr.mu_axis_label)
    ax.set_ylabel(r"$\sigma_{xy}$  [$e^2/h$]")
    legend_below(fig, ax, ncols=1, title=note)
    return save(fig, outdir, f"sigma_xy_vs_{tr.axis_name('mu')}")


def hall_plateau(tr: Transport) -> tuple[float, float] | None:
    """TKNN value −Σ_{n below gap} C_n and the computed σ_xy at mid-gap (lowest T, δ)."""
    if tr.gap is None or tr.chern.size != 2:
        return None
    id0 = int(np.argmin(tr.delta.max(axis=1)))
    im = tr.mu_index(0.0)
    return float(-tr.chern[0]), float(tr.data["sigma_xy"][im, id0, 0])


def _mark_plateau(ax, tr: Transport) -> str | None:
    """Shade the flat-band energies, draw the quantized plateau; return its legend note."""
    note = None
    if tr.gap is None:
        return note
    for e in (-0.5 * tr.gap, 0.5 * tr.gap):
        ax.axvline(e, color="0.6", lw=4, alpha=0.3)
    plateau = hall_plateau(tr)
    if plateau is not None:
        tknn, value = plateau
        ax.axhline(tknn, color="0.3", ls=(0, (1, 2)), lw=1)
        note = (f"dotted: TKNN plateau $-C_1$ = {tknn:+.0f} $e^2/h$\n"
                f"(computed at mid-gap: {value:.6f})")
    top = 1.35 * max(ax.get_ylim()[1], 1.0)
    ax.set_ylim(top=top)
    for e, name in ((-0.5 * tr.gap, "band 1"), (0.5 * tr.gap, "band 2")):
        ax.text(e, top, name + " ", va="top", ha="right", rotation=90, fontsize=7)
    return note
