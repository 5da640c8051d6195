"""Every transport quantity against any sweep axis, the other axes fixed by the user.

``qgt-mpi plot FILE [--x AXIS] [--mu V ...] [--delta V ...] [--temperature V ...]
[--quantity Q ...]``. For each x axis (temperature, mu or delta; default: every axis with
at least three points) one overview figure ``transport_vs_<x>`` has a panel per quantity;
``--quantity`` draws single-column figures ``sweep_<q>_vs_<x>`` instead. The axes that are
not x are fixed at the values given (nearest point of the sweep, whose actual value is
stated in the legend); several values give several curves. Unset axes default to: μ — up
to three values spread over the sweep (curves), T — Δ/k_B if swept, else the middle point,
δ — the equal-δ entry nearest 0.01 meV (theory §4.7).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from qgt_mpi.io.selection import Selection, delta_entries, nearest
from qgt_mpi.plot.style import (
    N_DISTINCT,
    Transport,
    delta_label,
    legend_below,
    new_figure,
    save,
    skip,
    spread,
)

AXES = ("temperature", "mu", "delta")
# quantity -> (symbol, unit) for axis labels; units as in theory §1.1
LABELS = {
    "sigma_xx": (r"$\sigma_{xx}$", r"$e^2/h$"),
    "sigma_yy": (r"$\sigma_{yy}$", r"$e^2/h$"),
    "sigma_xy": (r"$\sigma_{xy}$", r"$e^2/h$"),
    "sigma_xx_drude": (r"$\sigma_{xx}$ Drude", r"$e^2/h$"),
    "sigma_xx_geometric": (r"$\sigma_{xx}$ geometric", r"$e^2/h$"),
    "seebeck": (r"$S$", r"μV/K"),
    "kappa_xx": (r"$\kappa_{xx}/T$", r"$\pi^2 k_B^2/3h$"),
    "lorenz_ratio": (r"$L/L_0$", "1"),
}
X_LABELS = {"temperature": r"temperature $T$  [K]", "mu": r"chemical potential $\mu$  [meV]",
            "delta": r"broadening $\delta$  [meV]"}


def _label(axis: str, tr: Transport, i: int) -> str:
    if axis == "delta":
        return delta_label(tr.delta[i])
    if axis == "mu":
        return tr.mu_text(tr.mu[i], ".4g")
    return rf"$T$ = {tr.temperature[i]:.4g} K"


def _defaults(tr: Transport, x: str) -> dict[str, list[int]]:
    """Default indices of the two axes that are not x."""
    out = {}
    if x != "mu":
        out["mu"] = list(spread(tr.mu.size, 3))
    if x != "temperature":
        it = tr.gap_temperature()
        out["temperature"] = [tr.temperature.size // 2 if it is None else it]
    if x != "delta":
        out["delta"] = [tr.reference_delta()]
    if x == "mu" and tr.temperature.size > 1:
        out["temperature"] = list(spread(tr.temperature.size, 3))
    return out


def choose(tr: Transport, x: str, sel: Selection) -> dict[str, list[int]]:
    """Indices of every non-x axis: the user's values (nearest points) or the defaults."""
    picks = _defaults(tr, x)
    if sel.mu and x != "mu":
        picks["mu"] = nearest(tr.mu, sel.mu)
    if sel.temperature and x != "temperature":
        picks["temperature"] = nearest(tr.temperature, sel.temperature, log=True)
    if sel.delta and x != "delta":
        picks["delta"] = delta_entries(tr.delta, sel.delta)
    return picks


