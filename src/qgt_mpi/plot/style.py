"""Shared figure style, saving, result-file access and the small numerical helpers.

Every figure module draws on the Agg backend with :func:`new_figure` and writes PNG + PDF
through :func:`save`. The helpers :func:`fit_line` and :func:`find_peak` are what the
figures print on the plots (slopes of 1/σ_xx, the Seebeck peak); they are unit-tested.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import h5py
import matplotlib.pyplot as plt
import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K

RC = {
    "figure.dpi": 100, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 10,
    "axes.labelsize": 10, "legend.fontsize": 8, "legend.frameon": False,
    "xtick.direction": "in", "ytick.direction": "in", "xtick.top": True, "ytick.right": True,
    "axes.grid": True, "grid.alpha": 0.25, "lines.linewidth": 1.5, "savefig.bbox": "tight",
    "mathtext.fontset": "dejavusans",
}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.3):
    """A figure with an (nrows, ncols) array of axes (always 2-D), project style applied."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                                 squeeze=False, layout="constrained")
    return fig, axes


def save(fig, outdir: str, name: str) -> list[str]:
    """Write ``outdir/name.png`` and ``outdir/name.pdf``, close the figure; return the paths."""
    os.makedirs(outdir, exist_ok=True)
    paths = [os.path.join(outdir, f"{name}.{ext}") for ext in ("png", "pdf")]
    with plt.rc_context(RC):
        for path in paths:
            fig.savefig(path)
    plt.close(fig)
    return paths


@dataclass
class Transport:
    """The /transport group of a result file, plus the gap of a flattened model.

    Arrays have shape (n_mu, n_delta, n_T) as in the file; ``delta`` is (n_delta, n_bands);
    ``gap`` is Δ in meV (None for an unflattened model).
    """

    temperature: np.ndarray
    mu: np.ndarray
    delta: np.ndarray
    data: dict[str, np.ndarray]
    gap: float | None
    chern: np.ndarray

    @classmethod
    def read(cls, f: h5py.File) -> Transport:
        """Read the transport sweep and the model gap from an open result file."""
        tr = f["transport"]
        axes = ("temperature", "mu", "delta")
        data = {k: tr[k][()] for k in tr if k not in axes and k != "delta_index"}
        gap = f["model"].attrs.get("flatten_gap_meV") if "model" in f else None
        chern = f["geometry/chern"][()] if "geometry/chern" in f else np.zeros(0)
        return cls(tr["temperature"][()], tr["mu"][()], np.atleast_2d(tr["delta"][()]),
                   data, None if gap is None else float(gap), chern)

    def equal_delta(self) -> np.ndarray:
        """Indices of the δ entries with δ_1 = δ_2 = ... (the same δ for all bands)."""
        d = self.delta
        return np.flatnonzero(np.all(np.isclose(d, d[:, :1], rtol=1e-12), axis=1))

    def reference_delta(self, target: float = 0.01) -> int:
        """Index of the equal-δ entry closest (in log) to ``target`` meV (else entry 0)."""
        idx = self.equal_delta()
        if idx.size == 0:
            return 0
        return int(idx[np.argmin(np.abs(np.log(self.delta[idx, 0] / target)))])

    def gap_temperature(self, rtol: float = 0.1) -> int | None:
        """Index of the temperature closest to Δ/k_B if within ``rtol`` of it, else None."""
        if self.gap is None:
            return None
        t_gap = self.gap / K_B_MEV_PER_K
        i = int(np.argmin(np.abs(self.temperature - t_gap)))
        return i if abs(self.temperature[i] / t_gap - 1.0) <= rtol else None

    def mu_subset(self, max_n: int = 6) -> np.ndarray:
        """At most ``max_n`` μ indices, evenly spread over the sweep (curves per μ)."""
        return spread(self.mu.size, max_n)

    def mu_index(self, target: float) -> int:
        """Index of the chemical potential closest to ``target`` meV."""
        return int(np.argmin(np.abs(self.mu - target)))


def spread(n: int, max_n: int) -> np.ndarray:
    """At most ``max_n`` indices of range(n), evenly spread, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, max_n)).round().astype(int))


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares straight line y ≈ slope·x + intercept; returns (slope, intercept)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        raise ValueError("a line fit needs at least two points")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def find_peak(x: np.ndarray, y: np.ndarray, log_x: bool = True) -> tuple[float, float]:
    """Position and height of the maximum of y(x), refined by a parabola through 3 points.

    The parabola is fitted in log x when ``log_x`` (a log-spaced temperature grid); a
    maximum at either end of the grid is returned as it is.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i = int(np.argmax(y))
    if i == 0 or i == y.size - 1:
        return float(x[i]), float(y[i])
    u = np.log(x[i - 1:i + 2]) if log_x else x[i - 1:i + 2]
    a, b, c = np.polyfit(u - u[1], y[i - 1:i + 2], 2)
    if a >= 0:
        return float(x[i]), float(y[i])
    u_star = -b / (2.0 * a)
    x_star = np.exp(u[1] + u_star) if log_x else u[1] + u_star
    return float(x_star), float(c - b * b / (4.0 * a))


def delta_label(delta_row: np.ndarray) -> str:
    """Legend text of one δ entry: 'δ = 0.01 meV' or 'δ₁, δ₂ = 0.01, 0.1 meV'."""
    if np.allclose(delta_row, delta_row[0], rtol=1e-12):
        return rf"$\delta$ = {delta_row[0]:.3g} meV"
    vals = ", ".join(f"{v:.3g}" for v in delta_row)
    subs = ",".join(str(i + 1) for i in range(delta_row.size))
    return rf"$\delta_{{{subs}}}$ = {vals} meV"
