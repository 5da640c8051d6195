"""The ``[model]`` section of a deck, checked against the kind's parameter spec.

The spec is :data:`qgt_mpi.models.registry.KINDS` (one table for the deck and the builders);
this module turns each parameter type into a checker that names the dotted key on error.
Paths are taken relative to the deck's directory. No MPI, no file reading here: the files a
model names are read when the model is built (rank 0, then broadcast).
"""

from __future__ import annotations

import math
import os
from functools import partial

import numpy as np

from qgt_mpi.io.checks import (
    ENERGY_MAX_MEV,
    MISSING,
    InputError,
    Table,
    integer,
    magnitude,
    number,
    string,
    type_error,
    within,
)
from qgt_mpi.models.registry import KINDS, REQUIRED, Param

_KIND_LIST = ", ".join(KINDS)


def _path(key: str, value: object, base: str) -> str:
    text = string(key, value)
    if not text:
        raise InputError(key, value, "must be a file name")
    return text if os.path.isabs(text) or not base else os.path.join(base, text)


def _choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    text = string(key, value)
    if text not in choices:
        raise InputError(key, value, f"must be one of {', '.join(map(repr, choices))}")
    return text


def _valley(key: str, value: object) -> int | str:
    """A continuum model's valley: 1, -1 or "both" (both valleys, block diagonal)."""
    if value == "both" or (isinstance(value, int | float) and not isinstance(value, bool)
                           and value in (1, -1)):
        return value if value == "both" else int(value)
    raise InputError(key, value, 'must be 1, -1 or "both" (the time-reversal partner '
                                 "solved alongside)")


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                           for v in value)


def _plane(key: str, value: object) -> list:
    """[i, j] (lattice-vector indices) or [[n1, n2, n3], [m1, m2, m3]] (integer vectors)."""
    if isinstance(value, list) and len(value) == 2:
        if _ints(value) and value[0] != value[1] and set(value) <= {1, 2, 3}:
            return list(value)
        if all(_ints(v) and len(v) == 3 for v in value):
            return [list(v) for v in value]
    raise InputError(key, value, "must be two different lattice-vector indices out of 1, 2, 3 "
                                 "(e.g. [1, 2]) or two integer vectors [[1, 0, 0], [0, 0, 1]]")


def _vector(key: str, value: object, unit: str = "", length: int | None = None) -> list[float]:
    if not isinstance(value, list) or not value:
        raise type_error(key, value, "a non-empty list of numbers")
    if length is not None and len(value) != length:
        raise InputError(key, value, f"must have {length} entries")
    return [number(f"{key}[{i}]", v, unit) for i, v in enumerate(value)]


def _matrix(key: str, value: object, unit: str, shape: tuple) -> np.ndarray:
    rows, cols = shape
    if not isinstance(value, list) or not value or (rows is not None and len(value) != rows):
        want = f"{rows} rows" if rows is not None else "a non-empty list of rows"
        raise InputError(key, value, f"must be a list of lists of numbers ({want} of {cols})")
    return np.array([_vector(f"{key}[{i}]", r, unit, cols) for i, r in enumerate(value)])


def _amplitude(key: str, value: object) -> complex:
    """A hopping amplitude: a number, or [Re, Im]."""
    if isinstance(value, list):
        re, im = _vector(key, value, "meV", 2)
        return complex(re, im)
    return complex(number(key, value, "meV"))


def _hop_table(key: str, entry: dict, defaults: dict) -> tuple:
    t = Table(entry, key, {"R", "a", "b", "t", "phase"}, defaults)
    R = t.get("R", lambda k, v: [integer(f"{k}[{i}]", x, -(1 << 30)) for i, x in
                                 enumerate(v if isinstance(v, list) and len(v) == 2 else
                                           _bad_cell(k, v))], what=" ([R1, R2])")
    a = t.get("a", partial(integer, low=0), what=" (orbital index from 0)")
    b = t.get("b", partial(integer, low=0), what=" (orbital index from 0)")
    amp = t.get("t", _amplitude, what=" (meV: a number or [Re, Im])")
    phase = number(t.key("phase"), entry["phase"], "radians") if "phase" in entry else 0.0
    return R, a, b, amp * complex(math.cos(phase), math.sin(phase))


def _bad_cell(key: str, value: object):
    raise InputError(key, value, "must be a list of two integers [R1, R2]")


def _hop_row(key: str, row: list) -> tuple:
    if len(row) != 6:
        raise InputError(key, row, "a hopping row is [R1, R2, a, b, Re t, Im t] (6 numbers)")
    R = [integer(f"{key}[{i}]", row[i], -(1 << 30)) for i in (0, 1)]
    a, b = (integer(f"{key}[{i}]", row[i], 0) for i in (2, 3))
    return R, a, b, complex(number(f"{key}[4]", row[4], "meV"), number(f"{key}[5]", row[5]))


