"""Shared figure style, saving, result-file access and the small numerical helpers.

Every figure module draws on the Agg backend with :func:`new_figure` and writes PNG + PDF
through :func:`save`. The helpers :func:`fit_line` and :func:`find_peak` are what the
figures print on the plots (slopes of 1/σ_xx, the Seebeck peak); they are unit-tested.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import h5py
import matplotlib.pyplot as plt
import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K

# Okabe–Ito colours (colour-blind safe; yellow left out: invisible on white) combined with
# four line styles: 7 and 4 are coprime, so curve k gets (colour k mod 7, style k mod 4) and
# no (colour, style) pair repeats before 28 curves; neighbours differ in both (greyscale).
COLOURS = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7")
STYLES = ("-", "--", ":", "-.")
N_DISTINCT = len(COLOURS) * len(STYLES)

# Journal widths (inches): one column (PRB/PRL 3.4 in) and two columns (7 in).
WIDTHS = {"single": 3.4, "double": 7.0}

RC = {
    "figure.dpi": 100, "savefig.dpi": 300, "font.size": 8, "axes.titlesize": 8,
    "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.frameon": False, "legend.handlelength": 2.6,
    "xtick.direction": "in", "ytick.direction": "in", "xtick.top": True, "ytick.right": True,
    "axes.grid": True, "grid.alpha": 0.25, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
    "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType (Type 42) fonts embedded, no Type 3
    "axes.prop_cycle": matplotlib.cycler(color=[COLOURS[k % 7] for k in range(N_DISTINCT)],
                                         linestyle=[STYLES[k % 4] for k in range(N_DISTINCT)]),
}
# Deterministic output: no timestamps or version strings in the files' metadata, so a
# regenerated figure is byte-identical unless what it shows changed.
plt.rcParams.update(RC)  # text added after figure creation uses the same style
_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None,
                                                "CreationDate": None}}


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None,
               height: float | None = None, layout: str | None = None,
               legend_row: float = 0.0, legend_span: bool = False):
    """A figure with an (nrows, ncols) array of axes (always 2-D), project style applied.

    The total width is a journal column: ``layout`` "single" (3.4 in, the default for one
    panel) or "double" (7 in, the default for several panels); ``width`` (inches, total)
    overrides it. ``height`` is the height of one row (default: 0.75 × panel width, capped
    at 2.8 in). ``legend_row`` > 0 adds a row of that relative height under the panels
    whose (invisible) axes, one per column, hold the legends (:func:`legend_below`): the
    legends then never cover data and stay inside the figure; with ``legend_span`` that row
    is one axes across all columns.
    """
    layout = layout or ("single" if ncols == 1 else "double")
    total = width or WIDTHS[layout]
    row = height or min(0.75 * total / ncols, 2.8)
    ratios = [1.0] * nrows + ([legend_row] if legend_row > 0 else [])
    with plt.rc_context(RC):
        fig = plt.figure(figsize=(total, row * sum(ratios)), layout="constrained")
        grid = fig.add_gridspec(len(ratios), ncols, height_ratios=ratios)
        axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(ncols)]
                         for r in range(nrows)])
        fig.legend_axes = []
        if legend_row > 0 and legend_span:
            fig.legend_axes.append(fig.add_subplot(grid[nrows, :]))
            fig.legend_axes[0].axis("off")
        elif legend_row > 0:
            for c in range(ncols):
                lax = fig.add_subplot(grid[nrows, c])
                lax.axis("off")
                fig.legend_axes.append(lax)
    return fig, axes


def legend_below(fig, ax, column: int = 0, ncols: int = 1, title: str | None = None) -> None:
    """Put the legend of ``ax`` into the legend row of its column (see :func:`new_figure`)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend_axes[column].legend(handles, labels, loc="upper center", ncols=ncols,
                                   borderaxespad=0.0, title=title)


def skip(name: str, why: str) -> list[str]:
    """Say on stderr, in one line, why figure ``name`` is not drawn; return no paths.

    Every figure that a family would draw but cannot (missing data, a sweep too short for
    it, a model too large to rediagonalise) goes through here: no figure is skipped
    silently (``qgt-mpi: plot: NAME not drawn: WHY``).
    """
    sys.stderr.write(f"qgt-mpi: plot: {name} not drawn: {why}\n")
    sys.stderr.flush()
    return []


def note(name: str, text: str) -> None:
    """One informational stderr line about figure ``name`` (e.g. which bands it shows)."""
    sys.stderr.write(f"qgt-mpi: plot: {name}: {text}\n")
    sys.stderr.flush()


