"""Python API: compute transport for any model from Python, with or without mpirun.

``compute`` runs the same k-pass, reductions and evaluation as ``qgt-mpi run`` (theory §4,
§5) and returns a :class:`Result` whose arrays carry named axes and units; ``Result.save``
writes the same HDF5 file as the command line, and :func:`load` reads one back. See
``docs/api.md``. ``comm=None`` means ``MPI.COMM_WORLD``: a single process in a notebook, all
ranks under mpirun (then every call is collective and every rank gets the same result).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from mpi4py import MPI

from qgt_mpi import driver
from qgt_mpi.io import reader, writer
from qgt_mpi.io.deck import ModelSpec, OutputSpec, RunConfig, RunSpec, SweepSpec
from qgt_mpi.kpass import kfield_slabs, run_blocks
from qgt_mpi.models.modelfile import save_model
from qgt_mpi.parallel import Timers, collective
from qgt_mpi.transport.observables import UNITS

SWEEP_DIMS = ("mu", "delta", "temperature")
MODEL_GROUP = "/model/definition"  # Result.save stores the model here (models/modelfile.py)
_AXIS_UNITS = {"mu": "meV", "delta": "meV", "temperature": "K"}


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


class Result:
    """Transport (theory §4) and geometry (theory §5) of one model and sweep.

    Attributes: each observable of ``UNITS`` (``sigma_xx``, ``sigma_xy``, ``seebeck``,
    ``kappa_xx``, ...) as a :class:`Quantity` with dims (mu, delta, temperature); the axes
    ``mu`` [meV], ``delta`` [meV, (delta, band)], ``temperature`` [K]; ``chern``;
    ``geometry`` and ``bands`` dicts; ``attrs`` (file attributes after :func:`load`).
    """

    def __init__(self, transport: dict, geometry: dict, bands: dict | None = None,
                 attrs: dict | None = None, _run: dict | None = None) -> None:
        self.transport, self.geometry = transport, geometry
        self.bands, self.attrs, self._run = dict(bands or {}), dict(attrs or {}), _run
        self.units = {**UNITS, **_AXIS_UNITS}

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """The sweep axes: mu (n_mu,), delta (n_delta, nbands), temperature (n_T,)."""
        return {k: np.asarray(self.transport[k]) for k in ("mu", "delta", "temperature")}

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in {*UNITS, *_AXIS_UNITS}:
            raise AttributeError(f"Result has no attribute {name!r}")
        if name in _AXIS_UNITS:
            dims = ("delta", "band") if name == "delta" else (name,)
            return Quantity(self.transport[name], dims, _AXIS_UNITS[name])
        return Quantity(self.transport[name], SWEEP_DIMS, UNITS[name], self.coords)

    @property
    def chern(self) -> np.ndarray:
        """Link-variable Chern number of each band (theory §5)."""
        c = self.geometry.get("chern", self.geometry.get("chern_groups"))
        return np.asarray(c)[: self.nbands]

    @property
    def nbands(self) -> int:
        return int(np.asarray(self.transport["delta"]).shape[1])

    def save(self, path: str) -> None:
        """Write the same HDF5 result file as ``qgt-mpi run``. Collective over the run's comm.

        The model itself is added as ``/model/definition`` (qgt_mpi's model file layout), so
        ``qgt-mpi plot`` can draw its bands and ``load_model(path, group=...)`` reads it.
        """
        if self._run is None:
            raise ValueError("this Result was read from a file; it is already saved")
        r = self._run
        result = driver._result(r["comm"], r["config"], r["job"], r["delta"], self.transport,
                                self.geometry, r["timers"], logging.getLogger("qgt_mpi"))
        if r["config"].output.kresolved:
            result.kslabs = kfield_slabs(r["job"])
        with collective(r["comm"]):
            writer.check_writable(r["comm"], path)
        driver._write(r["comm"], path, result, r["timers"])
        with collective(r["comm"]):  # the model itself, for qgt-mpi plot and load_model
            if r["comm"].rank == 0:
                try:
                    save_model(r["model"], path, MODEL_GROUP)
                except TypeError:  # a model class the model file does not hold
                    pass


def _axis(name: str, values, positive: bool) -> np.ndarray:
    a = np.atleast_1d(np.asarray(values, dtype=float))
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or (positive and np.any(a <= 0)):
        need = "finite values > 0" if positive else "finite values"
        raise ValueError(f"{name} = {values!r}: must be a non-empty 1D list of {need}")
    return a


def _delta(values, nbands: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw (n_delta, w), per-band (n_delta, nbands)) broadenings from a scalar/list/2D."""
    raw = np.asarray(values, dtype=float)
    raw = raw.reshape(1, 1) if raw.ndim == 0 else raw[:, None] if raw.ndim == 1 else raw
    if raw.ndim != 2 or raw.shape[1] not in (1, nbands) or not np.all(raw > 0):
        raise ValueError(f"delta = {values!r}: values > 0 (meV), one per sweep point, each a "
                         f"number or a list of {nbands} (one per band)")
    return raw, np.array(np.broadcast_to(raw, (raw.shape[0], nbands)))


def _config(model, kgrid, sweep: SweepSpec, degeneracy, chunk, kresolved, title) -> RunConfig:
    """The RunConfig a result file records for an API run (no deck: text says so)."""
    text = (f"# computed with the qgt_mpi Python API (qgt_mpi.compute); model: "
            f"{model.describe()}\n")
    return RunConfig(title=title, model=ModelSpec(str(model.describe().get("kind", "model")),
                                                  {}, None),
                     kgrid=tuple(kgrid), sweep=sweep, output=OutputSpec("", kresolved),
                     run=RunSpec(chunk, 100.0), degeneracy=float(degeneracy), text=text,
                     source="<python api>", defaults={})


def compute(model, kgrid, temperature, mu, delta, degeneracy: float = 1.0, *, comm=None,
            chunk: int = 4096, kresolved: bool = False, title: str = "qgt_mpi Python API run"
            ) -> Result:
    """Transport and geometry of ``model`` on a k-grid for a (T, μ, δ) sweep.

    Parameters
    ----------
    model : any BlochModel (``qgt_mpi.models.haldane(...)``, ``read_wannier90``, ...).
    kgrid : (N1, N2) k-points along b1, b2.
    temperature : temperatures [K] (> 0); mu : chemical potentials [meV];
    delta : broadenings [meV] (> 0): a number, a list (one per sweep point), or a list of
        per-band lists (n_delta, nbands).
    degeneracy : flavour factor multiplying σ and κ (theory §1).
    comm : mpi4py communicator; None = MPI.COMM_WORLD. Collective over it.
    chunk : k-points per batch; kresolved : keep k-resolved fields for :meth:`Result.save`.

    Returns
    -------
    Result, identical on every rank.
    """
    comm = MPI.COMM_WORLD if comm is None else comm
    n1, n2 = (int(n) for n in kgrid)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"kgrid = {kgrid!r}: two integers >= 1")
    T, m = _axis("temperature", temperature, True), _axis("mu", mu, False)
    raw, per_band = _delta(delta, model.nbands)
    if not (math.isfinite(degeneracy) and degeneracy > 0):
        raise ValueError(f"degeneracy = {degeneracy!r}: must be > 0")
    timers, log = Timers(), logging.getLogger("qgt_mpi")
    job = driver.make_job(comm, model, (n1, n2), T, m, per_band, chunk, kresolved)
    run_blocks(comm, job, list(range(job.n_blocks)), timers, log, 100.0)
    with timers.phase("reduce+evaluate"):
        transport, geometry = driver.finish(comm, job, degeneracy)
    sweep = SweepSpec(temperature=T, mu=m, delta=raw)
    config = _config(model, (n1, n2), sweep, degeneracy, chunk, kresolved, title)
    tr = {**transport, "mu": m, "temperature": T, "delta": per_band}
    bands = {k: geometry[k] for k in ("bandwidth", "band_min", "band_max", "min_gap")}
    run = {"comm": comm, "config": config, "job": job, "delta": per_band, "timers": timers,
           "model": model}
    return Result(tr, geometry, bands, {}, run)


def load(path: str) -> Result:
    """Read a result file written by ``qgt-mpi run`` or :meth:`Result.save` (serial)."""
    data = reader.load(path)
    return Result(dict(data.get("transport", {})), dict(data.get("geometry", {})),
                  dict(data.get("bands", {})), dict(data["attrs"]))
