"""Paths through the Brillouin zone: named points, path text, and points along a path.

Contract
--------
A path is written as tokens separated by spaces (or ``;``): a named point or two reduced
coordinates ``f1,f2`` (k = f1 b1 + f2 b2; ``1/3`` style fractions allowed). The named points
(Cartesian, in the model's inverse length unit) are

- Γ (also written ``G``) = 0;
- hexagonal lattices (b1, b_n of equal length at 60°): K = (b1 + b_n)/3, K' = −K, M = b1/2;
- other lattices: X = b1/2, Y = b2/2, S = M = (b1 + b2)/2;

and a model that defines ``high_symmetry_points()`` (the Bistritzer–MacDonald and atomistic
TBG models: K is the moiré Dirac point of layer 1) overrides these names with its own.

The corners c_0 … c_m are joined by straight segments of lengths L_i = |c_{i+1} − c_i| > 0,
L = Σ L_i. ``N`` points are distributed by segment length: segment i gets m_i ≥ 1 intervals,
Σ m_i = N − 1, m_i the largest-remainder rounding of (N − 1) L_i / L, and the points are
c_i + (j/m_i)(c_{i+1} − c_i), j = 0 … m_i − 1, followed by c_m. Every corner is a point of
the path; the distance of a point is its exact arc length s from c_0, and the tick of corner
i is s(c_i). Everything here is local (no MPI) and deterministic, so every rank builds the
same points bit for bit.
"""

from __future__ import annotations

import itertools

import numpy as np

NAMES = ("G", "Γ", "K", "K'", "M", "X", "Y", "S")


def tokens(text: str) -> list[str]:
    """The tokens of a path text (split at spaces and ``;``)."""
    return text.replace(";", " ").split()


def eval_fraction(text: str) -> float:
    """``'0.5'`` or ``'1/3'`` as a finite float (ValueError otherwise)."""
    num, _, den = text.partition("/")
    value = float(num) / (float(den) if den else 1.0)
    if not np.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def reduced(token: str) -> tuple[float, float]:
    """Reduced coordinates of a token ``'f1,f2'`` (ValueError if it is not one)."""
    parts = token.split(",")
    if len(parts) != 2:
        raise ValueError(f"not reduced coordinates 'f1,f2': {token!r}")
    try:
        return eval_fraction(parts[0]), eval_fraction(parts[1])
    except ZeroDivisionError:
        raise ValueError(f"division by zero in {token!r}") from None


def check_token(token: str) -> None:
    """Raise ValueError unless ``token`` is a named point or reduced coordinates."""
    if token not in NAMES:
        try:
            reduced(token)
        except ValueError:
            raise ValueError(f"path point {token!r}: use a named point ({', '.join(NAMES)}) "
                             "or reduced coordinates 'f1,f2' such as 1/3,1/3") from None


def high_symmetry_path(reciprocal: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Labels and Cartesian corners of Γ–K–M–Γ (hexagonal) or Γ–X–S–Γ (other lattices)."""
    b1, b2 = reciprocal
    length = np.linalg.norm(b1)
    gamma = np.zeros(2)
    for bn in (b2, -b2, b1 + b2, b1 - b2):
        if np.isclose(np.linalg.norm(bn), length) and np.isclose(b1 @ bn, 0.5 * length**2):
            return ["Γ", "K", "M", "Γ"], [gamma, (b1 + bn) / 3.0, 0.5 * b1, gamma]
    return ["Γ", "X", "S", "Γ"], [gamma, 0.5 * b1, 0.5 * (b1 + b2), gamma]


def named_points(reciprocal: np.ndarray, model: object = None) -> dict[str, np.ndarray]:
    """Cartesian named points of a lattice (module docstring), the model's own first."""
    labels, corners = high_symmetry_path(reciprocal)
    b1, b2 = reciprocal
    points = {"G": np.zeros(2)}
    if labels[1] == "K":
        points.update({"K": corners[1], "K'": -corners[1], "M": corners[2]})
    else:
        points.update({"X": 0.5 * b1, "Y": 0.5 * b2, "S": 0.5 * (b1 + b2),
                       "M": 0.5 * (b1 + b2)})
    own = getattr(model, "high_symmetry_points", None)
    if callable(own):
        points.update({name: np.asarray(k, dtype=float) for name, k in own().items()})
    points["Γ"] = points["G"]
    return points


def parse_path(text: str, reciprocal: np.ndarray, model: object = None
               ) -> tuple[list[str], list[np.ndarray]]:
    """Labels and Cartesian corners of a path text such as ``"G K M G"`` or ``"0,0 1/3,1/3"``.

    Raises
    ------
    ValueError
        For a token that is neither a named point of this lattice nor reduced coordinates,
        or fewer than two points.
    """
    points = named_points(reciprocal, model)
    labels, corners = [], []
    for token in tokens(text):
        if token in points:
            labels.append("Γ" if token == "G" else token)
            corners.append(points[token])
            continue
        if token in NAMES:
            have = ", ".join(sorted(set(points) - {"G"}))
            raise ValueError(f"path point {token!r} is not defined for this lattice (named "
                             f"points: {have}); use reduced coordinates 'f1,f2'")
        check_token(token)
        f1, f2 = reduced(token)
        labels.append(f"({token})")
        corners.append(f1 * reciprocal[0] + f2 * reciprocal[1])
    if len(corners) < 2:
        raise ValueError(f"path {text!r} needs at least two points")
    return labels, corners


def intervals(lengths: np.ndarray, n: int) -> np.ndarray:
    """Intervals m_i ≥ 1 per segment, Σ m_i = n − 1, by largest remainder of (n−1) L_i/L.

    Raises ValueError when n − 1 is smaller than the number of segments.
    """
    nseg = lengths.size
    if n - 1 < nseg:
        raise ValueError(f"{n} points cannot reach the {nseg + 1} corners of the path")
    quota = (n - 1) * lengths / lengths.sum()
    m = np.maximum(np.floor(quota).astype(int), 1)
    while m.sum() < n - 1:  # the largest remainders get one more (ties: first segment)
        m[np.argmax(quota - m)] += 1
    while m.sum() > n - 1:  # raised to 1 above their quota: take back from the smallest
        free = np.where(m > 1, quota - m, np.inf)
        m[np.argmin(free)] -= 1
    return m


def sample_path(corners: list[np.ndarray], n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points k (n, 2), their arc length s (n,) and the corners' arc length (ticks).

    Raises
    ------
    ValueError
        For a segment of zero length or fewer points than corners.
    """
    corners = [np.asarray(c, dtype=float) for c in corners]
    lengths = np.array([np.linalg.norm(b - a) for a, b in itertools.pairwise(corners)])
    scale = max(max(float(np.linalg.norm(c)) for c in corners), 1e-300)
    for i, length in enumerate(lengths):
        if length <= 1e-12 * scale:
            raise ValueError(f"segment {i + 1} of the path has zero length (corners {i + 1} "
                             f"and {i + 2} are the same k-point)")
    m = intervals(lengths, n)
    ticks = np.concatenate([[0.0], np.cumsum(lengths)])
    k, s = [], []
    for i, (a, b) in enumerate(itertools.pairwise(corners)):
        t = np.arange(m[i]) / m[i]
        k.append(a[None, :] + t[:, None] * (b - a)[None, :])
        s.append(ticks[i] + t * lengths[i])
    k.append(corners[-1][None, :])
    s.append(ticks[-1:])
    return np.concatenate(k), np.concatenate(s), ticks