def _hoppings(key: str, value: object, defaults: dict) -> dict:
    if not isinstance(value, list) or not value:
        raise type_error(key, value, "a non-empty list of hopping tables {R, a, b, t} or "
                                     "rows [R1, R2, a, b, Re t, Im t]")
    rows = []
    for i, entry in enumerate(value):
        k = f"{key}[{i}]"
        if isinstance(entry, dict):
            rows.append(_hop_table(k, entry, defaults))
        elif isinstance(entry, list):
            rows.append(_hop_row(k, entry))
        else:
            raise type_error(k, entry, "a table {R, a, b, t} or a row [R1, R2, a, b, Re, Im]")
    return {"R": np.array([r[0] for r in rows], dtype=np.int64).reshape(-1, 2),
            "a": np.array([r[1] for r in rows], dtype=np.int64),
            "b": np.array([r[2] for r in rows], dtype=np.int64),
            "t": np.array([r[3] for r in rows], dtype=complex)}


def _per_layer(key: str, value: object, unit: str) -> float | list[float]:
    """A number (every layer) or a non-empty list of numbers (one per layer)."""
    if isinstance(value, list):
        return [magnitude(f"{key}[{i}]", v, ENERGY_MAX_MEV, unit) for i, v in
                enumerate(value if value else _bad_layers(key, value))]
    return magnitude(key, value, ENERGY_MAX_MEV, unit)


def _bad_layers(key: str, value: object):
    raise InputError(key, value, "must be a number or a non-empty list (one per layer)")


def _table(key: str, value: object, schema: dict[str, Param], base: str,
           defaults: dict) -> dict:
    """A sub-table ([model.relax]) checked key by key against ``schema``."""
    if not isinstance(value, dict):
        raise type_error(key, value, f"a table with keys {', '.join(schema)}")
    t = Table(value, key, set(schema), defaults)
    out = {}
    for name, p in schema.items():
        if p.default is None and name not in t.data:
            continue
        default = MISSING if p.default is REQUIRED else p.default
        out[name] = t.get(name, _checker(p, base, defaults), default, _what(p))
    return out


def _number(p: Param):
    """Checker of a number parameter: energies bounded, ``bounds`` when the spec has them."""
    if p.bounds is not None:
        return partial(within, low=p.bounds[0], high=p.bounds[1], unit=p.unit)
    if p.unit == "meV":  # energies bounded (docs/input.md)
        return partial(magnitude, high=ENERGY_MAX_MEV, unit=p.unit)
    return partial(number, unit=p.unit)


def _checker(p: Param, base: str, defaults: dict):
    """(key, value) -> checked value for one parameter spec."""
    low, high = p.bounds if p.bounds is not None else (0, None)
    return {
        "number": _number(p),
        "integer": partial(integer, low=int(low), high=None if high is None else int(high)),
        "string": string,
        "per_layer": partial(_per_layer, unit=p.unit),
        "table": partial(_table, schema=p.schema or {}, base=base, defaults=defaults),
        "path": partial(_path, base=base),
        "choice": partial(_choice, choices=p.choices),
        "plane": _plane,
        "matrix": partial(_matrix, unit=p.unit, shape=p.shape),
        "vector": partial(_vector, unit=p.unit),
        "hoppings": partial(_hoppings, defaults=defaults),
        "valley": _valley,
    }[p.type]


def _what(p: Param) -> str:
    unit = f", {p.unit}" if p.unit else ""
    return f" ({p.type}{unit}{': ' + p.doc if p.doc else ''})"


def model_params(top: Table, source: str) -> tuple[str, dict, Table]:
    """Kind, checked parameters and the ``[model]`` table of a deck.

    Raises
    ------
    InputError naming the key for an unknown kind or a bad, missing or unknown parameter.
    """
    raw = top.data.get("model")
    if isinstance(raw, dict):  # the kind decides which other keys are allowed: check it first
        kind = raw.get("kind", MISSING)
        if kind is MISSING:
            raise InputError("model.kind", kind, f"required key is missing (one of: {_KIND_LIST})")
        if string("model.kind", kind) not in KINDS:
            raise InputError("model.kind", kind, f"unknown model (allowed: {_KIND_LIST})")
    spec = KINDS[raw["kind"]].params if isinstance(raw, dict) else {}
    t = top.sub("model", {"kind", "flatten", "supercell", *spec})
    base = "" if source.startswith("<") else os.path.dirname(source)
    params = {}
    for name, p in spec.items():
        if p.default is None and name not in t.data:
            continue  # optional and absent
        default = MISSING if p.default is REQUIRED else p.default
        params[name] = t.get(name, _checker(p, base, top.defaults), default, _what(p))
    return str(t.data["kind"]), params, t  # (checked above; t exists only for a table)
