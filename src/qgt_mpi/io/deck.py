"""Input deck: TOML text -> validated, frozen :class:`RunConfig` (reference: ``docs/input.md``).

Every key is checked; a bad deck raises one :class:`InputError` whose one-line message names
the dotted key, the value, and what is allowed. No MPI here: the CLI reads the file on rank 0,
broadcasts the text and every rank calls :func:`parse_deck` on it. Units follow theory §1.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePath

import numpy as np

from qgt_mpi.io.checks import (
    DELTA_MIN_MEV,
    DELTA_OVER_SCALE_MIN,
    ENERGY_MAX_MEV,
    TEMPERATURE_RANGE_K,
    InputError,
    Table,
    boolean,
    integer,
    magnitude,
    number,
    positive,
    string,
    type_error,
    within,
)
from qgt_mpi.io.deck_bands import BandsSpec, parse_bands
from qgt_mpi.io.deck_models import model_params
from qgt_mpi.io.deck_solver import SolverSpec, SupercellSpec, parse_solver, parse_supercell
from qgt_mpi.models.flatten import NFINE_DEFAULT
from qgt_mpi.models.registry import KINDS

KGRID_MAX = 100_000  # per direction; the memory check refuses what the machine cannot hold
@dataclass(frozen=True)
class FlattenSpec:
    gap: float  # meV, > 0 (theory §2.3)
    range: float  # lattice constants; math.inf = exact flattening (theory §2.4)
    nfine: int  # FFT grid for the truncated model


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    params: dict[str, object]  # checked against models.registry.KINDS[kind].params
    flatten: FlattenSpec | None
    supercell: SupercellSpec | None = None


@dataclass(frozen=True)
class SweepSpec:
    temperature: np.ndarray  # (nT,) K, > 0
    mu: np.ndarray  # (nmu,) meV
    delta: np.ndarray  # (n_delta, w) meV, > 0; w = 1 (all bands) or the per-band length
    filling: np.ndarray | None = None  # (n_nu,) in (0, 1): fixed-filling sweep, mu unused
    filling_bands: tuple[int, ...] = (0,)  # band group whose filling is held fixed


@dataclass(frozen=True)
class OutputSpec:
    file: str
    kresolved: bool


@dataclass(frozen=True)
class RunSpec:
    chunk: int | None  # k-points per block; None: the default (run/blocks.default_chunk)
    progress_percent: float


@dataclass(frozen=True)
class SuperfluidSpec:
    """``[superfluid]``: geometric superfluid weight of an isolated flat band (theory §6)."""

    U: float  # meV, > 0: strength of the attractive on-site Hubbard interaction
    filling: float  # ν in (0, 1): filling of the flat band per spin
    n_orb: int | None  # orbitals carrying the uniform pairing; None = model.norb
    band: int  # index of the flat band (0 = lowest)
    temperature: np.ndarray  # (nT,) K, > 0
    minimal_metric: bool  # D_s from the minimal (True) or the ordinary (False) metric


@dataclass(frozen=True)
class RunConfig:
    title: str
    model: ModelSpec
    kgrid: tuple[int, int]
    sweep: SweepSpec
    output: OutputSpec
    run: RunSpec
    degeneracy: float
    text: str  # the deck as read, for provenance
    source: str
    defaults: dict[str, object]  # dotted key -> value filled in by default
    superfluid: SuperfluidSpec | None = None
    solver: SolverSpec = field(default_factory=SolverSpec)
    bands: BandsSpec | None = None  # [bands]: band structure along a path (io/deck_bands.py)


# --- scalar checks: (key, value) -> converted value, or InputError -----------------------------

# --- sections ----------------------------------------------------------------------------------

def _model(top: Table, source: str) -> ModelSpec:
    kind, params, t = model_params(top, source)  # io/deck_models.py: the kind's spec
    flatten = None
    if "flatten" in t.data:
        f = t.sub("flatten", {"gap", "range", "nfine"})
        flatten = FlattenSpec(gap=f.get("gap", _energy, what=" (number > 0, meV)"),
                              range=f.get("range", _range, "inf"),
                              nfine=f.get("nfine", partial(integer, low=8, high=4096),
                                             NFINE_DEFAULT))
    return ModelSpec(kind=kind, params=params, flatten=flatten,
                     supercell=parse_supercell(t))


def _range(key: str, value: object) -> float:
    if value == "inf" or (isinstance(value, float) and value == math.inf):
        return math.inf
    if isinstance(value, str):
        raise InputError(key, value, 'must be "inf" or a number > 0 (lattice constants)')
    return positive(key, value, "lattice constants")


def _size(key: str, value: object) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(key, value, "must be a list of two positive integers [N1, N2]")
    return (integer(f"{key}[0]", value[0], 1, KGRID_MAX),
            integer(f"{key}[1]", value[1], 1, KGRID_MAX))


def _axis(key: str, value: object, check: Callable, defaults: dict[str, object]) -> np.ndarray:
    """Sweep axis from a non-empty list or a {start, stop, num, spacing} table."""
    if isinstance(value, list) and value:
        return np.array([check(f"{key}[{i}]", v) for i, v in enumerate(value)], dtype=float)
    if not isinstance(value, dict):
        raise InputError(key, value, "must be a non-empty list or a table "
                                     "{start, stop, num, spacing}")
    t = Table(value, key, {"start", "stop", "num", "spacing"}, defaults)
    start, stop = t.get("start", check), t.get("stop", check)
    num = t.get("num", partial(integer, low=1, high=10_000_000))
    spacing = t.get("spacing", string, "linear")
    if spacing == "linear":
        return np.linspace(start, stop, num)
    if spacing != "log":
        raise InputError(t.key("spacing"), spacing, 'must be "linear" or "log"')
    for name, x in (("start", start), ("stop", stop)):
        if x <= 0:
            raise InputError(t.key(name), t.data[name], f"log spacing needs {name} > 0")
    return np.geomspace(start, stop, num)


def _delta(key: str, value: object, defaults: dict[str, object]) -> np.ndarray:
    """(n_delta, w) broadening array: scalar entries broadcast over the per-band length w."""
    if not isinstance(value, list) or not value:
        return _axis(key, value, _delta_value, defaults)[:, None]
    rows, width, first = [], None, None
    for i, entry in enumerate(value):
        if not isinstance(entry, list):
            if isinstance(entry, bool) or not isinstance(entry, (int, float)):
                raise type_error(f"{key}[{i}]", entry, "a number or a per-band list (meV)")
            rows.append([_delta_value(f"{key}[{i}]", entry)])
            continue
        if not entry:
            raise InputError(f"{key}[{i}]", entry, "per-band list must not be empty")
        if width is not None and len(entry) != width:
            raise InputError(f"{key}[{i}]", entry, "per-band lists must all have the same "
                                                   f"length ({width}, as {key}[{first}])")
        width, first = len(entry), (i if first is None else first)
        rows.append([_delta_value(f"{key}[{i}][{j}]", v) for j, v in enumerate(entry)])
    width = width or 1
    return np.array([r * width if len(r) == 1 else r for r in rows], dtype=float)


def _sweep(top: Table) -> SweepSpec:
    t = top.sub("sweep", {"temperature", "mu", "delta", "filling", "filling_bands"})
    d, what = top.defaults, " (a list, or a table {start, stop, num, spacing})"
    temperature = t.get("temperature", partial(_axis, check=_kelvin, defaults=d), what=what)
    mu = _mu_or_filling(t, d, what)
    delta = t.get("delta", partial(_delta, defaults=d), what=what)
    filling = t.optional("filling", partial(_axis, check=_fraction, defaults=d))
    for a in (temperature, mu, delta, filling):
        if a is not None:
            a.flags.writeable = False
    if filling is None:
        return SweepSpec(temperature, mu, delta)
    return SweepSpec(temperature, mu, delta, filling,
                     filling_bands=t.get("filling_bands", _band_list, [0]))


def _mu_or_filling(t: Table, d: dict, what: str) -> np.ndarray:
    """sweep.mu, or a placeholder when the sweep is at fixed filling (theory §4.7)."""
    if "filling" not in t.data:
        return t.get("mu", partial(_axis, check=_mu_value, defaults=d),
                     what=what + " or sweep.filling")
    if "mu" in t.data:
        raise InputError(t.key("mu"), t.data["mu"], "give either sweep.mu or sweep.filling")
    return np.array([0.0])  # bin origin only; μ(ν, T) is solved per temperature


def _fraction(key: str, value: object) -> float:
    x = number(key, value)
    if not 0.0 < x < 1.0:
        raise InputError(key, value, "must be in (0, 1) (filling of the band group)")
    return x


def _band_list(key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(key, value, "must be a non-empty list of band indices")
    bands = tuple(integer(f"{key}[{i}]", v, 0) for i, v in enumerate(value))
    if len(set(bands)) != len(bands):
        raise InputError(key, value, "band indices must be distinct")
    return bands


_kelvin = partial(within, low=TEMPERATURE_RANGE_K[0], high=TEMPERATURE_RANGE_K[1], unit="K",
                  why="verified range, docs/input.md")
_energy = partial(positive, unit="meV", upper=ENERGY_MAX_MEV)
_delta_value = partial(within, low=DELTA_MIN_MEV, high=ENERGY_MAX_MEV, unit="meV",
                       why="verified range, docs/input.md")
_mu_value = partial(magnitude, high=ENERGY_MAX_MEV, unit="meV")


def _energy_scale(model: ModelSpec, sweep: SweepSpec) -> float:
    """Energy scale [meV] bounding |E − μ|: 10 × the largest energy parameter, gap, |μ|."""
    spec = KINDS[model.kind].params
    energies = [abs(float(v)) for k, v in model.params.items() if isinstance(v, (int, float))
                and k in spec and spec[k].unit == "meV" and spec[k].type == "number"]
    if model.flatten is not None:
        energies.append(model.flatten.gap)
    return max(10.0 * max(energies, default=0.0), float(np.abs(sweep.mu).max()))


def _check_delta_scale(model: ModelSpec, sweep: SweepSpec) -> None:
    """δ ≥ 1e-12 × energy scale: the rounding error of σ, ~(ε E/δ)², stays below 1e-6."""
    low = DELTA_OVER_SCALE_MIN * _energy_scale(model, sweep)
    if sweep.delta.min() < low:
        raise InputError("sweep.delta", float(sweep.delta.min()),
                         f"must be >= {low:.3g} meV (1e-12 x the energy scale of the model "
                         "and mu; smaller delta is lost to rounding, docs/input.md)")


def _filling(key: str, value: object) -> float:
    x = number(key, value)
    if not 0.0 < x < 1.0:
        raise InputError(key, value, "must be in (0, 1) (filling of the flat band per spin)")
    return x


def _superfluid(top: Table) -> SuperfluidSpec | None:
    """Optional ``[superfluid]`` section (theory §6); n_orb's default is resolved on the model."""
    if "superfluid" not in top.data:
        return None
    t = top.sub("superfluid", {"U", "filling", "n_orb", "band", "temperature",
                               "minimal_metric"})
    u = t.get("U", _energy, what=" (number > 0, meV)")
    filling = t.get("filling", _filling, what=" (number in (0, 1))")
    n_orb = None
    if "n_orb" in t.data:
        n_orb = t.get("n_orb", partial(integer, low=1))
    else:
        top.defaults[t.key("n_orb")] = "model.norb"
    band = t.get("band", partial(integer, low=0), 0)
    temperature = t.get("temperature", partial(_axis, check=_kelvin, defaults=top.defaults),
                        what=" (K: a list, or a table {start, stop, num, spacing})")
    temperature.flags.writeable = False
    return SuperfluidSpec(U=u, filling=filling, n_orb=n_orb, band=band, temperature=temperature,
                          minimal_metric=t.get("minimal_metric", boolean, True))


