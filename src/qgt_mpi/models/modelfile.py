"""qgt_mpi's own model file (HDF5): any model saved and read back with bit-identical H(k).

Layout (``format = "qgt_mpi model"``, ``format_version = 1``): the root group is one model;
``class`` says which. ``TightBinding``: datasets ``lattice`` (2, 2), ``positions`` (norb, 2)
Cartesian, ``R`` (nh, 2), ``a``, ``b``, ``t`` (complex128, meV) and the attribute
``info_json``. ``FlattenedModel`` (exact flattening, theory §2.3): attributes ``targets`` and
``gap_tol`` and its parent model in the sub-group ``parent``. Arrays are stored as they are in
memory, so the model read back evaluates the same floating-point operations on the same bits.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np

from qgt_mpi.models.flatten import FlattenedModel
from qgt_mpi.models.lattice import TightBinding
from qgt_mpi.models.textfile import ModelFileError

FORMAT, VERSION = "qgt_mpi model", 1
_TB_FIELDS = ("lattice", "positions", "R", "a", "b", "t")


def _put(group: h5py.Group, model) -> None:
    """Write one model into ``group`` (recursively for wrapped models)."""
    if isinstance(model, TightBinding):
        group.attrs["class"] = "TightBinding"
        for name in _TB_FIELDS:
            group.create_dataset(name, data=getattr(model, name))
        group.attrs["info_json"] = json.dumps(model.info, sort_keys=True, default=str)
    elif isinstance(model, FlattenedModel):
        group.attrs["class"] = "FlattenedModel"
        group.attrs["targets"] = model.targets
        group.attrs["gap_tol"] = model.gap_tol
        _put(group.create_group("parent"), model.parent)
    else:
        raise TypeError(f"cannot save a {type(model).__name__}: the model file holds "
                        "TightBinding and FlattenedModel models")


def save_model(model, path: str, group: str | None = None, overwrite: bool = False) -> None:
    """Write ``model`` to the HDF5 model file ``path`` (serial).

    The output is checked like a run's (io/output_guard.py): never a directory, a special
    file or a planted symlink at a helper name; an existing file is replaced only with
    ``overwrite=True``. The file is written under a fresh temporary name in the same
    directory (created exclusively) and renamed, so a failing save leaves an existing file
    whole. With ``group``, the model is added as that group of an existing file instead (the
    Python API stores its model in the result file as ``/model/definition``). Under MPI,
    call it on one rank only (the CLI and the API use rank 0).
    """
    if group:
        with h5py.File(path, "a") as f:
            _write(f.create_group(group), model)
        return
    import os
    import tempfile

    from qgt_mpi.io.output_guard import check_output

    check_output(path, None, overwrite, key="path", hint="pass overwrite=True (API) or "
                 "--overwrite (qgt-mpi model save) to replace it")
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                                     dir=directory)
    os.close(fd)
    try:
        with h5py.File(temporary, "w") as f:
            _write(f, model)
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)


def _write(target: h5py.Group, model) -> None:
    """The format attributes and the model tree into ``target``."""
    target.attrs["format"] = FORMAT
    target.attrs["format_version"] = VERSION
    _put(target, model)


# dtype kind and shape (-1: any length, "n": the hopping count, "o": the orbital count)
_TB_LAYOUT = {"lattice": ("f", (2, 2)), "positions": ("f", ("o", 2)), "R": ("i", ("n", 2)),
              "a": ("i", ("n",)), "b": ("i", ("n",)), "t": ("fc", ("n",))}
_MAX_DEPTH = 4  # nested FlattenedModel groups accepted


def _dataset(group: h5py.Group, name: str, where: str) -> np.ndarray:
    """Dataset ``name`` of ``group`` as an array; a missing or non-numeric one is refused."""
    item = group.get(name)
    if not isinstance(item, h5py.Dataset):
        raise ValueError(f"{where}: dataset {name!r} is missing")
    from qgt_mpi.run.memory import MIB, available_mib

    need = float(item.size) * item.dtype.itemsize / MIB  # compressed: the file can be tiny
    if need > 0.5 * available_mib():
        raise ValueError(f"{where}: dataset {name!r} holds {item.shape} values ({need:.3g} "
                         "MiB), more than half the memory available on this node")
    kinds = _TB_LAYOUT[name][0]
    if item.dtype.kind not in kinds + ("u" if "i" in kinds else ""):
        raise ValueError(f"{where}: dataset {name!r} has type {item.dtype}, expected "
                         f"{ {'f': 'float', 'i': 'integer', 'fc': 'float or complex'}[kinds]}")
    return np.asarray(item[()])


def _check_tb(arrays: dict[str, np.ndarray], where: str) -> None:
    """Shapes, finiteness and ranges of a TightBinding's arrays (ValueError naming them)."""
    from qgt_mpi.io.checks import CELL_INDEX_MAX, ENERGY_MAX_MEV, LENGTH_MAX

    sizes = {"n": arrays["t"].shape[0] if arrays["t"].ndim == 1 else -1,
             "o": arrays["positions"].shape[0] if arrays["positions"].ndim == 2 else -1}
    for name, (_kind, shape) in _TB_LAYOUT.items():
        want = tuple(sizes.get(d, d) if isinstance(d, str) else d for d in shape)
        if arrays[name].shape != want:
            raise ValueError(f"{where}: dataset {name!r} has shape {arrays[name].shape}, "
                             f"expected {want}")
    for name in ("lattice", "positions", "t"):
        if not np.all(np.isfinite(arrays[name])):
            raise ValueError(f"{where}: dataset {name!r} holds a non-finite number")
    for name, high, unit in (("lattice", LENGTH_MAX, "a"), ("positions", LENGTH_MAX, "a"),
                             ("t", ENERGY_MAX_MEV, "meV"), ("R", CELL_INDEX_MAX, "cells")):
        big = float(np.abs(arrays[name]).max()) if arrays[name].size else 0.0
        if big > high:
            raise ValueError(f"{where}: dataset {name!r} has |value| = {big:.6g}, allowed "
                             f"<= {high:g} {unit}")
    if abs(np.linalg.det(arrays["lattice"])) < 1e-12:
        raise ValueError(f"{where}: lattice vectors are linearly dependent")
    norb = sizes["o"]
    for name in ("a", "b"):
        if arrays[name].size and (arrays[name].min() < 0 or arrays[name].max() >= norb):
            raise ValueError(f"{where}: dataset {name!r} has an orbital index outside "
                             f"0..{norb - 1}")


