"""Brillouin-zone maps of the quantum geometry from the k-resolved fields of a result file.

For every band: Berry curvature Ω_n(k), Tr g_n(k) and Tr g_n − |Ω_n| (≥ 0 by the trace
inequality; zero for ideal bands). The stored grid covers one reciprocal cell; it is tiled
periodically and clipped to the first Brillouin zone (Wigner–Seitz cell of the reciprocal
lattice, drawn as an outline).
"""

from __future__ import annotations

import h5py
import matplotlib.artist
import matplotlib.patches
import matplotlib.ticker
import numpy as np
from scipy.spatial import Voronoi

from qgt_mpi.models.lattice import reciprocal_vectors
from qgt_mpi.plot.bandpath import MAP_MAX_BANDS, band_range_text, choose_bands, reference_energy
from qgt_mpi.plot.style import new_figure, note, save, skip

MAP_COLUMNS = 4  # maps per row at most: more bands wrap into further rows


def brillouin_zone(reciprocal: np.ndarray) -> np.ndarray:
    """Corners (ncorner, 2) of the first Brillouin zone, counter-clockwise."""
    m, n = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij")
    points = np.outer(m.ravel(), reciprocal[0]) + np.outer(n.ravel(), reciprocal[1])
    vor = Voronoi(points)
    origin = int(np.argmin(np.linalg.norm(points, axis=1)))
    corners = vor.vertices[vor.regions[vor.point_region[origin]]]
    return corners[np.argsort(np.arctan2(corners[:, 1], corners[:, 0]))]


def _tile(k: np.ndarray, values: np.ndarray, reciprocal: np.ndarray):
    """Periodic images of the cell's k-points (and their values) over the 3×3 neighbouring cells."""
    shifts = [m * reciprocal[0] + n * reciprocal[1] for m in (-1, 0, 1) for n in (-1, 0, 1)]
    return np.concatenate([k + s for s in shifts]), np.tile(values, len(shifts))


def _map(ax, fig, k, values, reciprocal, bz, cmap, symmetric: bool,
         zero_floor: bool = True) -> None:
    """Filled contour map of one field, clipped to the BZ, with its own colour bar.

    ``zero_floor``: the colour scale of a non-negative field starts at 0. A field constant
    to 1e-9 (a flat band's energy) is drawn as one colour, its value the only tick.
    """
    spread = np.ptp(values)
    if spread <= 1e-9 * max(np.abs(values).max(), 1e-300):
        values = np.full_like(values, float(np.mean(values)))
    kt, vt = _tile(k, values, reciprocal)
    vmax = np.abs(values).max() if symmetric else values.max()
    vmin = -vmax if symmetric else (min(values.min(), 0.0) if zero_floor else values.min())
    scale = max(abs(vmin), abs(vmax), 1e-300)
    constant = vmax - vmin <= 1e-9 * scale
    if constant:
        mid = float(values[0])
        vmin, vmax = mid - 1e-6 * scale, mid + 1e-6 * scale
    levels = np.linspace(vmin, vmax, 2 if constant else 41)
    cs = ax.tricontourf(kt[:, 0], kt[:, 1], vt, levels=levels, cmap=cmap)
    patch = matplotlib.patches.Polygon(bz, closed=True, fill=False, lw=1, color="k")
    ax.add_patch(patch)
    targets = [cs] if isinstance(cs, matplotlib.artist.Artist) else cs.collections
    for artist in targets:
        artist.set_clip_path(patch)
        artist.set_rasterized(True)
    ticks = ([float(values[0])] if constant
             else matplotlib.ticker.MaxNLocator(6, symmetric=symmetric))
    fig.colorbar(cs, ax=ax, shrink=0.9, ticks=ticks, format="%.4g" if constant else "%.2g")
    ax.tick_params(labelsize=6)
    pad = 1.05 * np.abs(bz).max(axis=0)
    ax.set_xlim(-pad[0], pad[0])
    ax.set_ylim(-pad[1], pad[1])
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel(r"$k_x$  [1/a]")
    ax.set_ylabel(r"$k_y$  [1/a]")


def kfield(f: h5py.File, name: str) -> np.ndarray:
    """A /kgrid field with the grid axes flattened: (N1·N2, ...) from either file layout.

    Files written with the grid shape store (N1, N2, ...) (``N1``, ``N2`` group
    attributes); older files store (N1·N2, ...).
    """
    data = f["kgrid"][name][()]
    if "N1" in f["kgrid"].attrs:
        return data.reshape(-1, *data.shape[2:])
    return data


def grid_shape(f: h5py.File) -> tuple[int, int]:
    """(N1, N2) of the stored k-grid."""
    attrs = f["kgrid"].attrs
    if "N1" in attrs:
        return int(attrs["N1"]), int(attrs["N2"])
    n1 = np.unique(np.round(f["kgrid/k_frac"][:, 0], 12)).size
    return n1, f["kgrid/k_frac"].shape[0] // n1


def _fields(f: h5py.File) -> dict[str, np.ndarray]:
    """Per-band fields of the maps: Ω, Tr g, Tr g − |Ω|; each (nk, n_bands)."""
    omega = kfield(f, "berry_curvature")
    metric = kfield(f, "metric")
    trace = metric[..., 0] + metric[..., 1]
    return {"omega": omega, "trace": trace, "excess": trace - np.abs(omega)}


_ROWS = (
    ("omega", r"$\Omega_{%d}$  [$a^2$]", "RdBu_r", True),
    ("trace", r"$\mathrm{Tr}\, g_{%d}$  [$a^2$]", "viridis", False),
    ("excess", r"$\mathrm{Tr}\, g_{%d} - |\Omega_{%d}|$  [$a^2$]", "magma", False),
)


