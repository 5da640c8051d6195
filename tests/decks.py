"""Input decks the tests share: TOML text put together from named tables (docs/input.md).

Each builder returns the text of one table and ``deck_text`` joins them under the top-level
keys, so a test states only what its deck changes::

    deck_text(HALDANE, kgrid_table(4), sweep_table(delta=[0.05]),
              table("output", kresolved=False), title="x")

Values are written as TOML (``toml``): lists stay lists, dicts become inline tables (``span``
builds a ``{start, stop, num, spacing}`` axis), a keyword set to None is left out.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence

# --- TOML text ------------------------------------------------------------------------------


def toml_key(key: str) -> str:
    """A key as TOML: bare when it can be, quoted otherwise."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml(value: object) -> str:
    """A Python value as TOML (inf/nan as TOML floats, dicts as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_key(k)} = {toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def lines(**keys: object) -> str:
    """``key = value`` lines, one per keyword that is not None."""
    return "".join(f"{toml_key(k)} = {toml(v)}\n" for k, v in keys.items() if v is not None)


def table(name: str, **keys: object) -> str:
    """The table ``[name]`` with one line per keyword that is not None."""
    return f"[{name}]\n" + lines(**keys)


def deck_text(*tables: str, **top: object) -> str:
    """Top-level keys (``title``, ``degeneracy``) first, then the tables, as one deck."""
    return lines(**top) + "".join(tables)


def span(start: float, stop: float, num: int, spacing: str | None = None) -> dict:
    """A sweep axis given as a range (``spacing`` "log" or "linear"; left out: linear)."""
    axis = {"start": start, "stop": stop, "num": num}
    return axis if spacing is None else {**axis, "spacing": spacing}


# --- tables -------------------------------------------------------------------------------


def kgrid_table(n1: int, n2: int | None = None) -> str:
    """``[kgrid]`` of n1 × n2 points (n1 × n1 when n2 is not given)."""
    return table("kgrid", size=[n1, n1 if n2 is None else n2])


def sweep_table(temperature: object = (1.0,), mu: object = (0.0,), delta: object = (0.1,),
                **more: object) -> str:
    """``[sweep]``: one point (1 K, μ = 0, δ = 0.1 meV) unless told; ``mu=None`` for a
    fixed-filling sweep (``filling=..., filling_bands=...``)."""
    return table("sweep", temperature=temperature, mu=mu, delta=delta, **more)


def haldane_table(**changes: object) -> str:
    """``[model]``: the Haldane model of HALDANE_PARAMS with some parameters changed."""
    return table("model", kind="haldane", **{**HALDANE_PARAMS, **changes})


# --- models ---------------------------------------------------------------------------------

# The dispersive Haldane model of the CLI-level tests (C = ∓1, gap ≈ 2.5 meV at K); the
# Wannier90 files of w90_util and the API tests use the same numbers.
HALDANE_PARAMS = {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.1}
HALDANE = table("model", kind="haldane", **HALDANE_PARAMS)
# The Haldane model with mass (0) and phi (π/2) left to their defaults.
HALDANE_T = table("model", kind="haldane", t1=1.0, t2=0.3)
# The paper's setting (inputs/haldane_flat.toml): φ = π/2, M = 0, flattened to ±0.25 meV.
PAPER = (table("model", kind="haldane", t1=1.0, t2=0.3, mass=0.0, phi=math.pi / 2)
         + table("model.flatten", gap=0.5))
# Bistritzer–MacDonald at 1.05°, 2 shells: 76 plane waves; with a sublattice mass of 10 meV
# the two flat bands are gapped, with C = ±1.
BM_PARAMS = {"theta": 1.05, "shells": 2}
BM = table("model", kind="bm_continuum", **BM_PARAMS)
BM_MASSIVE = table("model", kind="bm_continuum", **BM_PARAMS, mass=10.0)