def _flat(group: h5py.Group, prefix: str, out: dict, depth: int = 0) -> None:
    """Model tree of ``group`` as flat ``{"prefix/name": array or value}`` entries, every
    array shape-, type- and range-checked (a file is data from outside)."""
    from qgt_mpi.io.checks import ENERGY_MAX_MEV

    cls = group.attrs.get("class")
    where = f"group {group.name}"
    if isinstance(cls, bytes):
        cls = cls.decode(errors="replace")
    out[prefix + "class"] = str(cls)
    if cls == "TightBinding":
        arrays = {name: _dataset(group, name, where) for name in _TB_FIELDS}
        _check_tb(arrays, where)
        out.update({prefix + name: value for name, value in arrays.items()})
        try:
            info = json.loads(group.attrs.get("info_json", "{}"))
        except (TypeError, ValueError):
            raise ValueError(f"{where}: attribute info_json is not JSON text") from None
        if not isinstance(info, dict):
            raise ValueError(f"{where}: attribute info_json must be a JSON object "
                             f"{{...}}, not a {type(info).__name__}")
        out[prefix + "info"] = info
    elif cls == "FlattenedModel":
        if depth >= _MAX_DEPTH:
            raise ValueError(f"{where}: models nested deeper than {_MAX_DEPTH} levels")
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
        _flat(parent, prefix + "parent/", out, depth + 1)
    else:
        raise ValueError(f"unknown model class {cls!r} in group {group.name}")


