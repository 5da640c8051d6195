"""Model-file class of the continuum models: ``ContinuumModel`` (version 2; theory §2.5a).

H(k) = H0 + kx Hx + ky Hy + |k|² H2 on one CSR pattern (models/continuum/builder.py): datasets
``rows``, ``cols`` (nnz,) int64 and ``h0``, ``hx``, ``hy``, ``h2`` (nnz,) complex128 exactly as
in memory, ``lattice`` (2, 2) and the spec they were built from — ``b`` (2, 2), the attribute
``layers_json`` (kinetic kind, point κ, ħv, rotation, mass, c, potential of each layer),
``harmonic_layers`` (nh, 2) (a, b), ``harmonic_shift`` (nh, 2), ``harmonic_matrix`` (nh, no,
no), the attributes ``shells``, ``valley`` (1, −1, 0 = both), ``spin`` and ``spec_info_json``
— so high-symmetry points, the valley operator, ``shift_map`` and ``describe()`` come back;
``operators`` (layer, sublattice, valley) as CSR groups, ``info_json`` and, for the chiral BM
model, ``resolve_default``. Read back as a ContinuumModel (a BM preset too: its facts are in
``info``); nothing is rebuilt.
"""

from __future__ import annotations

import math

import h5py
import numpy as np

from qgt_mpi.models.continuum.builder import ContinuumModel
from qgt_mpi.models.continuum.spec import (
    KINETIC_ORBITALS,
    VALLEYS,
    ContinuumSpec,
    Harmonic,
    Layer,
    check_spec,
)
from qgt_mpi.models.modelfile import fields
from qgt_mpi.models.modelfile.dense import lattice_checks

VALUES = ("h0", "hx", "hy", "h2")
VALUE_MAX = 1e9  # |H0| meV, |Hx|, |Hy| meV nm, |H2| meV nm^2: finite and far beyond any model
SHELLS_MAX = 1000
_LAYER_NUMBERS = ("hbar_v", "rotation", "mass", "c", "potential")


def put_continuum(group: h5py.Group, model: ContinuumModel) -> None:
    """Write a ContinuumModel's pattern, values and spec (module doc)."""
    spec = model.spec
    group.attrs["class"] = "ContinuumModel"
    group.create_dataset("lattice", data=model.lattice)
    group.create_dataset("b", data=model.b)
    group.create_dataset("rows", data=model.rows)
    group.create_dataset("cols", data=model.cols)
    for name in VALUES:
        group.create_dataset(name, data=getattr(model, "_" + name))
    layers = [{"kinetic": x.kinetic, "point": [float(p) for p in x.point],
               **{k: float(getattr(x, k)) for k in _LAYER_NUMBERS}} for x in spec.layers]
    group.attrs["layers_json"] = fields.json_text(layers)
    no = spec.orbitals
    group.create_dataset("harmonic_layers", data=np.array(
        [(h.a, h.b) for h in spec.harmonics], dtype=np.int64).reshape(-1, 2))
    group.create_dataset("harmonic_shift", data=np.array(
        [tuple(h.shift) for h in spec.harmonics], dtype=np.int64).reshape(-1, 2))
    group.create_dataset("harmonic_matrix", data=np.array(
        [np.asarray(h.matrix, dtype=complex) for h in spec.harmonics],
        dtype=complex).reshape(-1, no, no))
    group.attrs["shells"] = int(spec.shells)
    group.attrs["valley"] = int(spec.valley)
    group.attrs["spin"] = int(spec.spin)
    group.attrs["spec_info_json"] = fields.json_text(spec.info)
    group.attrs["info_json"] = fields.json_text(model.info)
    resolve = getattr(model, "resolve_default", None)
    if resolve:
        group.attrs["resolve_default"] = str(resolve)
    fields.put_operators(group, model.operators)


def _integer(group: h5py.Group, name: str, where: str, allowed) -> int:
    try:
        value = group.attrs[name]
        ok = float(value) == int(value) and int(value) in allowed
    except (KeyError, TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{where}: attribute {name} must be an integer in "
                         f"{sorted(allowed) if len(allowed) < 10 else 'range'}")
    return int(value)


def _layers(group: h5py.Group, where: str) -> tuple[Layer, ...]:
    from qgt_mpi.io.checks import ENERGY_MAX_MEV

    raw = fields.json_attr(group, "layers_json", where, None, list)
    assert isinstance(raw, list)
    layers = []
    for entry in raw:
        try:
            kinetic, point = entry["kinetic"], [float(x) for x in entry["point"]]
            numbers = {k: float(entry[k]) for k in _LAYER_NUMBERS}
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: attribute layers_json: every layer needs kinetic, "
                             f"point [x, y] and the numbers {list(_LAYER_NUMBERS)}") from None
        values = [*point, *numbers.values()]
        if (kinetic not in KINETIC_ORBITALS or len(point) != 2
                or not all(math.isfinite(x) and abs(x) <= ENERGY_MAX_MEV for x in values)):
            raise ValueError(f"{where}: attribute layers_json: kinetic must be one of "
                             f"{sorted(KINETIC_ORBITALS)}, point two numbers, every number "
                             f"finite with |x| <= {ENERGY_MAX_MEV:g}")
        layers.append(Layer(kinetic, (point[0], point[1]), **numbers))
    if not 1 <= len(layers) <= 100:
        raise ValueError(f"{where}: attribute layers_json must list 1 to 100 layers")
    return tuple(layers)


