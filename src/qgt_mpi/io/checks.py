"""Validation primitives of the input deck: the one-line InputError and typed getters.

Split from :mod:`qgt_mpi.io.deck` (which holds the dataclasses and the section readers).
Every check takes the dotted key it is reading so errors can name it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_TYPE_NAMES = {bool: "a boolean", str: "a string", int: "an integer", float: "a float",
               list: "a list", dict: "a table"}


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


class InputError(Exception):
    """A bad input deck: ``str(err)`` is one line, ``"<key> = <value repr>: <allowed>"``.

    Parameters
    ----------
    key : str
        Dotted key with list indices (``"sweep.delta[1][0]"``), or ``"INPUT"`` for the file.
    value : object
        The offending value (:data:`MISSING` for an absent required key).
    allowed : str
        What would have been accepted.
    """

    input_error = True  # exit status 2 wherever it surfaces (parallel.errors, qgt_mpi.status)

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{key} = {shown}: {allowed}".replace("\n", " "))

    def __reduce__(self) -> tuple[type[InputError], tuple[str, object, str]]:
        """Picklable (the CLI broadcasts a rank-0 read error to every rank)."""
        return (type(self), (self.key, self.value, self.allowed))


def type_error(key: str, value: object, want: str) -> InputError:
    got = _TYPE_NAMES.get(type(value), type(value).__name__)
    return InputError(key, value, f"must be {want}, not {got}")


def number(key: str, value: object, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(key, value, f"a number{f' ({unit})' if unit else ''}")
    if not math.isfinite(value):
        raise InputError(key, value, "must be finite")
    return float(value)


def positive(key: str, value: object, unit: str = "", upper: float = math.inf) -> float:
    x, u = number(key, value, unit), f" {unit}" if unit else ""
    if x <= 0:
        raise InputError(key, value, f"must be > 0{u}")
    if x > upper:
        raise InputError(key, value, f"must be in (0, {upper:g}]{u}")
    return x


def integer(key: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(key, value, f"an integer >= {low}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InputError(key, value, f"must be an integer {allowed}")
    return value


# Numerically safe ranges (docs/input.md "Allowed ranges" gives the measurements behind them).
ENERGY_MAX_MEV = 1e6  # |hoppings|, |μ|, δ, gaps, U: 1 keV, far above any band model
DELTA_MIN_MEV = 1e-9  # δ: relative error of σ grows like (ε E/δ)²; see docs/input.md
DELTA_OVER_SCALE_MIN = 1e-12  # δ ≥ 1e-12 × energy scale keeps that error below 1e-6
TEMPERATURE_RANGE_K = (1e-9, 1e6)  # kernels exact down to 1e-20 K; κ loses digits > 1e8 K
CELL_INDEX_MAX = 10**6  # |R_i| of a hopping (lattice vectors): phases k·R stay exact in float64
LENGTH_MAX = 1e6  # |lattice vectors|, |orbital positions| (lattice constants or Å)


def within(key: str, value: object, low: float, high: float, unit: str,
           why: str = "") -> float:
    """A finite number in [low, high] (units ``unit``); the error names the range and why."""
    x = number(key, value, unit)
    if not low <= x <= high:
        reason = f" ({why})" if why else ""
        raise InputError(key, value, f"must be in [{low:g}, {high:g}] {unit}{reason}")
    return x


def magnitude(key: str, value: object, high: float, unit: str, why: str = "") -> float:
    """A finite number with |x| <= high."""
    x = number(key, value, unit)
    if abs(x) > high:
        reason = f" ({why})" if why else ""
        raise InputError(key, value, f"must satisfy |x| <= {high:g} {unit}{reason}")
    return x


def string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise type_error(key, value, "a string")
    return value


def boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise type_error(key, value, "a boolean (true or false)")
    return value


class Table:
    """One TOML table being read: rejects unknown keys and records the defaults it fills in."""

    def __init__(self, value: object, path: str, allowed: set[str], defaults: dict[str, object]):
        if not isinstance(value, dict):
            raise type_error(path or "INPUT", value, f"a table [{path}]" if path else "a table")
        self.data, self.path, self.defaults = value, path, defaults
        for name, item in value.items():
            if name not in allowed:
                raise InputError(self.key(name), item,
                                 f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, check: Callable[[str, object], T], default: object = MISSING,
            what: str = "") -> T:
        """Checked value of ``name``; the default (recorded) when absent; error if required."""
        if name in self.data:
            return check(self.key(name), self.data[name])
        if default is MISSING:
            raise InputError(self.key(name), MISSING, f"required key is missing{what}")
        self.defaults[self.key(name)] = default
        return check(self.key(name), default)

    def optional(self, name: str, check: Callable[[str, object], T]) -> T | None:
        """Checked value of ``name``, or None when absent (no default recorded)."""
        return check(self.key(name), self.data[name]) if name in self.data else None

    def sub(self, name: str, allowed: set[str], optional: bool = False) -> Table:
        """Sub-table ``name``; an empty one when it is absent and ``optional``."""
        if name not in self.data and not optional:
            raise InputError(self.key(name), MISSING, f"required section [{self.key(name)}]")
        return Table(self.data.get(name, {}), self.key(name), allowed, self.defaults)


def bounded_array(key: str, values: object, high: float, unit: str,
                  integral: bool = False) -> None:
    """Refuse a non-finite entry or one with |x| > ``high`` (``integral``: also a non-integer)
    in an array of model data; the error names ``key[index]``, the value and the range."""
    import numpy as np

    try:
        cplx = np.iscomplexobj(values)  # type: ignore[arg-type]
        arr = np.asarray(values, dtype=complex if cplx else float)
    except (TypeError, ValueError, OverflowError):
        raise InputError(key, values, f"must be numbers{f' ({unit})' if unit else ''}") \
            from None
    flat = arr.ravel()
    bad = ~np.isfinite(flat) | (np.abs(np.nan_to_num(flat, nan=np.inf)) > high)
    if integral:
        bad |= np.isfinite(flat) & (flat.real != np.round(flat.real))
    if np.any(bad):
        i = int(np.argmax(bad))
        idx = np.unravel_index(i, arr.shape) if arr.ndim else ()
        where = key + "".join(f"[{j}]" for j in idx)
        try:  # the value as given (an int stays an int in the message)
            value = np.asarray(values, dtype=object).ravel()[i]
        except (TypeError, ValueError, IndexError):
            value = (flat[i].real if not np.iscomplexobj(arr) else flat[i]).item()
        what = "integers" if integral else "finite"
        raise InputError(where, value, f"must be {what} with |x| <= {high:g} {unit}"
                         .rstrip())
