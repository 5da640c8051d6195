"""Model-file classes of the bond models: ``BondModel`` and ``CarbonModel`` (version 2).

``BondModel`` (supercells, any sparse bond list; models/sparse.py): datasets ``lattice``
(2, 2), ``positions`` (norb, 2), the bonds ``a``, ``b`` (nbond,) int64 (a = rows[entry],
b = cols[entry]: the same bond order, so the same pattern and the same sums), ``d`` (nbond, 2)
Cartesian displacements and ``t`` (nbond,) complex amplitudes exactly as in memory, the
attribute ``info_json`` and the sub-group ``operators`` (one CSR group per operator).

``CarbonModel`` (tbg_atomistic, atomistic; models/carbon.py): a BondModel plus datasets
``layer``, ``sublattice`` (norb,) int, ``z`` (norb,) nm, ``orientation`` (n_layers,) radians,
the attribute ``params_json`` (Slater–Koster parameters), ``m`` and ``theta`` when set, the
valley operator's bond model in the sub-group ``valley_model`` and the relaxation's maps in
``maps``. The ``relaxation`` object of ``tbg_atomistic(relaxation=...)`` is not stored (its
stacking maps are).
"""

from __future__ import annotations

import math

import h5py
import numpy as np

from qgt_mpi.models.carbon import DEFAULTS, CarbonModel
from qgt_mpi.models.modelfile import fields
from qgt_mpi.models.modelfile.dense import lattice_checks
from qgt_mpi.models.sparse import BondModel

_BOND_LAYOUT = {"a": "i", "b": "i", "d": "f", "t": "fc"}
_CARBON = {"layer": "i", "sublattice": "i", "z": "f", "orientation": "f"}
LAYERS_MAX = 1000


def put_bonds(group: h5py.Group, model: BondModel, cls: str = "BondModel") -> None:
    """Write a BondModel's bonds in memory order (module doc)."""
    group.attrs["class"] = cls
    group.create_dataset("lattice", data=model.lattice)
    group.create_dataset("positions", data=model.positions)
    group.create_dataset("a", data=model.rows[model.entry])
    group.create_dataset("b", data=model.cols[model.entry])
    group.create_dataset("d", data=model.d)
    group.create_dataset("t", data=model.t)
    group.attrs["info_json"] = fields.json_text(model.info)
    fields.put_operators(group, model.operators)


def put_carbon(group: h5py.Group, model: CarbonModel) -> None:
    """Write a CarbonModel: its bonds, carbon arrays, valley operator and maps."""
    put_bonds(group, model, "CarbonModel")
    for name in _CARBON:
        group.create_dataset(name, data=getattr(model, name))
    group.attrs["params_json"] = fields.json_text(model.params)
    for name in ("m", "theta"):
        if hasattr(model, name):
            group.attrs[name] = getattr(model, name)
    put_bonds(group.create_group("valley_model"), model.valley_model)
    fields.put_arrays(group, "maps", model.maps)


def flat_bonds(group: h5py.Group, where: str, prefix: str, out: dict) -> None:
    """A BondModel's arrays (shape-, type- and range-checked) into ``out``."""
    from qgt_mpi.io.checks import ENERGY_MAX_MEV, LENGTH_MAX

    lattice = fields.dataset(group, "lattice", where, "f")
    positions = fields.dataset(group, "positions", where, "f")
    lattice_checks(lattice, positions, where)
    arrays = {name: fields.dataset(group, name, where, kind)
              for name, kind in _BOND_LAYOUT.items()}
    n = arrays["t"].shape[0] if arrays["t"].ndim == 1 else -1
    for name, want in (("t", (n,)), ("a", (n,)), ("b", (n,)), ("d", (n, 2))):
        fields.shape(arrays[name], want, name, where)
    fields.bounded(arrays["t"], ENERGY_MAX_MEV, "meV", "t", where)
    fields.bounded(arrays["d"], LENGTH_MAX, "length units", "d", where)
    norb = positions.shape[0]
    for name in ("a", "b"):
        fields.indices(arrays[name], norb, name, where)
    out.update({prefix + "lattice": lattice, prefix + "positions": positions})
    out.update({prefix + name: value for name, value in arrays.items()})
    out[prefix + "info"] = fields.json_attr(group, "info_json", where)
    fields.read_operators(group, where, norb, prefix, out)


