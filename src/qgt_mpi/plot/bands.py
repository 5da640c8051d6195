"""Band structure along a high-symmetry path and the bandwidth W(R_c) of truncated models.

Both figures rebuild the model from the deck text stored in the result file (root attribute
``input_text``), so they need no k-resolved data: Γ–K–M–Γ for hexagonal lattices
(Γ–X–S–Γ otherwise), the parent (dispersive) bands of a flattened model next to the flat ones,
and W/Δ of the model truncated at R_c = 1..8 lattice constants (theory §2.4). The rebuilt
path is diagonalised densely, so models above ``REBUILD_MAX_ORBITALS`` orbitals are refused
with one line (a ``[bands]`` section computes their path with the run's solver, drawn by
plot/bandpath.py); with many bands the rule of plot/bandpath.py chooses which are drawn.
Path syntax and named points: qgt_mpi.models.kpath.
"""

from __future__ import annotations

import itertools
import math

import h5py
import numpy as np

from qgt_mpi.io.deck import InputError, parse_deck
from qgt_mpi.models import bandwidth, build_model, load_model, truncate
from qgt_mpi.models.flatten import NFINE_DEFAULT
from qgt_mpi.models.kpath import high_symmetry_path, parse_path
from qgt_mpi.plot.bandpath import (
    PATH_MAX_BANDS,
    band_range_text,
    choose_bands,
    path_axes,
    reference_energy,
)
from qgt_mpi.plot.style import COLOURS, fit_line, new_figure, note, save, skip
from qgt_mpi.run.setup import model_from_config
from qgt_mpi.solvers.dense import DenseSolver

R_CUTS = np.arange(1, 9)
N_PATH = 301
REBUILD_MAX_ORBITALS = 400  # 301 dense solves of this size take ~20 s
NAME = "bands_path"


def path_points(corners: list[np.ndarray], n: int = N_PATH) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """k-points along the corner-to-corner path, their arc length and the corner positions."""
    seg = [np.linalg.norm(b - a) for a, b in itertools.pairwise(corners)]
    ticks = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, ticks[-1], n)
    k = np.empty((n, 2))
    for i, (a, b) in enumerate(itertools.pairwise(corners)):
        inside = (s >= ticks[i]) & (s <= ticks[i + 1])
        k[inside] = a + np.outer((s[inside] - ticks[i]) / seg[i], b - a)
    return k, s, ticks


def _energies(model, k: np.ndarray) -> np.ndarray:
    return DenseSolver().solve(model, k, velocities=False).energies


def _config(f: h5py.File):
    """The run's deck, or None (no deck text: a Python API run, or a foreign file)."""
    text = f.attrs.get("input_text")
    if text is None:
        return None
    source = str(f.attrs.get("input_file", "<string>"))  # model file paths are relative to it
    try:
        return parse_deck(text.decode() if isinstance(text, bytes) else str(text), source)
    except InputError:
        return None


def _panels(config) -> list[tuple[str, list]]:
    """(title, [(model, style, label), ...]) for each panel of the band figure."""
    spec = config.model
    model = model_from_config(config)
    if spec.flatten is None:
        return [(f"{spec.kind} model", [(model, "-", None)])]
    parent = build_model(spec.kind, dict(spec.params))
    right = [(model, "-", "deck model")]
    if math.isinf(spec.flatten.range):
        right = [(model, "-", "exact flattening")]
        right += [(truncate(model, rc, NFINE_DEFAULT), ls, f"truncated $R_c$ = {rc} a")
                  for rc, ls in ((2, "--"), (4, ":"))]
    return [(f"parent {spec.kind} bands", [(parent, "-", None)]),
            (rf"flattened, $\Delta$ = {spec.flatten.gap:.3g} meV", right)]


def _stored_panels(f: h5py.File) -> list[tuple[str, list]] | None:
    """Panels of a model stored in the file (/model/definition, Python API runs), or None."""
    if "model/definition" not in f:
        return None
    model = load_model(f.filename, group="/model/definition")
    return [(f"{model.describe().get('kind', 'model')} model", [(model, "-", None)])]


