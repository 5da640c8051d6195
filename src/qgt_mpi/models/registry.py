"""The one table of model kinds: kind → builder + parameter spec (docs/input.md "[model]").

The deck reader (:mod:`qgt_mpi.io.deck_models`) checks a ``[model]`` section against the
``params`` spec of its kind; :func:`qgt_mpi.models.build_model` fills defaults and calls the
builder. Adding a model kind is one entry here (and its builder module). A builder marked
``collective`` reads files: it takes ``comm`` (rank 0 reads, the arrays are broadcast once).

Parameter types (checked by the deck reader): ``number`` (finite float, ``unit``),
``path`` (string; relative to the deck's directory), ``choice`` (one of ``choices``),
``plane`` (two different integers out of 1, 2, 3), ``matrix`` (list of equal-length lists
of numbers; ``shape`` with None for any length), ``vector`` (list of numbers),
``hoppings`` (a list of tables {R, a, b, t} or of rows [R1, R2, a, b, Re t, Im t]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

REQUIRED = object()  # sentinel: the parameter has no default


@dataclass(frozen=True)
class Param:
    """One builder parameter: its type, default (REQUIRED or a value; None = absent)."""

    type: str
    default: object = REQUIRED
    unit: str = ""
    choices: tuple = ()
    shape: tuple = ()
    doc: str = ""


@dataclass(frozen=True)
class Kind:
    """A model kind: builder(**params[, comm]) -> BlochModel, and its parameter spec."""

    builder: Callable
    params: dict[str, Param] = field(default_factory=dict)
    collective: bool = False
    doc: str = ""


def _haldane(t1, t2, mass, phi):
    from qgt_mpi.models.haldane import haldane

    return haldane(float(t1), float(t2), float(mass), float(phi))


def _wannier90(comm=None, **params):
    from qgt_mpi.models.wannier90 import read_wannier90

    return read_wannier90(comm=comm, **params)


def _tight_binding(**params):
    from qgt_mpi.models.inline import tight_binding

    return tight_binding(**params)


def _model_file(file, comm=None):
    from qgt_mpi.models.modelfile import load_model

    return load_model(file, comm)


KINDS: dict[str, Kind] = {
    "haldane": Kind(_haldane, {
        "t1": Param("number", unit="meV", doc="nearest-neighbour hopping"),
        "t2": Param("number", unit="meV", doc="next-nearest-neighbour hopping magnitude"),
        "mass": Param("number", 0.0, "meV", doc="sublattice mass M"),
        "phi": Param("number", math.pi / 2, "radians", doc="NNN phase"),
    }, doc="Haldane model on the honeycomb lattice (SPEC §2.2)"),
    "wannier90": Kind(_wannier90, {
        "hr": Param("path", None, doc="seedname_hr.dat"),
        "tb": Param("path", None, doc="seedname_tb.dat (lattice, hoppings, positions)"),
        "centres": Param("path", None, doc="seedname_centres.xyz"),
        "lattice": Param("matrix", None, "Å", shape=(3, 3), doc="lattice vectors (rows)"),
        "plane": Param("plane", [1, 2], doc="1-based indices of the in-plane vectors"),
        "out_of_plane": Param("choice", "refuse", choices=("refuse", "sum")),
        "fermi": Param("number", 0.0, "eV", doc="energy zero subtracted on site"),
    }, collective=True, doc="Wannier90 model, 2D slice (eV -> meV)"),
    "tight_binding": Kind(_tight_binding, {
        "lattice": Param("matrix", unit="a", shape=(2, 2), doc="rows a1, a2"),
        "positions": Param("matrix", unit="reduced", shape=(None, 2), doc="orbital positions"),
        "hoppings": Param("hoppings", unit="meV", doc="t_ab(R) list"),
        "onsite": Param("vector", None, "meV", doc="on-site energies"),
        "partners": Param("choice", "add", choices=("add", "refuse")),
    }, doc="inline tight-binding model"),
    "model_file": Kind(_model_file, {
        "file": Param("path", doc="qgt_mpi model file (qgt-mpi model save)"),
    }, collective=True, doc="model saved by qgt-mpi model save"),
}


def call_builder(kind: str, params: dict, comm=None):
    """Build ``kind`` from ``params`` with defaults filled in; ValueError if unknown/missing."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {sorted(KINDS)}")
    entry = KINDS[kind]
    missing = [n for n, p in entry.params.items() if p.default is REQUIRED and n not in params]
    extra = [n for n in params if n not in entry.params]
    if missing or extra:
        raise ValueError(f"model {kind!r} needs parameters {list(entry.params)}; "
                         f"missing {missing}, unknown {extra}")
    full = {n: params.get(n, p.default) for n, p in entry.params.items()}
    full = {n: v for n, v in full.items() if v is not None}
    if entry.collective:
        return entry.builder(comm=comm, **full)
    return entry.builder(**full)
