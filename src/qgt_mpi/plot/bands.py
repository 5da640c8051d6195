"""Band structure along a high-symmetry path and the bandwidth W(R_c) of truncated models.

Both figures rebuild the model from the deck text stored in the result file (root attribute
``input_text``), so they need no k-resolved data: Γ–K–M–Γ for hexagonal lattices
(Γ–X–S–Γ otherwise), the parent (dispersive) bands of a flattened model next to the flat ones,
and W/Δ of the model truncated at R_c = 1..8 lattice constants (theory §2.4).
"""

from __future__ import annotations

import itertools
import math

import h5py
import numpy as np

from qgt_mpi.configure import model_from_config
from qgt_mpi.io.deck import InputError, parse_deck
from qgt_mpi.models import bandwidth, build_model, load_model, truncate
from qgt_mpi.plot.style import COLOURS, fit_line, new_figure, save
from qgt_mpi.solvers.dense import DenseSolver

R_CUTS = np.arange(1, 9)
NFINE = 48
N_PATH = 301


def high_symmetry_path(reciprocal: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Labels and Cartesian corners of Γ–K–M–Γ (hexagonal) or Γ–X–S–Γ (other lattices)."""
    b1, b2 = reciprocal
    length = np.linalg.norm(b1)
    for bn in (b2, -b2, b1 + b2, b1 - b2):
        if np.isclose(np.linalg.norm(bn), length) and np.isclose(b1 @ bn, 0.5 * length**2):
            gamma = np.zeros(2)
            return ["Γ", "K", "M", "Γ"], [gamma, (b1 + bn) / 3.0, 0.5 * b1, gamma]
    gamma = np.zeros(2)
    return ["Γ", "X", "S", "Γ"], [gamma, 0.5 * b1, 0.5 * (b1 + b2), gamma]


def named_points(reciprocal: np.ndarray) -> dict[str, np.ndarray]:
    """Cartesian high-symmetry points: Γ, K, K', M (hexagonal) or X, Y, S, M (other)."""
    labels, corners = high_symmetry_path(reciprocal)
    b1, b2 = reciprocal
    points = {"Γ": np.zeros(2), "G": np.zeros(2)}
    if labels[1] == "K":
        points.update({"K": corners[1], "K'": -corners[1], "M": corners[2]})
    else:
        points.update({"X": 0.5 * b1, "Y": 0.5 * b2, "S": 0.5 * (b1 + b2),
                       "M": 0.5 * (b1 + b2)})
    return points


def parse_path(text: str, reciprocal: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Labels and corners of a path such as "G K M G" or "0,0 0.5,0 1/3,1/3 G".

    A token is a named point (:func:`named_points`; "G" is Γ) or two reduced coordinates
    "f1,f2" (k = f1 b1 + f2 b2; fractions like 1/3 allowed). Raises ValueError otherwise.
    """
    points = named_points(reciprocal)
    labels, corners = [], []
    for token in text.replace(";", " ").split():
        if token in points:
            labels.append("Γ" if token == "G" else token)
            corners.append(points[token])
            continue
        try:
            f1, f2 = (float(eval_fraction(p)) for p in token.split(","))
        except ValueError:
            raise ValueError(f"path point {token!r}: use one of {sorted(points)} or "
                             "reduced coordinates 'f1,f2'") from None
        labels.append(f"({token})")
        corners.append(f1 * reciprocal[0] + f2 * reciprocal[1])
    if len(corners) < 2:
        raise ValueError(f"path {text!r} needs at least two points")
    return labels, corners


def eval_fraction(text: str) -> float:
    """'0.5' or '1/3' as a float (ValueError otherwise)."""
    num, _, den = text.partition("/")
    return float(num) / (float(den) if den else 1.0)


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
        right += [(truncate(model, rc, NFINE), ls, f"truncated $R_c$ = {rc} a")
                  for rc, ls in ((2, "--"), (4, ":"))]
    return [(f"parent {spec.kind} bands", [(parent, "-", None)]),
            (rf"flattened, $\Delta$ = {spec.flatten.gap:.3g} meV", right)]


def _stored_panels(f: h5py.File) -> list[tuple[str, list]] | None:
    """Panels of a model stored in the file (/model/definition, Python API runs), or None."""
    if "model/definition" not in f:
        return None
    model = load_model(f.filename, group="/model/definition")
    return [(f"{model.describe().get('kind', 'model')} model", [(model, "-", None)])]


def plot_band_path(f: h5py.File, outdir: str, path: str | None = None) -> list[str]:
    """Bands along a k-path of the deck's model (and its parent if flattened).

    ``path``: e.g. "G K M G" or reduced coordinates (:func:`parse_path`); default Γ–K–M–Γ
    (hexagonal) or Γ–X–S–Γ.
    """
    config = _config(f)
    try:
        panels = _stored_panels(f) if config is None else _panels(config)
    except InputError:  # the deck's model files are not reachable from here
        return []
    if panels is None:
        return []
    reciprocal = panels[0][1][0][0].reciprocal
    if path:
        labels, corners = parse_path(path, reciprocal)
    else:
        labels, corners = high_symmetry_path(reciprocal)
    k, s, ticks = path_points(corners)
    fig, axes = new_figure(ncols=len(panels), height=2.4)
    for ax, (title, curves) in zip(axes[0], panels, strict=True):
        for i, (model, ls, label) in enumerate(curves):
            eps = _energies(model, k)
            ax.plot(s, eps, ls, color=COLOURS[i], label=[label] + [None] * (eps.shape[1] - 1))
        ax.set_xticks(ticks, labels)
        ax.set_xlim(ticks[0], ticks[-1])
        for t in ticks[1:-1]:
            ax.axvline(t, color="0.5", lw=0.8)
        ax.set_ylabel(r"energy $\varepsilon_n(\mathbf{k})$  [meV]")
        ax.set_xlabel(r"wave vector $\mathbf{k}$ along the path")
        ax.set_title(title)
        if curves[0][2] is not None:
            ax.legend(loc="best")
    return save(fig, outdir, "bands_path")


def truncation_bandwidths(kind: str, params: dict, gap: float) -> np.ndarray:
    """W/Δ (largest over bands) of the flattened model truncated at each R_c in R_CUTS."""
    flat = build_model(kind, params, {"gap": gap, "range": math.inf, "nfine": NFINE})
    return np.array([bandwidth(truncate(flat, rc, NFINE), NFINE).max() / gap
                     for rc in R_CUTS])


def plot_truncation_bandwidth(f: h5py.File, outdir: str, force: bool = False) -> list[str]:
    """Log-scale W/Δ vs R_c with an exponential fit, for a truncated flat-band deck.

    Drawn only when the run used a truncated model (finite ``range``), or with ``force``
    for any flattened deck: W(R_c) costs seconds per R_c and does not depend on the run.
    """
    config = _config(f)
    if config is None or config.model.flatten is None:
        return []
    if not force and math.isinf(config.model.flatten.range):
        return []
    spec = config.model
    ratio = truncation_bandwidths(spec.kind, dict(spec.params), spec.flatten.gap)
    slope, icpt = fit_line(R_CUTS, np.log(ratio))
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.semilogy(R_CUTS, ratio, "o", ls="none", label=f"computed ({NFINE}×{NFINE} FFT, k-grid)")
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
