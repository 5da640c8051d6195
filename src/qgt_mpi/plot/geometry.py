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
from qgt_mpi.plot.style import new_figure, save


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


def _map(ax, fig, k, values, reciprocal, bz, cmap, symmetric: bool) -> None:
    """Filled contour map of one field, clipped to the BZ, with its own colour bar."""
    kt, vt = _tile(k, values, reciprocal)
    vmax = np.abs(values).max() if symmetric else values.max()
    vmin = -vmax if symmetric else min(values.min(), 0.0)
    levels = np.linspace(vmin, vmax, 41) if vmax > vmin else 41
    cs = ax.tricontourf(kt[:, 0], kt[:, 1], vt, levels=levels, cmap=cmap)
    patch = matplotlib.patches.Polygon(bz, closed=True, fill=False, lw=1, color="k")
    ax.add_patch(patch)
    targets = [cs] if isinstance(cs, matplotlib.artist.Artist) else cs.collections
    for artist in targets:
        artist.set_clip_path(patch)
        artist.set_rasterized(True)
    ticks = matplotlib.ticker.MaxNLocator(6, symmetric=symmetric)
    fig.colorbar(cs, ax=ax, shrink=0.9, ticks=ticks, format="%.2g")
    pad = 1.05 * np.abs(bz).max(axis=0)
    ax.set_xlim(-pad[0], pad[0])
    ax.set_ylim(-pad[1], pad[1])
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel(r"$k_x$  [1/a]")
    ax.set_ylabel(r"$k_y$  [1/a]")


def _fields(f: h5py.File) -> dict[str, np.ndarray]:
    """Per-band fields of the maps: Ω, Tr g, Tr g − |Ω|; each (nk, n_bands)."""
    omega = f["kgrid/berry_curvature"][()]
    metric = f["kgrid/metric"][()]
    trace = metric[..., 0] + metric[..., 1]
    return {"omega": omega, "trace": trace, "excess": trace - np.abs(omega)}


_ROWS = (
    ("omega", r"$\Omega_{%d}$  [$a^2$]", "RdBu_r", True),
    ("trace", r"$\mathrm{Tr}\, g_{%d}$  [$a^2$]", "viridis", False),
    ("excess", r"$\mathrm{Tr}\, g_{%d} - |\Omega_{%d}|$  [$a^2$]", "magma", False),
)


def plot_geometry_maps(f: h5py.File, outdir: str) -> list[str]:
    """Maps of Ω_n, Tr g_n and Tr g_n − |Ω_n| over the BZ for every band (needs /kgrid)."""
    if "kgrid" not in f or "berry_curvature" not in f["kgrid"] or "model" not in f:
        return []
    reciprocal = reciprocal_vectors(f["model"].attrs["lattice"])
    bz = brillouin_zone(reciprocal)
    k = f["kgrid/k_cart"][()]
    fields = _fields(f)
    chern = f["geometry/chern"][()] if "geometry/chern" in f else None
    nb = fields["omega"].shape[1]
    fig, axes = new_figure(ncols=nb, nrows=len(_ROWS), width=3.9, height=3.2)
    for row, (key, title, cmap, symmetric) in enumerate(_ROWS):
        for n in range(nb):
            ax = axes[row, n]
            _map(ax, fig, k, fields[key][:, n], reciprocal, bz, cmap, symmetric)
            label = title % ((n + 1,) * title.count("%d"))
            if key == "omega" and chern is not None:
                label += f",  C = {chern[n]:+.0f}"
            ax.set_title(label)
    n1 = np.unique(np.round(f["kgrid/k_frac"][:, 0], 12)).size
    fig.suptitle(f"{f.attrs.get('title', '')}  ({n1}×{k.shape[0] // n1} k-grid)", fontsize=9)
    return save(fig, outdir, "geometry_maps")
