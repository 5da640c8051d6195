"""The ``bands_path`` figure from a file's ``/bands_path`` group, and band selection.

Contract
--------
The figure draws ε_n(k) against the path length s with the corners as ticks. Which bands
(``qgt-mpi plot FILE [--bands ...]``; band indices are those of the file, i.e. of the window
for a windowed run):

- a windowed run (the group has ``window_edges``): every window band, plus the nearest
  eigenvalue below and above the window at each point (dashed) with the rest of the
  spectrum beyond them shaded; the energy axis spans the window and its edges, never the
  whole spectrum;
- a dense run with at most ``PATH_MAX_BANDS`` bands: all of them;
- a dense run with more: the ``PATH_MAX_BANDS`` consecutive bands around the reference
  energy E_ref (:func:`nearest_block`), the energy axis spanning them (± 5 %).

E_ref (:func:`reference_energy`) is the middle of the μ sweep, (min μ + max μ)/2, taken from
``/transport/mu`` or else from the deck stored in the file; 0 meV for a fixed-filling sweep
or a file without a deck. ``--bands 3 4`` / ``--bands 2-5`` draws those bands,
``--bands all`` every band. The same rule with ``MAP_MAX_BANDS`` chooses the bands of the
Brillouin-zone maps (plot/geometry.py). Serial (rank 0 of ``qgt-mpi plot``).
"""

from __future__ import annotations

import h5py
import numpy as np

from qgt_mpi.io.checks import InputError
from qgt_mpi.io.deck import parse_deck
from qgt_mpi.plot.style import COLOURS, legend_below, new_figure, note, save, skip

PATH_MAX_BANDS = 16  # dense runs: bands drawn by default around E_ref
MAP_MAX_BANDS = 4  # BZ maps: bands drawn by default
NAME = "bands_path"


def reference_energy(f: h5py.File) -> float:
    """E_ref [meV]: the middle of the μ sweep (file, else the stored deck), else 0."""
    if "transport/mu" in f:
        mu = f["transport/mu"][()]
        return 0.5 * float(mu.min() + mu.max())
    text = f.attrs.get("input_text")
    if text is None:
        return 0.0
    try:
        config = parse_deck(text.decode() if isinstance(text, bytes) else str(text))
    except InputError:
        return 0.0
    if config.sweep.filling is not None:
        return 0.0
    return 0.5 * float(config.sweep.mu.min() + config.sweep.mu.max())