def flat_carbon(group: h5py.Group, where: str, prefix: str, out: dict) -> None:
    """A CarbonModel's arrays (bonds, carbon arrays, valley bonds, maps) into ``out``."""
    from qgt_mpi.io.checks import LENGTH_MAX

    flat_bonds(group, where, prefix, out)
    norb = out[prefix + "positions"].shape[0]
    carbon = {name: fields.dataset(group, name, where, kind) for name, kind in _CARBON.items()}
    for name in ("layer", "sublattice", "z"):
        fields.shape(carbon[name], (norb,), name, where)
    fields.indices(carbon["sublattice"], 2, "sublattice", where, "sublattice")
    fields.indices(carbon["layer"], LAYERS_MAX, "layer", where, "layer")
    nlayer = int(carbon["layer"].max()) + 1 if norb else 0
    fields.shape(carbon["orientation"], (nlayer,), "orientation", where)
    fields.bounded(carbon["z"], LENGTH_MAX, "nm", "z", where)
    fields.bounded(carbon["orientation"], 2 * math.pi, "radians", "orientation", where)
    out.update({prefix + name: value for name, value in carbon.items()})
    params = fields.json_attr(group, "params_json", where, None)
    assert isinstance(params, dict)
    bad = [k for k in DEFAULTS if not (isinstance(params.get(k), (int, float))
                                       and math.isfinite(params[k]))]
    if bad or set(params) != set(DEFAULTS) or not 0 < params["a"] <= LENGTH_MAX:
        raise ValueError(f"{where}: attribute params_json must give the finite numbers "
                         f"{sorted(DEFAULTS)} (a > 0)")
    out[prefix + "params"] = {k: float(v) for k, v in params.items()}
    if "m" in group.attrs:
        m = fields.number_attr(group, "m", where, 1, 10**6)
        if m != int(m):
            raise ValueError(f"{where}: attribute m = {m!r} must be an integer")
        out[prefix + "m"] = int(m)
    if "theta" in group.attrs:
        out[prefix + "theta"] = fields.number_attr(group, "theta", where, -360.0, 360.0)
    valley = group.get("valley_model")
    if not isinstance(valley, h5py.Group) or valley.attrs.get("class") != "BondModel":
        raise ValueError(f"{where}: sub-group 'valley_model' (class BondModel) is missing")
    flat_bonds(valley, f"group {valley.name}", prefix + "valley_model/", out)
    if out[prefix + "valley_model/positions"].shape != (norb, 2):
        raise ValueError(f"group {valley.name}: dataset 'positions' must have shape "
                         f"({norb}, 2), as the model's")
    fields.read_arrays(group, "maps", where, LENGTH_MAX, prefix, out)


def build_bonds(flat: dict, prefix: str, cls: type = BondModel) -> BondModel:
    """The BondModel (or ``cls``) of :func:`flat_bonds`."""
    norb = flat[prefix + "positions"].shape[0]
    return cls(flat[prefix + "lattice"], flat[prefix + "positions"], flat[prefix + "a"],
               flat[prefix + "b"], flat[prefix + "d"], flat[prefix + "t"],
               flat[prefix + "info"], fields.operators(flat, prefix, norb))


def build_carbon(flat: dict, prefix: str) -> CarbonModel:
    """The CarbonModel of :func:`flat_carbon`."""
    model = build_bonds(flat, prefix, CarbonModel)
    assert isinstance(model, CarbonModel)
    for name in (*_CARBON, "params"):
        setattr(model, name, flat[prefix + name])
    model.layer = model.layer.astype(np.int64)
    model.sublattice = model.sublattice.astype(np.int64)
    for name in ("m", "theta"):
        if prefix + name in flat:
            setattr(model, name, flat[prefix + name])
    model.valley_model = build_bonds(flat, prefix + "valley_model/")
    model.maps = fields.arrays(flat, prefix, "maps")
    return model