def plot_band_path(f: h5py.File, outdir: str, path: str | None = None,
                   requested: list[int] | str | None = None) -> list[str]:
    """Bands along a k-path of the deck's model (and its parent if flattened), rebuilt.

    ``path``: e.g. "G K M G" or reduced coordinates (qgt_mpi.models.kpath); default Γ–K–M–Γ
    (hexagonal) or Γ–X–S–Γ. ``requested``: bands to draw ("all" or indices; default: the
    rule of plot/bandpath.py above PATH_MAX_BANDS bands). A figure that cannot be drawn
    says why in one line (plot.style.skip).
    """
    config = _config(f)
    try:
        panels = _stored_panels(f) if config is None else _panels(config)
    except InputError as exc:  # the deck's model files are not reachable from here
        return skip(NAME, f"the deck's model cannot be rebuilt here ({exc})")
    if panels is None:
        return skip(NAME, "the file holds neither the deck (input_text) nor a stored model")
    model0 = panels[0][1][0][0]
    if model0.norb > REBUILD_MAX_ORBITALS:
        return skip(NAME, f"the model has {model0.norb} orbitals, too many to diagonalise "
                    f"densely here (> {REBUILD_MAX_ORBITALS}); add a [bands] section to the "
                    "deck and run qgt-mpi bands DECK, then plot that file")
    if path:
        labels, corners = parse_path(path, model0.reciprocal, model0)
    else:
        labels, corners = high_symmetry_path(model0.reciprocal)
    k, s, ticks = path_points(corners)
    e_ref = reference_energy(f)
    fig, axes = new_figure(ncols=len(panels), height=2.4)
    for ax, (title, curves) in zip(axes[0], panels, strict=True):
        for i, (model, ls, label) in enumerate(curves):
            eps = _energies(model, k)
            try:
                idx = choose_bands(eps.mean(axis=0), e_ref, PATH_MAX_BANDS, requested)
            except ValueError as exc:
                return skip(NAME, str(exc))
            if idx.size < eps.shape[1]:
                title = f"{title}, bands {band_range_text(idx)} of {eps.shape[1]}"
                note(NAME, f"{title} (--bands all: every band)")
            eps = eps[:, idx]
            ax.plot(s, eps, ls, color=COLOURS[i], label=[label] + [None] * (eps.shape[1] - 1))
        path_axes(ax, ticks, labels)
        ax.set_title(title)
        if curves[0][2] is not None:
            ax.legend(loc="best")
    return save(fig, outdir, NAME)


def truncation_bandwidths(kind: str, params: dict, gap: float) -> np.ndarray:
    """W/Δ (largest over bands) of the flattened model truncated at each R_c in R_CUTS."""
    flat = build_model(kind, params, {"gap": gap, "range": math.inf, "nfine": NFINE_DEFAULT})
    return np.array([bandwidth(truncate(flat, rc, NFINE_DEFAULT), NFINE_DEFAULT).max() / gap
                     for rc in R_CUTS])


def plot_truncation_bandwidth(f: h5py.File, outdir: str, force: bool = False) -> list[str]:
    """Log-scale W/Δ vs R_c with an exponential fit, for a truncated flat-band deck.

    Drawn only when the run used a truncated model (finite ``range``), or with ``force``
    for any flattened deck: W(R_c) costs seconds per R_c and does not depend on the run.
    """
    config, name = _config(f), "bandwidth_vs_rcut"
    if config is None:
        return skip(name, "the file holds no readable deck (input_text)")
    if config.model.flatten is None:
        return skip(name, "the model is not flattened (no [model.flatten])")
    if not force and math.isinf(config.model.flatten.range):
        return skip(name, 'exact flattening (range = "inf"); --bandwidth draws W(R_c) of its '
                    "truncations (seconds per R_c)")
    spec = config.model
    ratio = truncation_bandwidths(spec.kind, dict(spec.params), spec.flatten.gap)
    slope, icpt = fit_line(R_CUTS, np.log(ratio))
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.semilogy(R_CUTS, ratio, "o", ls="none",
                label=f"computed ({NFINE_DEFAULT}×{NFINE_DEFAULT} FFT, k-grid)")
    ax.semilogy(R_CUTS, np.exp(icpt + slope * R_CUTS), color="k", ls=":", lw=1,
                label=rf"$\propto e^{{-R_c/\xi}}$, $\xi$ = {-1.0 / slope:.3g} a")
    if math.isfinite(spec.flatten.range) and "bands" in f:
        w = f["bands"].attrs.get("bandwidth_over_gap")
        if w is not None:
            ax.semilogy([spec.flatten.range], [np.max(w)], "*", color=COLOURS[5], ms=8,
                        label="this run (its k-grid)")
    ax.set_xlabel(r"hopping range $R_c$  [lattice constants a]")
    ax.set_ylabel(r"bandwidth $W/\Delta$")
    ax.set_title(rf"truncated flat {spec.kind} model, $\Delta$ = {spec.flatten.gap:.3g} meV")
    ax.legend()
    return save(fig, outdir, "bandwidth_vs_rcut")