def read_model_arrays(path: str, group: str = "/") -> dict:
    """The model tree of a model file (or of ``group`` in a file) as flat arrays (serial).

    The file goes through the input guard first (a regular file within the model-file size
    cap, io/input_guard.py); every problem is one ValueError naming the file.
    """
    from qgt_mpi.io.checks import InputError
    from qgt_mpi.io.input_guard import check_input

    try:
        check_input(path, "model")
    except InputError as err:
        raise ModelFileError(path, None, err.allowed) from None
    try:
        with h5py.File(path, "r") as h5:
            if group not in h5:
                raise ValueError(f"{path}: no model group {group!r}")
            f = h5[group]
            if f.attrs.get("format") != FORMAT:
                raise ValueError(f"{path}: not a qgt_mpi model file (no format = {FORMAT!r})")
            if int(f.attrs.get("format_version", 0)) > VERSION:
                raise ValueError(f"{path}: model file version {f.attrs['format_version']} is "
                                 f"newer than this qgt_mpi reads ({VERSION})")
            out: dict = {}
            _flat(f, "", out)
            return out
    except ModelFileError:
        raise
    except ValueError as err:
        text = str(err).removeprefix(f"{path}: ")
        raise ModelFileError(path, None, text) from None
    except (OSError, KeyError, TypeError) as err:
        raise ModelFileError(path, None, f"cannot read model file ({err})") from None


def _build(flat: dict, prefix: str = ""):
    """Model from the flat arrays of :func:`read_model_arrays`."""
    cls = flat[prefix + "class"]
    if cls == "TightBinding":
        return TightBinding(**{n: flat[prefix + n] for n in _TB_FIELDS},
                            info=flat[prefix + "info"])
    return FlattenedModel(_build(flat, prefix + "parent/"), flat[prefix + "targets"],
                          flat[prefix + "gap_tol"])


def load_model(path: str, comm=None, group: str = "/"):
    """Read a model file (or the model ``group`` of a result file, e.g. "/model/definition").

    Collective over ``comm`` when given (rank 0 reads and broadcasts).
    """
    if comm is None:
        return _hermitian(_build(read_model_arrays(path, group)), path)
    from qgt_mpi.parallel.rootcall import root_call

    return _hermitian(_build(root_call(comm, lambda: read_model_arrays(path, group))), path)


HERMITIAN_RTOL = 1e-10  # accepted max |H − H†| relative to max |H| at the probe k-points


def _hermitian(model, path: str):
    """``model`` if H(k) = H(k)† at two generic k-points, else ValueError naming the file.

    A file is data from outside (edited, converted, truncated): a non-Hermitian H gives
    complex "energies" that the solvers silently take as real. O(bonds); the same on every
    rank (every rank holds the same arrays).
    """
    from qgt_mpi.models.sparse import as_sparse

    sparse = as_sparse(model.parent if isinstance(model, FlattenedModel) else model)
    for k in (np.array([0.1234, -0.0457]), np.array([-0.731, 0.389])):
        h = sparse.csr(k)[0]
        scale = float(abs(h).max()) if h.nnz else 0.0
        error = float(abs(h - h.getH()).max()) if h.nnz else 0.0
        if error > HERMITIAN_RTOL * max(scale, 1.0):
            raise ModelFileError(path, None, f"H(k) is not Hermitian (max |H - H^dagger| = "
                             f"{error:.3g} meV at k = {k.tolist()}, max |H| = {scale:.3g} "
                             "meV): every hopping t_ab(R) needs its partner t_ba(-R) = t_ab(R)*")
    return model


def model_summary(path: str) -> str:
    """Multi-line human summary of a model file (serial)."""
    model = load_model(path)
    lines = [f"{path}: qgt_mpi model file (version {VERSION})"]
    for key, value in model.describe().items():
        lines.append(f"  {key:<22} {value}")
    lines.append(f"  {'lattice':<22} {np.asarray(model.lattice).tolist()}")
    lines.append(f"  {'cell_area':<22} {model.cell_area:.12g}")
    return "\n".join(lines)
