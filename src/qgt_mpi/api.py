"""Python API: compute transport for any model from Python, with or without mpirun.

``compute`` runs the same set-up checks, k-pass, reductions, evaluation and post-sweep phases
(superfluid weight, valley geometry) as ``qgt-mpi run`` (theory §4, §5, §6) and returns a
:class:`Result` whose arrays carry named axes and units; ``Result.save`` writes the same HDF5
file as the command line, and :func:`load` reads one back. Every setting a deck has is a
keyword argument here, arranged as the deck's sections and checked by the deck's own reader
(io/deck.py: same defaults, same one-line :class:`InputError`); :class:`Solver` and
:class:`Superfluid` are the ``[solver]`` and ``[superfluid]`` sections, :func:`deck_model` the
``[model]`` section. See ``docs/api.md``. ``comm=None`` means ``MPI.COMM_WORLD``: a single
process in a notebook, all ranks under mpirun (then every call is collective and every rank
gets the same result).
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping
from typing import Any, ClassVar

import h5py
import numpy as np
from mpi4py import MPI

from qgt_mpi import _deps
from qgt_mpi.io import reader, writer
from qgt_mpi.io.checks import InputError, Table
from qgt_mpi.io.conventions import natural_units
from qgt_mpi.io.deck import ModelSpec, parse_data
from qgt_mpi.io.deck import _model as _model_section  # the [model] reader (no public name)
from qgt_mpi.io.deck import _superfluid as _superfluid_section  # the [superfluid] reader
from qgt_mpi.io.deck_solver import SolverSpec, parse_solver
from qgt_mpi.io.output_guard import guard, input_paths
from qgt_mpi.models.modelfile import save_model
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.parallel.pools import make_pools
from qgt_mpi.run import diagnostics, driver, setup
from qgt_mpi.run.kpass import kfield_slabs
from qgt_mpi.run.setup import model_from_spec, window_terms
from qgt_mpi.transport.observables import BAND_QUANTITIES, QUANTITIES

__all__ = ["InputError", "Quantity", "Result", "Solver", "Superfluid", "compute", "deck_model",
           "load", "save"]

SWEEP_DIMS = ("mu", "delta", "temperature")
MODEL_GROUP = "/model/definition"  # Result.save stores the model here (models/modelfile/)
SOURCE = "<python api>"  # RunConfig.source of an API run
_AXIS_UNITS = {k: natural_units(f"transport/{k}")
               for k in ("mu", "delta", "temperature", "filling_target")}
_GROUPS = ("superfluid", "valley", "bands_path")  # optional groups (driver.extra_phases)


class Quantity(np.ndarray):
    """A numpy array with ``dims`` (axis names), ``units`` and the ``coords`` of its axes.

    Slicing returns plain-shaped views whose ``dims`` are dropped when the rank changes.
    """

    def __new__(cls, data, dims=(), units: str = "", coords: dict | None = None):
        obj = np.asarray(data).view(cls)
        obj.dims, obj.units, obj.coords = tuple(dims), units, dict(coords or {})
        return obj

    def __array_finalize__(self, obj) -> None:
        same = obj is not None and getattr(obj, "ndim", -1) == self.ndim
        self.dims = getattr(obj, "dims", ()) if same else ()
        self.units = getattr(obj, "units", "")
        self.coords = getattr(obj, "coords", {}) if same else {}


# --- deck sections as Python objects -----------------------------------------------------------

def _plain(value: Any) -> Any:
    """numpy arrays/scalars and tuples → the lists and Python numbers a TOML reader gives."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class _Section:
    """One deck section given as keyword arguments, checked at once by the deck's reader.

    ``options`` are the keys as given (the deck fills in the rest: ``spec`` has them all).
    """

    section: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        self.options = _plain(options)
        self.spec = self._parse(self.options)

    @classmethod
    def _parse(cls, options: dict) -> Any:
        raise NotImplementedError

    @classmethod
    def section_data(cls, value: _Section | Mapping | None) -> dict | None:
        """The deck table of ``value`` (a section object or a dict of its keys), checked."""
        if value is None:
            return None
        if isinstance(value, cls):
            return value.options
        if isinstance(value, Mapping):
            return cls(**value).options
        raise InputError(cls.section, value, f"must be a qgt_mpi.{cls.__name__}, a dict of "
                         f"[{cls.section}] keys or None, not {type(value).__name__}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.spec == self.spec

    # unhashable: the options dict is mutable
    __hash__ = None  # type: ignore[assignment]


class Solver(_Section):
    """The ``[solver]`` section: dense, or a SLEPc window of bands (docs/input.md, theory §5).

    ``Solver(kind, **options)`` takes the deck's keys: ``kind`` ("dense", "slepc", "auto"),
    ``nev``, ``target`` [meV], ``tol``, ``ncv``, ``max_it``, ``pad``, ``edge_tol`` [meV],
    ``cluster_tol`` [meV], ``out_of_window``, ``delta_out`` [meV], ``chern_below``, ``flatten``
    [meV, one per band], ``valley`` (whatever io/deck_solver.py reads). Keys not given take
    the deck's defaults (``spec`` shows them all); a bad key or value raises the deck's
    :class:`InputError` (``solver.nev = 0: must be an integer >= 1``).

    Examples
    --------
    >>> Solver("slepc", nev=2, target=0.1)
    Solver(kind='slepc', nev=2, target=0.1)
    """

    section = "solver"

    def __init__(self, kind: str | None = None, /, **options: Any) -> None:
        super().__init__(**({} if kind is None else {"kind": kind}), **options)

    @classmethod
    def _parse(cls, options: dict) -> SolverSpec:
        return parse_solver(Table({"solver": options}, "", {"solver"}, {}))


class Superfluid(_Section):
    """The ``[superfluid]`` section: geometric superfluid weight of a flat band (theory §6).

    Keys as in the deck: ``U`` [meV], ``filling``, ``temperature`` [K] (a list or a table
    ``{"start", "stop", "num", "spacing"}``), ``n_orb``, ``band``, ``minimal_metric``
    (docs/input.md); checked at once with the deck's messages.
    """

    section = "superfluid"

    @classmethod
    def _parse(cls, options: dict) -> Any:
        return _superfluid_section(Table({"superfluid": options}, "", {"superfluid"}, {}))


def deck_model(kind: str, /, *, flatten: Mapping | None = None, supercell: Mapping | None = None,
               comm: MPI.Comm | None = None, **params: Any):
    """The model of a deck's ``[model]`` section, from the same keys (docs/input.md).

    Parameters
    ----------
    kind : ``model.kind`` ("haldane", "bm_continuum", "tmd_continuum", "htg_continuum",
        "tbg_atomistic", "wannier90", "tight_binding", "model_file").
    flatten, supercell : the ``[model.flatten]`` and ``[model.supercell]`` tables as dicts.
    comm : for kinds that read files or solve once (rank 0 reads or solves, then broadcasts);
        collective over it when given. None: the calling process alone.
    **params : the kind's keys (e.g. ``theta=1.05, shells=2, mass=10.0``). File names are
        relative to the working directory.

    Returns
    -------
    The BlochModel ``qgt-mpi run`` builds for that section: same checks, defaults (e.g.
    ``tbg_atomistic`` energies from charge neutrality) and :class:`InputError` messages.
    """
    table = {"kind": kind, **params}
    for name, sub in (("flatten", flatten), ("supercell", supercell)):
        if sub is not None:
            table[name] = sub
    spec, error = None, None
    try:
        spec = _model_section(Table({"model": _plain(table)}, "", {"model"}, {}), SOURCE)
    except Exception as exc:  # agreed on below when collective
        error = exc
    if comm is not None:
        agree_arguments(comm, error)
    elif error is not None:
        raise error
    assert spec is not None
    return model_from_spec(spec, comm)


def agree_arguments(comm: MPI.Comm, error: BaseException | None) -> None:
    """Every rank raises the first rank's argument error, or none does. Collective.

    Arguments are checked on every rank before anything collective; a bad value on one rank
    only (a rank-dependent argument under mpirun) left the others waiting in the first
    collective call. The first failing rank's exception is sent to all (InputError pickles
    itself), so every rank raises the same one-line error.
    """
    try:
        errors = comm.allgather(error)
    except Exception:  # an exception that does not pickle: send its text
        text = None if error is None else f"{type(error).__name__}: {error}"
        errors = [None if t is None else ValueError(t) for t in comm.allgather(text)]
    for exc in errors:
        if exc is not None:
            if error is not None:
                raise error  # this rank's own exception, with its traceback
            raise exc


# --- the run -----------------------------------------------------------------------------------

def _axis(value: Any) -> Any:
    """A sweep axis as the deck reads it: a list, a {start, stop, num, spacing} table, or a
    number (one value)."""
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return _plain(value)
    return [_plain(value)]


def _toml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _deck_text(data: dict, model) -> str:
    """The settings of an API run written as a deck (provenance: the file's ``input_text``)."""
    lines = ["# computed with the qgt_mpi Python API (qgt_mpi.compute); the model was a Python",
             f"# object: {model.describe()}".replace("\n", " ")]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    for name, table in data.items():
        if isinstance(table, Mapping):
            lines += [f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _settings(kgrid, temperature, mu, delta, degeneracy, filling, filling_bands, solver,
              superfluid, chunk, kresolved, title) -> dict:
    """compute()'s keyword arguments as deck sections; only what was given (defaults: deck)."""
    sweep = {"temperature": _axis(temperature)}
    for key, value in (("mu", mu), ("delta", delta), ("filling", filling)):
        if value is not None:
            sweep[key] = _axis(value)
    if filling_bands is not None:
        sweep["filling_bands"] = _plain(filling_bands)
    data: dict[str, Any] = {}
    for key, value in (("title", title), ("degeneracy", degeneracy)):
        if value is not None:
            data[key] = _plain(value)
    data.update({"kgrid": {"size": _plain(kgrid)}, "sweep": sweep,
                 "output": {"kresolved": kresolved}})
    if chunk is not None:
        data["run"] = {"chunk": _plain(chunk)}
    for cls, value in ((Solver, solver), (Superfluid, superfluid)):
        table = cls.section_data(value)
        if table is not None:
            data[cls.section] = table
    return data


def compute(model, kgrid, temperature, mu=None, delta=None, degeneracy: float | None = None, *,
            filling=None, filling_bands=None, solver: Solver | Mapping | None = None,
            superfluid: Superfluid | Mapping | None = None, pools: int = 1,
            comm: MPI.Comm | None = None, chunk: int | None = None, kresolved: bool = False,
            title: str | None = None) -> Result:
    """Transport and geometry of ``model`` on a k-grid for a (T, μ, δ) sweep.

    Collective over ``comm``: under mpirun every rank calls it and gets the same Result.
    Arguments are a deck's keys (docs/input.md) and are checked by the deck's reader: a bad
    value raises the deck's one-line :class:`InputError` (e.g. ``solver.nev = 0: must be an
    integer >= 1``); what is not given takes the deck's default.

    Parameters
    ----------
    model : any BlochModel (``qgt_mpi.models.haldane(...)``, :func:`deck_model`,
        ``read_wannier90``, ...).
    kgrid : ``kgrid.size``, (N1, N2) k-points along b1, b2.
    temperature, mu, delta : ``sweep.temperature`` [K], ``sweep.mu`` [meV], ``sweep.delta``
        [meV]: lists (or a number, or a table ``{"start", "stop", "num", "spacing"}``);
        ``delta`` entries are a number (all bands) or one value per band.
    degeneracy : flavour factor multiplying σ and κ (theory §1).
    filling, filling_bands : a sweep at fixed filling of a band group instead of ``mu``
        (``sweep.filling``, ``sweep.filling_bands``); the solved μ is ``Result.mu_solved``.
    solver : the ``[solver]`` section, a :class:`Solver` or a dict of its keys; None: dense.
    superfluid : the ``[superfluid]`` section (:class:`Superfluid` or a dict): adds
        ``Result.superfluid`` (theory §6).
    pools : pools of ``comm.size // pools`` ranks that solve one k-point together (windowed
        solvers; as ``qgt-mpi run --pools``); must divide the number of ranks.
    comm : mpi4py communicator; None = MPI.COMM_WORLD.
    chunk : ``run.chunk``, k-points per block (None: from k-points and pools, run/blocks.py).
        kresolved : keep the k-resolved fields for :meth:`Result.save` (``output.kresolved``;
        off here to save memory). title : ``title``.

    Returns
    -------
    Result, identical on every rank.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    if not isinstance(comm, MPI.Comm):
        raise InputError("comm", comm, "must be an mpi4py communicator (or None: COMM_WORLD)")
    error: BaseException | None = None
    try:  # the deck's checks, on every rank; agreed on before anything collective
        data = _settings(kgrid, temperature, mu, delta, degeneracy, filling, filling_bands,
                         solver, superfluid, chunk, kresolved, title)
        kind = str(model.describe().get("kind", "model"))
        config = parse_data(data, SOURCE, _deck_text(data, model), ModelSpec(kind, {}, None))
        if isinstance(pools, bool) or not isinstance(pools, int) or pools < 1 or \
                comm.size % pools:
            raise InputError("pools", pools, f"must be >= 1 and divide the {comm.size} ranks")
    except Exception as exc:
        error = exc
    agree_arguments(comm, error)
    timers, log = Timers(), logging.getLogger("qgt_mpi")
    with timers.phase("setup"):
        layout = make_pools(comm, pools)
        with collective(comm):  # run.setup.prepare for a model object (no deck model, no file)
            engine, delta_bands = setup.engine(config, model, layout.pool)
            window = window_terms(config, engine, delta_bands)
    s = config.sweep
    fixed = s.filling is not None
    job, transport, geometry = driver.compute(
        comm, model, config.kgrid, s.temperature, s.mu, delta_bands, config.degeneracy,
        chunk=config.run.chunk, kresolved=config.output.kresolved, log=log, solver=engine,
        window=window, filling=s.filling, filling_bands=list(s.filling_bands) if fixed else None,
        timers=timers)
    if comm.rank == 0:  # the same reduced inputs on every rank: warn once
        diagnostics.check_flavours(log, model, config.degeneracy)
        diagnostics.check_window(log, job, geometry, transport["mu"] if fixed else None)
    groups = driver.extra_phases(comm, config, job, geometry, timers, log, layout.across)
    axes = {"temperature": s.temperature, "delta": delta_bands}
    axes.update({"filling_target": s.filling, "mu_solved": transport.pop("mu")} if fixed
                else {"mu": s.mu})
    info = {"model": kind, "norb": int(model.norb), "kgrid": tuple(config.kgrid),
            "solver": dict(engine.describe()), "pools": pools}
    bands = {k: geometry[k] for k in ("bandwidth", "band_min", "band_max", "min_gap")}
    run = {"comm": comm, "config": config, "job": job, "delta": delta_bands, "timers": timers,
           "model": model}
    return Result({**transport, **axes}, geometry, bands, {}, run, groups, info)


def save(result: Result, path: str, overwrite: bool = False) -> None:
    """Write ``result`` as ``qgt-mpi run`` would (:meth:`Result.save`). Collective."""
    result.save(path, overwrite)


# --- results -----------------------------------------------------------------------------------

def _range(values: np.ndarray, unit: str) -> str:
    """"3 values 0.1..2 K": how many sweep values (rows), and their range."""
    v = np.asarray(values, dtype=float)
    count = len(v) if v.ndim else 1
    v = v.ravel()
    n = f"{count} value{'s' if count != 1 else ''}"
    span = f"{v.min():.4g}" if v.min() == v.max() else f"{v.min():.4g}..{v.max():.4g}"
    return f"{n} {span} {unit}".rstrip()


class Result:
    """Transport (theory §4), geometry (theory §5) and the optional groups of one run.

    Attributes: each observable of ``QUANTITIES`` (``sigma_xx``, ``sigma_xy``, ``seebeck``,
    ``kappa_xx``, ...) as a :class:`Quantity` with dims (mu, delta, temperature) — (filling,
    delta, temperature) for a fixed-filling sweep, with ``mu_solved``; the axes ``mu`` [meV],
    ``delta`` [meV, (delta, band)], ``temperature`` [K], ``filling_target`` (fixed filling;
    ``filling`` is the per-band occupation, dims + band); ``chern``; ``geometry``
    and ``bands`` dicts; ``superfluid`` and ``valley`` (dicts of arrays, with
    ``groups[name] = (datasets, attrs)``) when computed; ``info`` (model kind, grid, solver);
    ``attrs`` (file attributes after :func:`load`). ``print(result)`` summarises it.
    """

    def __init__(self, transport: dict, geometry: dict, bands: dict | None = None,
                 attrs: dict | None = None, _run: dict | None = None,
                 groups: dict | None = None, info: dict | None = None) -> None:
        self.transport, self.geometry = transport, geometry
        self.bands, self.attrs, self._run = dict(bands or {}), dict(attrs or {}), _run
        self.groups = dict(groups or {})
        self.info = dict(info or {})
        self.units = {**{k: natural_units(f"transport/{k}")
                         for k in (*QUANTITIES, *BAND_QUANTITIES)}, **_AXIS_UNITS}

    @property
    def fixed_filling(self) -> bool:
        """Whether the sweep holds the filling fixed (its first axis is ``filling``)."""
        return "filling_target" in self.transport

    @property
    def dims(self) -> tuple[str, str, str]:
        """Axis names of the sweep quantities."""
        return ("filling", *SWEEP_DIMS[1:]) if self.fixed_filling else SWEEP_DIMS

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """The sweep axes: mu or filling (n,), delta (n_delta, nbands), temperature (n_T,)."""
        first = "filling_target" if self.fixed_filling else "mu"
        return {self.dims[0]: np.asarray(self.transport[first]),
                **{k: np.asarray(self.transport[k]) for k in ("delta", "temperature")}}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(f"Result has no attribute {name!r}")
        tr = self.__dict__.get("transport", {})
        if name in ("superfluid", "valley"):
            data = self.__dict__.get("groups", {}).get(name)
            if data is None:
                raise AttributeError(f"Result has no {name} group (not computed)")
            return {k: np.asarray(v[0] if isinstance(v, tuple) else v)
                    for k, v in data[0].items()}
        if name == "filling_target" and name in tr:
            return Quantity(tr[name], ("filling",), "1")
        if name == "mu_solved" and "mu_solved" in tr:
            return Quantity(tr["mu_solved"], self.dims, "meV", self.coords)
        if name in ("mu", "delta", "temperature") and name in tr:
            dims = ("delta", "band") if name == "delta" else (name,)
            return Quantity(tr[name], dims, _AXIS_UNITS[name])
        if name in QUANTITIES and name in tr:
            return Quantity(tr[name], self.dims, natural_units(f"transport/{name}"),
                            self.coords)
        if name in BAND_QUANTITIES and name in tr:
            return Quantity(tr[name], (*self.dims, "band"), natural_units(f"transport/{name}"),
                            self.coords)
        raise AttributeError(f"Result has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        names = [k for k in self.transport
                 if k in {*QUANTITIES, *BAND_QUANTITIES, "mu_solved", "filling_target"}]
        return sorted({*super().__dir__(), *names, *self.dims, *self.groups})

    @property
    def chern(self) -> np.ndarray:
        """Link-variable Chern number of each band (theory §5)."""
        c = self.geometry.get("chern", self.geometry.get("chern_groups"))
        return np.asarray(c)[: self.nbands]

    @property
    def nbands(self) -> int:
        """Bands of the result: all bands of the model, or the solver's window."""
        return int(np.asarray(self.transport["delta"]).shape[1])

    def quantities(self) -> list[str]:
        """Names of the sweep quantities this result holds."""
        return [k for k in (*QUANTITIES, *BAND_QUANTITIES, "mu_solved") if k in self.transport]

    def __repr__(self) -> str:
        i = self.info
        grid = i.get("kgrid")
        grid_text = f"{grid[0]} x {grid[1]}" if grid else "?"
        solver = dict(i.get("solver") or {})
        name = str(solver.get("solver", "dense"))
        if "nev" in solver:
            name += (f", window of {solver['nev']} bands nearest {solver.get('target_meV', '?')}"
                     f" meV, pools of {solver.get('pool_size', '?')} rank(s)")
        norb = f" ({i['norb']} orbitals)" if "norb" in i else ""
        lines = [f"qgt_mpi Result: model {i.get('model', '?')}{norb}, k-grid {grid_text}, "
                 f"solver {name}"]
        if self.bands.get("bandwidth") is not None:
            width = ", ".join(f"{w:.4g}" for w in np.ravel(self.bands["bandwidth"]))
            lines.append(f"  bands      {self.nbands}, widths {width} meV")
        c = self.coords
        first = (f"filling {_range(c['filling'], '')}" if self.fixed_filling
                 else f"mu {_range(c['mu'], 'meV')}")
        lines.append(f"  sweep      {first} x delta {_range(c['delta'], 'meV')} x "
                     f"temperature {_range(c['temperature'], 'K')}")
        lines.append(f"  chern      {np.asarray(self.chern).tolist()} (per band)")
        lines.append(f"  quantities {', '.join(self.quantities())} "
                     f"(dims {', '.join(self.dims)})")
        for group in self.groups:
            data, attrs = self.groups[group]
            extra = ""
            if group == "superfluid" and "T_BKT_K" in attrs:
                extra = f"; T_BKT = {float(attrs['T_BKT_K']):.4g} K"
            lines.append(f"  {group:10s} {', '.join(data)}{extra}")
        return "\n".join(lines)

    __str__ = __repr__

    def save(self, path: str, overwrite: bool = False) -> None:
        """Write the same HDF5 result file as ``qgt-mpi run``. Collective over the run's comm.

        The model itself is added as ``/model/definition`` (qgt_mpi's model file layout), so
        ``qgt-mpi plot`` can draw its bands and ``load_model(path, group=...)`` reads it.
        The path goes through the output guard of ``run`` (io/output_guard.py): an existing
        file is replaced only with ``overwrite=True``, never an input of the run, a directory,
        a special file or a planted symlink; written under a temporary name and renamed.

        With an h5py without MPI support (the serial PyPI wheel) a one-rank comm writes the
        same file with serial HDF5; on more ranks every rank raises the same
        ``qgt_mpi._deps.SerialH5pyError`` (an ImportError; one line naming the fix) before any
        file is made.
        """
        if self._run is None:
            raise ValueError("this Result was read from a file; it is already saved")
        comm = self._run["comm"]
        _deps.require_h5py_writer(comm)
        lock = None
        given = comm.allgather((str(path), bool(overwrite)))  # one file, written together
        if len(set(given)) > 1:
            raise InputError("path", str(path), "Result.save is collective: every rank must "
                             f"pass the same path and overwrite (got {sorted(set(given))})")
        try:
            with collective(comm):
                lock = guard(comm, str(path), "<api>", bool(overwrite), "path",
                             input_paths(self._run["config"]),
                             "pass overwrite=True to replace it")
            self._save(str(path))
        finally:
            if lock is not None:
                lock.release()

    def _save(self, path: str) -> None:
        """:meth:`save` once the path is checked and locked. Collective."""
        assert self._run is not None
        r = self._run
        transport = dict(self.transport)
        if self.fixed_filling:  # the writer's name for the solved μ (results.py)
            transport["mu"] = transport.pop("mu_solved")
        result = driver.result_file(r["comm"], r["config"], r["job"], r["delta"], transport,
                                self.geometry, r["timers"], logging.getLogger("qgt_mpi"))
        for name, (data, attrs) in self.groups.items():
            result.groups[name], result.group_attrs[name] = data, attrs
        if r["config"].output.kresolved:
            result.kslabs = kfield_slabs(r["job"])
        with collective(r["comm"]):
            writer.check_writable(r["comm"], path)
        driver.write_result(r["comm"], path, result, r["timers"])
        with collective(r["comm"]):  # the model itself, for qgt-mpi plot and load_model
            if r["comm"].rank == 0:
                try:
                    save_model(r["model"], path, MODEL_GROUP)
                except TypeError:  # a model class the model file does not hold
                    pass


def _file_groups(path: str) -> tuple[dict, dict]:
    """(groups, solver attrs) of a result file: superfluid/valley datasets and attributes."""
    groups, solver = {}, {}
    with h5py.File(path, "r") as f:
        for name in _GROUPS:
            if name in f:
                data = {k: (v[()], dict(v.attrs)) for k, v in f[name].items()
                        if isinstance(v, h5py.Dataset)}
                groups[name] = (data, dict(f[name].attrs))
        if "solver" in f:
            solver = {k: v.item() if isinstance(v, np.generic) else v
                      for k, v in f["solver"].attrs.items()}
    return groups, solver


def load(path: str) -> Result:
    """Read a result file written by ``qgt-mpi run`` or :meth:`Result.save` (serial)."""
    data = reader.load(path)
    attrs = dict(data["attrs"])
    groups, solver = _file_groups(path)
    info: dict[str, Any] = {"model": str(data.get("model_attrs", {}).get("kind", "?")),
                            "solver": solver}
    try:
        size = tomllib.loads(str(attrs.get("input_text", "")))["kgrid"]["size"]
        info["kgrid"] = (int(size[0]), int(size[1]))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, IndexError):
        pass
    transport = dict(data.get("transport", {}))
    transport.pop("delta_index", None)
    return Result(transport, dict(data.get("geometry", {})), dict(data.get("bands", {})), attrs,
                  None, groups, info)