def save(fig, outdir: str, name: str) -> list[str]:
    """Write ``outdir/name.png`` (300 dpi) and ``.pdf`` (Type 42 fonts), close the figure."""
    import tempfile

    os.makedirs(outdir, exist_ok=True)
    paths = [os.path.join(outdir, f"{name}.{ext}") for ext in ("png", "pdf")]
    try:
        with plt.rc_context(RC):
            for path in paths:
                ext = path.rsplit(".", 1)[1]
                if os.path.lexists(path) and not os.path.islink(path) and \
                        not os.path.isfile(path):
                    raise OSError(f"{path} exists and is not a regular file; not replaced")
                # a fresh temporary name, then a rename: a symlink planted at the figure's
                # name is replaced, never written through, and a failed save leaves no torn
                # figure (figures are regenerated on every plot, so they are replaced)
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{ext}", dir=outdir)
                os.close(fd)
                try:
                    fig.savefig(tmp, format=ext, metadata=_METADATA[ext])
                    os.replace(tmp, path)
                finally:
                    if os.path.lexists(tmp):
                        os.remove(tmp)
    finally:
        plt.close(fig)
    return paths


@dataclass
class Transport:
    """The /transport group of a result file, plus the gap of a flattened model.

    Arrays have shape (n_mu, n_delta, n_T) as in the file; ``delta`` is (n_delta, n_bands);
    ``gap`` is Δ in meV (None for an unflattened model). In a fixed-filling file (theory §4.7)
    the first axis is the target filling ν of the band group (``first`` = "filling"): ``mu``
    then holds those fillings and the solved μ(ν, T) is the quantity ``mu_solved``.
    """

    temperature: np.ndarray
    mu: np.ndarray
    delta: np.ndarray
    data: dict[str, np.ndarray]
    gap: float | None
    chern: np.ndarray
    units: dict[str, str] = field(default_factory=dict)  # long_name of unlisted quantities
    first: str = "mu"  # "filling" when the first axis is filling_target

    @classmethod
    def read(cls, f: h5py.File) -> Transport:
        """Read the transport sweep and the model gap from an open result file."""
        tr = f["transport"]
        first = "mu" if "mu" in tr else "filling"
        axis = tr["mu" if first == "mu" else "filling_target"][()]
        shape = (axis.size, np.atleast_2d(tr["delta"]).shape[0], tr["temperature"].size)
        data = {k: tr[k][()] for k in tr if tr[k].shape == shape}  # observables, not axes
        gap = f["model"].attrs.get("flatten_gap_meV") if "model" in f else None
        chern = f["geometry/chern"][()] if "geometry/chern" in f else np.zeros(0)
        units = {k: str(tr[k].attrs.get("long_name", "")) for k in data}
        return cls(tr["temperature"][()], axis, np.atleast_2d(tr["delta"][()]),
                   data, None if gap is None else float(gap), chern, units, first)

    def axis_name(self, axis: str) -> str:
        """File-name word of a sweep axis ("filling" for the first axis of a filling file)."""
        return "filling" if axis == "mu" and self.first == "filling" else axis

    @property
    def mu_axis_label(self) -> str:
        """x-axis label of the first sweep axis."""
        if self.first == "filling":
            return r"filling $\nu$ of the band group"
        return r"chemical potential $\mu$  [meV]"

    def mu_text(self, value: float, fmt: str = "+.3g", unit: bool = True) -> str:
        """Legend text of one point of the first axis: μ = … meV, or ν = … (fillings)."""
        if self.first == "filling":
            return rf"$\nu$ = {value:{fmt}}"
        return rf"$\mu$ = {value:{fmt}}" + (" meV" if unit else "")

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

    def why_not_at_gap(self, it: int | None, idx: np.ndarray) -> str:
        """Why a figure at T ≈ Δ/k_B over equal broadenings cannot be drawn (one line)."""
        if self.gap is None:
            return "the model is not flattened (no gap Δ to set T ≈ Δ/k_B)"
        if it is None:
            return (f"no sweep temperature within 10 % of Δ/k_B = "
                    f"{self.gap / K_B_MEV_PER_K:.3g} K")
        return f"needs >= 3 broadenings equal for all bands (the sweep has {idx.size})"

    def why_few(self, axis: str, need: int) -> str:
        """'needs >= N temperatures (the sweep has M)' for a sweep axis too short."""
        n = {"temperature": self.temperature.size, "mu": self.mu.size}[axis]
        words = {"temperature": "temperatures",
                 "mu": "fillings" if self.first == "filling" else "chemical potentials"}
        return f"needs >= {need} {words[axis]} (the sweep has {n})"

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
