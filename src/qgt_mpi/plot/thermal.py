"""Thermoelectric figures: the paper's Fig. 3 (Seebeck vs δ and vs T), κ_xx and Lorenz ratio.

The Seebeck coefficient is plotted with its sign (theory §4: S = −S⁽¹⁾/(eT S⁽⁰⁾), negative for
μ on the lower flat band); the peak of |S| is marked as (T*, S*) and the lines
±(k_B/e) ln 2 are drawn for reference.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K, K_B_OVER_E_UV_PER_K
from qgt_mpi.plot.style import (
    Transport,
    delta_label,
    find_peak,
    legend_below,
    new_figure,
    save,
    skip,
)

S_LN2 = K_B_OVER_E_UV_PER_K * np.log(2.0)  # (k_B/e) ln 2 ≈ 59.73 μV/K
S_LABEL = r"Seebeck $S$  [$\mu$V/K]  (sign kept)"


def seebeck_peak(tr: Transport, im: int, idel: int) -> tuple[float, float] | None:
    """(T*, S*) of the largest |S(T)| when it lies inside the T grid, else None."""
    s = tr.data["seebeck"][im, idel]
    t_star, height = find_peak(tr.temperature, np.abs(s))
    if not tr.temperature[0] < t_star < tr.temperature[-1] or height <= 0:
        return None
    sign = np.sign(s[np.argmax(np.abs(s))])
    return t_star, float(sign * height)


def _ln2_lines(ax) -> None:
    """Reference lines S = ±(k_B/e) ln 2, labelled once (same text in every figure)."""
    for s in (S_LN2, -S_LN2):
        ax.axhline(s, color="0.4", ls=(0, (5, 3)), lw=0.8)
    ax.text(0.98, S_LN2, rf"$\pm(k_B/e)\ln 2$ = $\pm${S_LN2:.2f} μV/K", fontsize=6,
            va="bottom", ha="right", transform=ax.get_yaxis_transform())
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, -1.2 * S_LN2), max(high, 1.2 * S_LN2))


def plot_seebeck_vs_delta(tr: Transport, outdir: str) -> list[str]:
    """Paper Fig. 3(b): S vs δ (δ_1 = δ_2) at T ≈ Δ/k_B for each μ."""
    it, idx = tr.gap_temperature(), tr.equal_delta()
    if it is None or idx.size < 3:
        return skip("seebeck_vs_delta", tr.why_not_at_gap(it, idx))
    fig, axes = new_figure(height=2.6, legend_row=0.3)
    ax = axes[0, 0]
    for im in tr.mu_subset():
        mu = tr.mu[im]
        ax.semilogx(tr.delta[idx, 0], tr.data["seebeck"][im, idx, it], marker="o", ms=3,
                    label=tr.mu_text(mu))
    _ln2_lines(ax)
    ax.set_xlabel(r"broadening $\delta = \delta_1 = \delta_2$  [meV]")
    ax.set_ylabel(S_LABEL)
    ax.set_title(rf"$T$ = {tr.temperature[it]:.3g} K $\approx \Delta/k_B$, "
                 rf"$\Delta$ = {tr.gap:.3g} meV")
    legend_below(fig, ax, ncols=2)
    return save(fig, outdir, "seebeck_vs_delta")


def _seebeck_curves(ax, tr: Transport, curves: list[tuple[int, int, str]]) -> None:
    """Draw S(T) for (mu index, delta index, label) triples and mark each interior peak."""
    for im, idel, label in curves:
        s = tr.data["seebeck"][im, idel]
        line, = ax.semilogx(tr.temperature, s, label=label)
        peak = seebeck_peak(tr, im, idel)
        if peak is not None and abs(peak[1]) > 1e-6:
            ax.plot(*peak, "o", ms=5, mfc="none", color=line.get_color(), ls="none")
            line.set_label(f"{label}: T* = {peak[0]:.3g} K, S* = {peak[1]:.4g}")
    _ln2_lines(ax)
    if tr.gap is not None:
        ax.axvline(0.5 * tr.gap / K_B_MEV_PER_K, color="0.5", ls=":", lw=1)
    ax.set_xlabel(r"temperature $T$  [K]")
    ax.set_ylabel(S_LABEL)


def plot_seebeck_vs_temperature(tr: Transport, outdir: str) -> list[str]:
    """Paper Fig. 3(c): S(T) for each μ (reference δ), and for each δ at μ on the lower band."""
    if tr.temperature.size < 6:
        return skip("seebeck_vs_temperature", tr.why_few("temperature", 6))
    idel = tr.reference_delta()
    by_mu = [(im, idel, tr.mu_text(tr.mu[im], unit=False)) for im in tr.mu_subset()]
    panels = [(by_mu, delta_label(tr.delta[idel]))]
    if tr.delta.shape[0] > 1 and tr.gap is not None:
        im = tr.mu_index(-0.5 * tr.gap)
        by_delta = [(im, j, delta_label(tr.delta[j])) for j in range(tr.delta.shape[0])]
        panels.append((by_delta, tr.mu_text(tr.mu[im]) + " (lower flat band)"))
    fig, axes = new_figure(ncols=len(panels), height=2.6, legend_row=0.7)
    for col, (ax, (curves, title)) in enumerate(zip(axes[0], panels, strict=True)):
        _seebeck_curves(ax, tr, curves)
        ax.set_title(title + ";  dotted: $T = \\Delta/2k_B$" if tr.gap else title)
        legend_below(fig, ax, column=col, title="peaks (T*, S* in μV/K) circled")
    return save(fig, outdir, "seebeck_vs_temperature")


def plot_kappa_lorenz(tr: Transport, outdir: str) -> list[str]:
    """κ_xx/T and the Lorenz ratio L/L_0 vs T for each μ (reference δ)."""
    if tr.temperature.size < 6:
        return skip("kappa_lorenz_vs_temperature", tr.why_few("temperature", 6))
    idel = tr.reference_delta()
    fig, axes = new_figure(ncols=2, height=2.6)
    for im in tr.mu_subset():
        mu = tr.mu[im]
        label = tr.mu_text(mu)
        axes[0, 0].loglog(tr.temperature, np.abs(tr.data["kappa_xx"][im, idel]), label=label)
        axes[0, 1].loglog(tr.temperature, np.abs(tr.data["lorenz_ratio"][im, idel]),
                          label=label)
    axes[0, 0].set_ylabel(r"$\kappa_{xx}/T$  [$\pi^2 k_B^2/3h$]")
    axes[0, 1].set_ylabel(r"Lorenz ratio $L/L_0$,  $L_0 = \pi^2 k_B^2/3e^2$")
    axes[0, 1].axhline(1.0, color="0.4", ls=(0, (1, 3)), lw=1)
    for ax in axes[0]:
        ax.set_xlabel(r"temperature $T$  [K]")
        if tr.gap is not None:
            ax.axvline(tr.gap / K_B_MEV_PER_K, color="0.5", ls=":", lw=1)
    axes[0, 0].legend(loc="best")
    fig.suptitle(delta_label(tr.delta[idel]) + r";  dotted: $T = \Delta/k_B$")
    return save(fig, outdir, "kappa_lorenz_vs_temperature")