# --- public API --------------------------------------------------------------------------------

def parse_deck(text: str, source: str = "<string>") -> RunConfig:
    """Parse and validate an input deck.

    Parameters
    ----------
    text : str
        TOML text of the deck (the CLI reads it on rank 0 and broadcasts it).
    source : str
        Where the text came from; its stem gives the default title and output file.

    Returns
    -------
    RunConfig
        Validated configuration; ``defaults`` lists every key filled in by default.

    Raises
    ------
    InputError
        On the first invalid, missing or unknown key, or text that is not TOML.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError("INPUT", source, f"not valid TOML ({err})") from None
    return parse_data(data, source, text)


def parse_data(data: dict, source: str = "<string>", text: str = "",
               model_spec: ModelSpec | None = None) -> RunConfig:
    """Validate a deck given as Python values (what TOML gives): :func:`parse_deck` after
    reading the text, and the Python API, whose keyword arguments are arranged as sections.

    ``model_spec``: the model when it is a Python object rather than a ``[model]`` section
    (the API; ``data`` then has no "model" and sweep.delta is not compared with an energy
    scale of [model] parameters). Same checks, defaults and InputErrors as a deck.
    """
    stem = None if source.startswith("<") else PurePath(source).stem
    defaults: dict[str, object] = {}
    top = Table(data, "", {"title", "degeneracy", "model", "kgrid", "sweep", "output", "run",
                            "superfluid", "solver", "bands"}, defaults)
    title = top.get("title", string, stem or "qgt_mpi run")
    degeneracy = top.get("degeneracy", partial(positive, upper=1000.0), 1.0)
    model = _model(top, source) if model_spec is None else model_spec
    kgrid = top.sub("kgrid", {"size"}).get("size", _size, what=" ([N1, N2])")
    sweep = _sweep(top)
    if model_spec is None:
        _check_delta_scale(model, sweep)
    out = top.sub("output", {"file", "kresolved"}, optional=True)
    output = OutputSpec(file=out.get("file", string, f"results/{stem or 'qgt_mpi'}.h5"),
                        kresolved=out.get("kresolved", boolean, True))
    r = top.sub("run", {"chunk", "progress_percent"}, optional=True)
    chunk = r.optional("chunk", partial(integer, low=1, high=1_000_000))
    if chunk is None:
        top.defaults["run.chunk"] = "auto"  # from k-points, pools and solver (run/blocks.py)
    run = RunSpec(chunk=chunk,
                  progress_percent=r.get("progress_percent",
                                         partial(positive, unit="%", upper=100.0), 5.0))
    superfluid = _superfluid(top)
    solver = parse_solver(top)
    bands = parse_bands(top)
    return RunConfig(title=title, model=model, kgrid=kgrid, sweep=sweep, output=output, run=run,
                     degeneracy=degeneracy, text=text, source=source, defaults=defaults,
                     superfluid=superfluid, solver=solver, bands=bands)


def read_deck_text(path: str) -> str:
    """Text of the deck at ``path``; :class:`InputError` ``("INPUT", path, ...)`` if unreadable."""
    from qgt_mpi.io.input_guard import read_text

    return read_text(path, "deck", encoding="utf-8-sig")  # a byte-order mark is accepted


def load_deck(path: str) -> RunConfig:
    """Read and parse the deck at ``path`` (serial; see :func:`parse_deck`)."""
    return parse_deck(read_deck_text(path), source=str(path))


def check_filling_bands(sweep: SweepSpec, nbands: int) -> None:
    """Refuse sweep.filling_bands outside the model's bands (InputError)."""
    if sweep.filling is not None and max(sweep.filling_bands) >= nbands:
        raise InputError("sweep.filling_bands", list(sweep.filling_bands),
                         f"band indices must be < {nbands} (the model's bands)")


def delta_for_bands(sweep: SweepSpec, nbands: int) -> np.ndarray:
    """Per-band broadenings, shape ``(n_delta, nbands)`` in meV (theory §4: δ_1, δ_2, ...).

    Raises
    ------
    InputError
        If the deck's per-band lists are neither length 1 nor ``nbands``.
    """
    w = sweep.delta.shape[1]
    if w not in (1, nbands):
        raise InputError("sweep.delta", sweep.delta.tolist(),
                         f"per-band delta lists need one value per band (model has {nbands} bands)")
    return np.array(np.broadcast_to(sweep.delta, (sweep.delta.shape[0], nbands)))