def _spec(group: h5py.Group, where: str) -> ContinuumSpec:
    from qgt_mpi.io.checks import CELL_INDEX_MAX, ENERGY_MAX_MEV, LENGTH_MAX

    b = fields.dataset(group, "b", where, "f")
    fields.shape(b, (2, 2), "b", where)
    fields.bounded(b, LENGTH_MAX, "1/nm", "b", where)
    layers = _layers(group, where)
    pairs = fields.dataset(group, "harmonic_layers", where, "i")
    shift = fields.dataset(group, "harmonic_shift", where, "i")
    matrix = fields.dataset(group, "harmonic_matrix", where, "fc")
    nh = pairs.shape[0] if pairs.ndim == 2 else -1
    fields.shape(pairs, (nh, 2), "harmonic_layers", where)
    fields.shape(shift, (nh, 2), "harmonic_shift", where)
    if matrix.ndim != 3 or matrix.shape[0] != nh:
        raise ValueError(f"{where}: dataset 'harmonic_matrix' has shape {matrix.shape}, "
                         f"expected ({nh}, orbitals, orbitals)")
    fields.indices(pairs, len(layers), "harmonic_layers", where, "layer")
    fields.bounded(shift, CELL_INDEX_MAX, "", "harmonic_shift", where)
    fields.bounded(matrix, ENERGY_MAX_MEV, "meV", "harmonic_matrix", where)
    harmonics = tuple(Harmonic(int(p[0]), int(p[1]), (int(s[0]), int(s[1])),
                               np.asarray(m, dtype=complex))
                      for p, s, m in zip(pairs, shift, matrix, strict=True))
    spec = ContinuumSpec(b, layers, harmonics,
                         _integer(group, "shells", where, range(1, SHELLS_MAX + 1)),
                         _integer(group, "valley", where, tuple(VALLEYS)),
                         fields.json_attr(group, "spec_info_json", where),  # type: ignore[arg-type]
                         _integer(group, "spin", where, (1, 2)))
    try:
        check_spec(spec)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return spec


def flat_continuum(group: h5py.Group, where: str, prefix: str, out: dict) -> None:
    """A ContinuumModel's spec, pattern and values (shape-, type-, range-checked) into
    ``out``; the spec goes as one small object."""
    spec = _spec(group, where)
    lattice = fields.dataset(group, "lattice", where, "f")
    lattice_checks(lattice, np.zeros((0, 2)), where)
    if not np.allclose(lattice @ spec.b.T, 2 * np.pi * np.eye(2), rtol=0, atol=1e-9 * 2 * np.pi):
        raise ValueError(f"{where}: datasets 'lattice' and 'b' are not reciprocal "
                         "(a_i . b_j = 2 pi delta_ij)")
    ng = 1 + 3 * spec.shells * (spec.shells + 1)
    norb = len(spec.layers) * ng * spec.orbitals * len(VALLEYS[spec.valley])
    from qgt_mpi.run.memory import MIB, available_mib

    need = (norb * 16 + (2 * spec.shells + 1) ** 2 * 48) / MIB  # positions, the G table
    if need > 0.5 * available_mib():
        raise ValueError(f"{where}: shells = {spec.shells} makes {norb} orbitals ({need:.3g} "
                         "MiB before any value), more than half the memory available")
    arrays = {name: fields.dataset(group, name, where, "i") for name in ("rows", "cols")}
    arrays.update({name: fields.dataset(group, name, where, "fc") for name in VALUES})
    n = arrays["rows"].shape[0] if arrays["rows"].ndim == 1 else -1
    for name, value in arrays.items():
        fields.shape(value, (n,), name, where)
    for name in ("rows", "cols"):
        fields.indices(arrays[name], norb, name, where)
    for name in VALUES:
        fields.bounded(arrays[name], VALUE_MAX, "meV nm^p", name, where)
    key = arrays["rows"].astype(np.int64) * norb + arrays["cols"]
    if key.size and np.any(np.diff(key) <= 0):
        raise ValueError(f"{where}: datasets 'rows', 'cols' must be sorted by (row, col) "
                         "without duplicates (CSR order)")
    out.update({prefix + name: value for name, value in arrays.items()})
    out.update({prefix + "spec": spec, prefix + "lattice": lattice,
                prefix + "info": fields.json_attr(group, "info_json", where)})
    fields.read_operators(group, where, norb, prefix, out)
    resolve = group.attrs.get("resolve_default")
    if resolve is not None and str(resolve) not in out[prefix + "operators"]:
        raise ValueError(f"{where}: attribute resolve_default = {resolve!r} names no operator "
                         f"(have {out[prefix + 'operators']})")
    out[prefix + "resolve_default"] = None if resolve is None else str(resolve)


def build_continuum(flat: dict, prefix: str) -> ContinuumModel:
    """The ContinuumModel of :func:`flat_continuum` (nothing rebuilt)."""
    spec = flat[prefix + "spec"]
    norb = len(spec.layers) * (1 + 3 * spec.shells * (spec.shells + 1)) * spec.orbitals \
        * len(VALLEYS[spec.valley])
    model = ContinuumModel.from_arrays(
        spec, flat[prefix + "lattice"], (flat[prefix + "rows"], flat[prefix + "cols"]),
        tuple(flat[prefix + name] for name in VALUES), fields.operators(flat, prefix, norb),
        flat[prefix + "info"])
    if flat[prefix + "resolve_default"] is not None:
        model.resolve_default = flat[prefix + "resolve_default"]  # type: ignore[attr-defined]
    return model
