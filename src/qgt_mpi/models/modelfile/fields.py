"""Reading the parts of a model file: datasets, JSON attributes, CSR operators, with checks.

A model file is data from outside (edited, converted, truncated, fuzzed): every helper here
raises ValueError naming the group and the dataset or attribute, which the reader turns into
one :class:`~qgt_mpi.models.textfile.ModelFileError` naming the file (never a traceback).
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import scipy.sparse as sp

KINDS = {"f": "float", "i": "integer", "fc": "float or complex"}


def dataset(group: h5py.Group, name: str, where: str, kinds: str) -> np.ndarray:
    """Dataset ``name`` of ``group`` as an array of dtype kind in ``kinds`` ("f", "i" (also
    unsigned), "fc"); a missing, non-numeric or larger-than-memory one is refused."""
    item = group.get(name)
    if not isinstance(item, h5py.Dataset):
        raise ValueError(f"{where}: dataset {name!r} is missing")
    from qgt_mpi.run.memory import MIB, available_mib

    need = float(item.size) * item.dtype.itemsize / MIB  # compressed: the file can be tiny
    if need > 0.5 * available_mib():
        raise ValueError(f"{where}: dataset {name!r} holds {item.shape} values ({need:.3g} "
                         "MiB), more than half the memory available on this node")
    if item.dtype.kind not in kinds + ("u" if "i" in kinds else ""):
        raise ValueError(f"{where}: dataset {name!r} has type {item.dtype}, expected "
                         f"{KINDS[kinds]}")
    return np.asarray(item[()])


def shape(array: np.ndarray, want: tuple[int, ...], name: str, where: str) -> None:
    """ValueError unless ``array.shape == want``."""
    if array.shape != want:
        raise ValueError(f"{where}: dataset {name!r} has shape {array.shape}, expected {want}")


def bounded(array: np.ndarray, high: float, unit: str, name: str, where: str) -> None:
    """ValueError unless every entry is finite with |x| <= ``high``."""
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise ValueError(f"{where}: dataset {name!r} holds a non-finite number")
    big = float(np.abs(array).max()) if array.size else 0.0
    if big > high:
        raise ValueError(f"{where}: dataset {name!r} has |value| = {big:.6g}, allowed "
                         f"<= {high:g} {unit}")


def indices(array: np.ndarray, n: int, name: str, where: str, what: str = "orbital") -> None:
    """ValueError unless every entry is in [0, n)."""
    if array.size and (array.min() < 0 or array.max() >= n):
        raise ValueError(f"{where}: dataset {name!r} has an {what} index outside 0..{n - 1}")


def json_text(value: object) -> str:
    """``value`` as JSON text; numpy scalars and arrays as their Python values (exact)."""
    def plain(x: object) -> object:
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
        return str(x)

    return json.dumps(value, sort_keys=True, default=plain)


def json_attr(group: h5py.Group, name: str, where: str, default: str | None = "{}",
              kind: type = dict) -> object:
    """The JSON attribute ``name`` of ``group`` decoded, which must be a ``kind``."""
    text = group.attrs.get(name, default)
    if text is None:
        raise ValueError(f"{where}: attribute {name} is missing")
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: attribute {name} is not JSON text") from None
    if not isinstance(value, kind):
        noun = "a JSON object {...}" if kind is dict else f"a JSON {kind.__name__}"
        raise ValueError(f"{where}: attribute {name} must be {noun}, not a "
                         f"{type(value).__name__}")
    return value


def number_attr(group: h5py.Group, name: str, where: str, low: float, high: float) -> float:
    """The number attribute ``name`` of ``group``, finite and in [low, high]."""
    try:
        value = float(group.attrs[name])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: attribute {name} (a number) is required") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{where}: attribute {name} = {value!r} must be in [{low:g}, "
                         f"{high:g}]")
    return value


def put_arrays(group: h5py.Group, sub: str, arrays: dict[str, np.ndarray]) -> None:
    """Named arrays (a model's ``maps``) as datasets of the sub-group ``sub``, if any."""
    if arrays:
        target = group.create_group(sub)
        for name, value in arrays.items():
            target.create_dataset(name, data=np.asarray(value))


def _subgroup(group: h5py.Group, sub: str, where: str) -> h5py.Group | None:
    target = group.get(sub)
    if target is not None and not isinstance(target, h5py.Group):
        raise ValueError(f"{where}: {sub!r} must be a group")
    return target


def read_arrays(group: h5py.Group, sub: str, where: str, high: float, prefix: str,
                out: dict) -> None:
    """The datasets of sub-group ``sub`` (float, finite, |x| <= high) into ``out`` as
    ``prefix + sub + "/" + name``, their names as ``out[prefix + sub]``."""
    target = _subgroup(group, sub, where)
    names = sorted(target) if target is not None else []
    for name in names:
        array = dataset(target, name, f"{where}/{sub}", "f")
        bounded(array, high, "", name, f"{where}/{sub}")
        out[f"{prefix}{sub}/{name}"] = array
    out[prefix + sub] = names


def arrays(flat: dict, prefix: str, sub: str) -> dict[str, np.ndarray]:
    """The arrays :func:`read_arrays` put into ``flat``."""
    return {name: flat[f"{prefix}{sub}/{name}"] for name in flat[prefix + sub]}


_CSR = (("data", "fc"), ("indices", "i"), ("indptr", "i"))


def put_operators(group: h5py.Group, ops: dict[str, sp.spmatrix]) -> None:
    """k-independent operators as sub-groups ``operators/NAME`` of CSR arrays, as in memory."""
    if not ops:
        return
    target = group.create_group("operators")
    for name, op in ops.items():
        csr = sp.csr_matrix(op)
        sub = target.create_group(name)
        for part, _kinds in _CSR:
            sub.create_dataset(part, data=getattr(csr, part))


def read_operators(group: h5py.Group, where: str, norb: int, prefix: str, out: dict) -> None:
    """The CSR arrays of ``operators`` (checked: shape norb x norb, indices, finite) into
    ``out`` as ``prefix + "operators/NAME/part"``, the names as ``out[prefix + "operators"]``."""
    from qgt_mpi.io.checks import ENERGY_MAX_MEV

    target = _subgroup(group, "operators", where)
    names = sorted(target) if target is not None else []
    for name in names:
        assert target is not None
        sub, here = target[name], f"{where}/operators/{name}"
        if not isinstance(sub, h5py.Group):
            raise ValueError(f"{here}: must be a group of data, indices, indptr")
        data, index, ptr = (dataset(sub, part, here, kinds) for part, kinds in _CSR)
        shape(ptr, (norb + 1,), "indptr", here)
        shape(data, (index.size,), "data", here)
        bounded(data, ENERGY_MAX_MEV, "", "data", here)
        indices(index, norb, "indices", here)
        if ptr[0] != 0 or ptr[-1] != data.size or np.any(np.diff(ptr.astype(np.int64)) < 0):
            raise ValueError(f"{here}: dataset 'indptr' must rise from 0 to {data.size}")
        for part, value in zip(("data", "indices", "indptr"), (data, index, ptr), strict=True):
            out[f"{prefix}operators/{name}/{part}"] = value
    out[prefix + "operators"] = names


def operators(flat: dict, prefix: str, norb: int) -> dict[str, sp.csr_matrix]:
    """CSR matrices of the operators :func:`read_operators` put into ``flat``."""
    out = {}
    for name in flat[prefix + "operators"]:
        data, index, ptr = (flat[f"{prefix}operators/{name}/{part}"]
                            for part in ("data", "indices", "indptr"))
        out[name] = sp.csr_matrix((data, index.astype(np.int64), ptr.astype(np.int64)),
                                  shape=(norb, norb))
    return out