def nearest_block(mean_energy: np.ndarray, e_ref: float, n: int) -> np.ndarray:
    """Indices lo..lo+n−1 of the n consecutive bands around ``e_ref``.

    lo = n_below − n//2 clipped to [0, nb − n], with n_below the number of bands whose mean
    energy lies below ``e_ref``; all bands when nb ≤ n.
    """
    nb = mean_energy.size
    if nb <= n:
        return np.arange(nb)
    below = int(np.sum(mean_energy < e_ref))
    lo = min(max(below - n // 2, 0), nb - n)
    return np.arange(lo, lo + n)


def choose_bands(mean_energy: np.ndarray, e_ref: float, n_max: int,
                 requested: list[int] | str | None) -> np.ndarray:
    """Bands to draw: ``requested`` ("all" or indices), else :func:`nearest_block`.

    Raises ValueError for requested indices outside the file's bands.
    """
    nb = mean_energy.size
    if isinstance(requested, str):
        if requested != "all":
            raise ValueError(f"--bands {requested}: give band indices or 'all'")
        return np.arange(nb)
    if requested:
        bad = [b for b in requested if not 0 <= b < nb]
        if bad:
            raise ValueError(f"--bands {' '.join(map(str, bad))} outside the file's bands "
                             f"0..{nb - 1}")
        return np.array(sorted(set(requested)))
    return nearest_block(mean_energy, e_ref, n_max)


def band_range_text(idx: np.ndarray) -> str:
    """'3-6' for consecutive indices, '1, 4, 7' otherwise."""
    if idx.size > 1 and np.all(np.diff(idx) == 1):
        return f"{idx[0]}-{idx[-1]}"
    return ", ".join(str(int(i)) for i in idx)


def _ticks(ax, g: h5py.Group) -> None:
    """Corner labels, separators and the x range of the path stored in ``g``."""
    labels = [s.decode() if isinstance(s, bytes) else str(s) for s in g["labels"][()]]
    path_axes(ax, g["label_positions"][()], labels)


def path_axes(ax, ticks, labels: list[str]) -> None:
    """Axes of a band path: corner labels at ``ticks``, separators, x range, axis labels."""
    ax.set_xticks(ticks, labels)
    ax.set_xlim(ticks[0], ticks[-1])
    for t in ticks[1:-1]:
        ax.axvline(t, color="0.5", lw=0.8)
    ax.set_xlabel(r"wave vector $\mathbf{k}$ along the path")
    ax.set_ylabel(r"energy $\varepsilon_n(\mathbf{k})$  [meV]")


def _limits(ax, values: np.ndarray) -> tuple[float, float]:
    """Set the energy axis to the finite range of ``values`` with a 5 % margin."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    ax.set_ylim(lo - pad, hi + pad)
    return lo - pad, hi + pad


def _window(fig, ax, s, energies, edges, idx) -> None:
    """Window bands, their neighbour edges and the shaded rest of the spectrum."""
    for j, n in enumerate(idx):
        ax.plot(s, energies[:, n], color=COLOURS[4], ls="-", lw=1.0,
                label="window bands" if j == 0 else None)
    below, above = edges[:, 0], edges[:, 1]
    label: str | None = "nearest eigenvalue outside the window"
    for values in (below, above):
        if np.isfinite(values).any():  # all NaN: no band on that side of the window
            ax.plot(s, values, color=COLOURS[5], ls="--", lw=0.9, label=label)
            label = None
    finite = edges[np.isfinite(edges)]
    lo, hi = _limits(ax, np.concatenate([energies[:, idx].ravel(), finite]))
    ax.fill_between(s, lo, below, where=np.isfinite(below), color="0.88", lw=0)
    ax.fill_between(s, above, hi, where=np.isfinite(above), color="0.88", lw=0)
    legend_below(fig, ax, ncols=1)  # in its own row: never over the bands


def plot_path_file(f: h5py.File, outdir: str,
                   requested: list[int] | str | None = None) -> list[str]:
    """The ``bands_path`` figure from ``/bands_path`` (module docstring: which bands). Serial.

    Parameters
    ----------
    f : an open result file with a ``/bands_path`` group.
    outdir : figure directory (created if needed).
    requested : ``--bands``: "all", band indices, or None for the default rule.

    Returns
    -------
    list of str
        The PNG and PDF paths, or [] after one stderr line saying why (a band index
        outside the file's bands).
    """
    g = f["bands_path"]
    energies, s = g["energies"][()], g["distance"][()]
    nb = energies.shape[1]
    edges = g["window_edges"][()] if "window_edges" in g else None
    e_ref = reference_energy(f)
    n_max = nb if edges is not None else PATH_MAX_BANDS
    try:
        idx = choose_bands(energies.mean(axis=0), e_ref, n_max, requested)
    except ValueError as exc:
        return skip(NAME, str(exc))
    attrs = g.attrs
    fig, axes = new_figure(height=2.6, legend_row=0.22 if edges is not None else 0.0)
    ax = axes[0, 0]
    _ticks(ax, g)
    if edges is not None:
        _window(fig, ax, s, energies, edges, idx)
        title = (f"{attrs.get('solver', '')} window: {nb} bands nearest "
                 f"{float(attrs.get('target_meV', np.nan)):.4g} meV")
    else:
        for n in idx:
            ax.plot(s, energies[:, n], color=COLOURS[0], ls="-", lw=1.0)
        lo, hi = _limits(ax, energies[:, idx])
        title = f"{nb} bands"
        if idx.size < nb:
            title = f"bands {band_range_text(idx)} of {nb} around {e_ref:.4g} meV"
            note(NAME, f"{title} (--bands all: every band)")
            if lo < e_ref < hi:
                ax.axhline(e_ref, color="0.5", ls=":", lw=0.8)
    ax.set_title(title)
    return save(fig, outdir, NAME)