def x_values(tr: Transport, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices along x, values): δ uses the entries with one δ for all bands."""
    if x == "delta":
        idx = tr.equal_delta()
        order = np.argsort(tr.delta[idx, 0])
        return idx[order], tr.delta[idx[order], 0]
    values = tr.temperature if x == "temperature" else tr.mu
    return np.arange(values.size), values


def curves(tr: Transport, x: str, quantity: str, picks: dict[str, list[int]]):
    """(legend label, y values) of every curve; at most N_DISTINCT curves."""
    idx, _ = x_values(tr, x)
    others = [a for a in AXES if a != x]
    varying = [a for a in others if len(picks[a]) > 1]
    out = []
    for combo in itertools.product(*(picks[a] for a in others)):
        where = dict(zip(others, combo, strict=True))
        index = tuple(idx if a == x else where[a] for a in ("mu", "delta", "temperature"))
        y = tr.data[quantity][index]
        label = ", ".join(_label(a, tr, where[a]) for a in varying) or None
        out.append((label, y))
    return out[:N_DISTINCT]


def fixed_text(tr: Transport, x: str, picks: dict[str, list[int]]) -> str:
    """The axes held at one value, for the legend title."""
    return ", ".join(_label(a, tr, picks[a][0]) for a in AXES if a != x and len(picks[a]) == 1)


def _scales(ax, x: str, xs: np.ndarray, ys: list[np.ndarray]) -> None:
    """Log x for T and δ spanning a decade; log y for positive data spanning two."""
    if x != "mu" and xs.min() > 0 and xs.max() / xs.min() >= 10:
        ax.set_xscale("log")
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.zeros(0)
    if finite.size and finite.min() > 0 and finite.max() / finite.min() >= 100:
        ax.set_yscale("log")


IN_AXES = 3  # at most this many curves get a legend inside the axes; more go below


def legend_rows(n_curves: int, ncols: int) -> float:
    """Relative height of the legend row under the panels (0: legend inside the axes)."""
    if n_curves <= IN_AXES:
        return 0.0
    return 0.1 + 0.06 * math.ceil(n_curves / ncols)


def draw(ax, tr: Transport, x: str, quantity: str, picks, legend: bool) -> None:
    """One panel: ``quantity`` vs x for every curve of ``picks``."""
    _, xs = x_values(tr, x)
    data = curves(tr, x, quantity, picks)
    marker = "o" if xs.size <= 12 else None
    for label, y in data:
        ax.plot(xs, y, marker=marker, label=label)
    _scales(ax, x, xs, [y for _, y in data])
    if quantity in LABELS:
        symbol, unit = LABELS[quantity]
        ax.set_ylabel(f"{symbol}  [{unit}]" if unit != "1" else symbol)
    else:  # a quantity added later: its long_name spells out the unit (io/conventions.py)
        ax.set_ylabel(tr.units.get(quantity) or quantity, wrap=True)
    ax.set_xlabel(tr.mu_axis_label if x == "mu" else X_LABELS[x])
    if legend and len(data) <= IN_AXES:
        ax.legend(title=fixed_text(tr, x, picks) or None, loc="best")


def negligible_parts(tr: Transport, rtol: float = 1e-10) -> set[str]:
    """Drude/geometric split when the Drude part is rounding noise (flat bands).

    Then σ_xx is all geometric and the Drude values (~1e-30) would only draw noise that
    changes from machine to machine; the overview leaves both parts out.
    """
    if "sigma_xx_drude" not in tr.data or "sigma_xx" not in tr.data:
        return set()
    drude = np.nanmax(np.abs(tr.data["sigma_xx_drude"]))
    if drude <= rtol * np.nanmax(np.abs(tr.data["sigma_xx"])):
        return {"sigma_xx_drude", "sigma_xx_geometric"}
    return set()


def quantities(tr: Transport, requested: list[str] | None) -> list[str]:
    """Known quantities first in LABELS order, then any other observable of the file (the
    ``*_undefined`` masks only on request: they flag NaN values, they are not observables)."""
    names = [q for q in LABELS if q in tr.data] + sorted(set(tr.data) - set(LABELS))
    if not requested:
        return [q for q in names if q not in negligible_parts(tr)
                and not q.endswith("_undefined")]
    unknown = [q for q in requested if q not in tr.data]
    if unknown:
        raise KeyError(f"no transport quantity {unknown} (file has: {', '.join(names)})")
    return list(requested)


def _count(tr: Transport, x: str) -> str:
    """'1 temperature value(s)', '2 delta value(s) with one δ for all bands'."""
    extra = " with one delta for all bands" if x == "delta" else ""
    return f"{x_values(tr, x)[1].size} {tr.axis_name(x)} value(s){extra}"


def plot_sweeps(tr: Transport, outdir: str, xs: list[str] | None = None,
                sel: Selection | None = None, requested: list[str] | None = None,
                layout: str = "single") -> list[str]:
    """Overview (or per-quantity, ``layout`` width) figures of the sweep; returns paths."""
    sel = sel or Selection()
    axes_x = xs or [a for a in AXES if x_values(tr, a)[1].size >= 3]
    for a in sorted(set(xs or AXES) - set(axes_x), key=AXES.index):  # said, not silent
        skip(f"transport_vs_{tr.axis_name(a)}", f"the sweep has {_count(tr, a)}; an overview "
             f"needs >= 3 (--x {a} draws it from 2)")
    written: list[str] = []
    for x in axes_x:
        if x_values(tr, x)[1].size < 2:
            skip(f"transport_vs_{tr.axis_name(x)}", f"the sweep has {_count(tr, x)}; a "
                 "sweep figure needs >= 2")
            continue
        picks = choose(tr, x, sel)
        names = quantities(tr, requested)
        n_curves = len(curves(tr, x, names[0], picks)) if names else 0
        if requested:
            for q in names:
                cols = 1 if layout == "single" else 2
                fig, ax = new_figure(layout=layout, height=2.55 if layout == "single" else 3.2,
                                     legend_row=legend_rows(n_curves, cols))
                draw(ax[0, 0], tr, x, q, picks, legend=True)
                _legend_row(fig, ax[0, 0], tr, x, picks, n_curves, cols)
                written += save(fig, outdir, f"sweep_{q}_vs_{tr.axis_name(x)}")
            continue
        nrows = math.ceil(len(names) / 2)
        fig, axes = new_figure(ncols=2, nrows=nrows, height=2.1, legend_span=True,
                               legend_row=legend_rows(n_curves, 3))
        for k, q in enumerate(names):
            draw(axes.flat[k], tr, x, q, picks, legend=(k == 0))
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        _legend_row(fig, axes[0, 0], tr, x, picks, n_curves, 3)
        written += save(fig, outdir, f"transport_vs_{tr.axis_name(x)}")
    return written


def _legend_row(fig, ax, tr: Transport, x: str, picks, n_curves: int, ncols: int) -> None:
    """Legend of many curves in the row under the panels (see :func:`legend_rows`)."""
    if n_curves > IN_AXES:
        legend_below(fig, ax, ncols=ncols, title=fixed_text(tr, x, picks) or None)
