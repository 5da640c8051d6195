"""Model-file classes of the dense models: ``TightBinding`` and ``FlattenedModel`` (version 1).

``TightBinding``: datasets ``lattice`` (2, 2), ``positions`` (norb, 2) Cartesian, ``R``
(nh, 2), ``a``, ``b``, ``t`` (complex128, meV) and the attribute ``info_json``.
``FlattenedModel`` (exact flattening, theory §2.3): attributes ``targets`` and ``gap_tol`` and
its parent model in the sub-group ``parent``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import h5py
import numpy as np

from qgt_mpi.models.flatten import FlattenedModel
from qgt_mpi.models.lattice import TightBinding
from qgt_mpi.models.modelfile import fields

TB_FIELDS = ("lattice", "positions", "R", "a", "b", "t")
# dtype kind and shape ("n": the hopping count, "o": the orbital count)
_TB_LAYOUT: dict[str, tuple[str, tuple]] = {
    "lattice": ("f", (2, 2)), "positions": ("f", ("o", 2)), "R": ("i", ("n", 2)),
    "a": ("i", ("n",)), "b": ("i", ("n",)), "t": ("fc", ("n",))}


def put_tight_binding(group: h5py.Group, model: TightBinding) -> None:
    """Write a TightBinding's arrays as they are in memory."""
    group.attrs["class"] = "TightBinding"
    for name in TB_FIELDS:
        group.create_dataset(name, data=getattr(model, name))
    group.attrs["info_json"] = fields.json_text(model.info)


def put_flattened(group: h5py.Group, model: FlattenedModel, put: Callable) -> None:
    """Write an exactly flattened model and, through ``put``, its parent."""
    group.attrs["class"] = "FlattenedModel"
    group.attrs["targets"] = model.targets
    group.attrs["gap_tol"] = model.gap_tol
    put(group.create_group("parent"), model.parent)


def lattice_checks(lattice: np.ndarray, positions: np.ndarray, where: str) -> None:
    """Shapes and ranges of a model's lattice (2, 2) and positions (norb, 2)."""
    from qgt_mpi.io.checks import LENGTH_MAX

    fields.shape(lattice, (2, 2), "lattice", where)
    if positions.ndim != 2 or positions.shape[1:] != (2,):
        raise ValueError(f"{where}: dataset 'positions' has shape {positions.shape}, "
                         "expected (norb, 2)")
    for name, array in (("lattice", lattice), ("positions", positions)):
        fields.bounded(array, LENGTH_MAX, "a", name, where)
    with np.errstate(all="ignore"):  # denormal vectors: LAPACK's det overflows inside
        det = float(np.linalg.det(lattice))
    if not abs(det) >= 1e-12:
        raise ValueError(f"{where}: lattice vectors are linearly dependent")


def flat_tight_binding(group: h5py.Group, where: str, prefix: str, out: dict) -> None:
    """A TightBinding's arrays (shape-, type- and range-checked) into ``out``."""
    from qgt_mpi.io.checks import CELL_INDEX_MAX, ENERGY_MAX_MEV, LENGTH_MAX

    arrays = {name: fields.dataset(group, name, where, _TB_LAYOUT[name][0])
              for name in TB_FIELDS}
    sizes = {"n": arrays["t"].shape[0] if arrays["t"].ndim == 1 else -1,
             "o": arrays["positions"].shape[0] if arrays["positions"].ndim == 2 else -1}
    for name, (_kind, dims) in _TB_LAYOUT.items():
        fields.shape(arrays[name], tuple(sizes[d] if isinstance(d, str) else d for d in dims),
                     name, where)
    for name, high, unit in (("lattice", LENGTH_MAX, "a"), ("positions", LENGTH_MAX, "a"),
                             ("t", ENERGY_MAX_MEV, "meV"), ("R", CELL_INDEX_MAX, "cells")):
        fields.bounded(arrays[name], high, unit, name, where)
    lattice_checks(arrays["lattice"], arrays["positions"], where)
    for name in ("a", "b"):
        fields.indices(arrays[name], sizes["o"], name, where)
    out.update({prefix + name: value for name, value in arrays.items()})
    out[prefix + "info"] = fields.json_attr(group, "info_json", where)


def flat_flattened(group: h5py.Group, where: str, prefix: str, out: dict,
                   flat: Callable) -> None:
    """An exactly flattened model's attributes and, through ``flat``, its parent."""
    from qgt_mpi.io.checks import ENERGY_MAX_MEV

    try:
        targets = np.asarray(group.attrs["targets"], dtype=float).ravel()
        gap_tol = float(group.attrs["gap_tol"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: attributes targets (numbers) and gap_tol (a number) "
                         "are required") from None
    if not (np.all(np.isfinite(targets)) and np.all(np.abs(targets) <= ENERGY_MAX_MEV)):
        raise ValueError(f"{where}: attribute targets must be finite with |x| <= "
                         f"{ENERGY_MAX_MEV:g} meV")
    if not (math.isfinite(gap_tol) and 0 <= gap_tol <= ENERGY_MAX_MEV):
        raise ValueError(f"{where}: attribute gap_tol = {gap_tol!r} must be in "
                         f"[0, {ENERGY_MAX_MEV:g}] meV")
    out[prefix + "targets"] = targets
    out[prefix + "gap_tol"] = gap_tol
    parent = group.get("parent")
    if not isinstance(parent, h5py.Group):
        raise ValueError(f"{where}: sub-group 'parent' (the flattened model) is missing")
    flat(parent, prefix + "parent/")


def build_tight_binding(flat: dict, prefix: str) -> TightBinding:
    """The TightBinding of :func:`flat_tight_binding`."""
    return TightBinding(**{n: flat[prefix + n] for n in TB_FIELDS}, info=flat[prefix + "info"])


def build_flattened(flat: dict, prefix: str, build: Callable) -> FlattenedModel:
    """The FlattenedModel of :func:`flat_flattened` (its parent through ``build``)."""
    return FlattenedModel(build(flat, prefix + "parent/"), flat[prefix + "targets"],
                          flat[prefix + "gap_tol"])