def _selected(f: h5py.File, name: str, requested: list[int] | str | None
              ) -> np.ndarray | None:
    """Bands of a map figure (plot/bandpath.py rule, MAP_MAX_BANDS); None after a skip line."""
    energies = kfield(f, "energies")
    try:
        idx = choose_bands(energies.mean(axis=0), reference_energy(f), MAP_MAX_BANDS,
                           requested)
    except ValueError as exc:
        skip(name, str(exc))
        return None
    if idx.size < energies.shape[1] and not requested:
        note(name, f"bands {band_range_text(idx)} of {energies.shape[1]} (0-based) around "
             f"{reference_energy(f):.4g} meV; --bands chooses, --bands all draws every band")
    return idx


def _grid(n: int, rows_per_item: int = 1):
    """A figure of ``n`` items wrapped into at most MAP_COLUMNS columns."""
    ncols = min(n, MAP_COLUMNS)
    blocks = -(-n // ncols)
    return new_figure(ncols=ncols, nrows=rows_per_item * blocks,
                      height=7.0 / max(ncols, 2) * 0.8), ncols


def plot_geometry_maps(f: h5py.File, outdir: str,
                       requested: list[int] | str | None = None) -> list[str]:
    """Maps of Ω_n, Tr g_n and Tr g_n − |Ω_n| over the BZ (needs /kgrid).

    One column of three maps per band, at most MAP_COLUMNS columns (wrapped); the bands
    are ``requested`` ("all" or indices) or the default rule of plot/bandpath.py.
    """
    name = "geometry_maps"
    if "kgrid" not in f or "berry_curvature" not in f["kgrid"]:
        return skip(name, "the file has no k-resolved fields (/kgrid; [output] kresolved = "
                    "true in the deck)")
    if "model" not in f:
        return skip(name, "the file has no /model group (lattice unknown)")
    idx = _selected(f, name, requested)
    if idx is None:
        return []
    reciprocal = reciprocal_vectors(f["model"].attrs["lattice"])
    bz = brillouin_zone(reciprocal)
    k = kfield(f, "k_cart")
    fields = _fields(f)
    chern = f["geometry/chern"][()] if "geometry/chern" in f else None
    (fig, axes), ncols = _grid(idx.size, len(_ROWS))
    used = []
    for p, n in enumerate(idx):
        block, col = divmod(p, ncols)
        for row, (key, title, cmap, symmetric) in enumerate(_ROWS):
            ax = axes[block * len(_ROWS) + row, col]
            used.append(ax)
            _map(ax, fig, k, fields[key][:, n], reciprocal, bz, cmap, symmetric)
            label = title % ((n + 1,) * title.count("%d"))
            if key == "omega" and chern is not None:
                label += f",  C = {chern[n]:+.0f}"
            ax.set_title(label)
    _hide_unused(axes, used)
    n1, n2 = grid_shape(f)
    shown = "" if idx.size == fields["omega"].shape[1] else (
        f"; bands n = {band_range_text(idx)} (0-based) of {fields['omega'].shape[1]}, "
        "subscripts count from 1")
    fig.suptitle(f"{f.attrs.get('title', '')}  ({n1}×{n2} k-grid{shown})")
    return save(fig, outdir, name)


def _hide_unused(axes: np.ndarray, used: list) -> None:
    """Hide the axes of a wrapped grid that hold no map."""
    for ax in axes.flat:
        if not any(ax is u for u in used):
            ax.set_visible(False)


_COMPONENTS = ("xx", "yy", "xy")


def plot_kfield_map(f: h5py.File, outdir: str, name: str,
                    requested: list[int] | str | None = None) -> list[str]:
    """BZ maps of any k-resolved field ``name`` (one panel per band and component).

    The bands are ``requested`` ("all" or indices) or the default rule of plot/bandpath.py;
    a tensor field has its three components in one row per band, a per-band field at most
    MAP_COLUMNS bands per row. Raises KeyError if the file has no such /kgrid field.
    """
    if "kgrid" not in f or name not in f["kgrid"] or name in ("k_frac", "k_cart"):
        have = sorted(set(f["kgrid"]) - {"k_frac", "k_cart"}) if "kgrid" in f else []
        raise KeyError(f"no k-resolved field {name!r} (file has: {', '.join(have)})")
    figure = f"kmap_{name}"
    idx = _selected(f, figure, requested)
    if idx is None:
        return []
    reciprocal = reciprocal_vectors(f["model"].attrs["lattice"])
    bz = brillouin_zone(reciprocal)
    k = kfield(f, "k_cart")
    nb = f["kgrid/energies"].shape[-1]
    data = kfield(f, name).reshape(k.shape[0], nb, -1)  # (nk, band, component)
    per_band = data.shape[2]
    panels = [(n, c) for n in idx for c in range(per_band)]
    ncols = per_band if per_band > 1 else min(len(panels), MAP_COLUMNS)
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, height=7.0 / max(ncols, 2) * 0.8)
    attrs = f["kgrid"][name].attrs
    long_name = str(attrs.get("long_name", name))
    units = str(attrs.get("units", "1"))
    if units not in ("1", ""):  # "1" fields spell their unit out in long_name
        long_name += f"  [{units}]"
    for j, ax in enumerate(axes.flat):
        if j >= len(panels):
            ax.set_visible(False)
            continue
        n, c = panels[j]
        values = data[:, n, c]
        symmetric = bool(values.min() < 0 < values.max())
        _map(ax, fig, k, values, reciprocal, bz, "RdBu_r" if symmetric else "viridis",
             symmetric, zero_floor=False)
        comp = f", {_COMPONENTS[c]}" if per_band == 3 else ""
        ax.set_title(f"band n = {n}{comp}")
    fig.suptitle(long_name, wrap=True)
    return save(fig, outdir, figure)
