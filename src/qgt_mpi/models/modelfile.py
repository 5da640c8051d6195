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

import h5py
import numpy as np

from qgt_mpi.models.flatten import FlattenedModel
from qgt_mpi.models.lattice import TightBinding

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


def save_model(model, path: str, group: str | None = None) -> None:
    """Write ``model`` to the HDF5 model file ``path`` (serial; overwrites).

    With ``group``, the model is added as that group of an existing file instead (the
    Python API stores its model in the result file as ``/model/definition``). Under MPI,
    call it on one rank only (the CLI and the API use rank 0).
    """
    with h5py.File(path, "a" if group else "w") as f:
        target = f.create_group(group) if group else f
        target.attrs["format"] = FORMAT
        target.attrs["format_version"] = VERSION
        _put(target, model)


def _flat(group: h5py.Group, prefix: str, out: dict) -> None:
    """Model tree of ``group`` as flat ``{"prefix/name": array or value}`` entries."""
    cls = group.attrs.get("class")
    out[prefix + "class"] = str(cls)
    if cls == "TightBinding":
        for name in _TB_FIELDS:
            out[prefix + name] = group[name][()]
        out[prefix + "info"] = json.loads(group.attrs["info_json"])
    elif cls == "FlattenedModel":
        out[prefix + "targets"] = np.asarray(group.attrs["targets"])
        out[prefix + "gap_tol"] = float(group.attrs["gap_tol"])
        _flat(group["parent"], prefix + "parent/", out)
    else:
        raise ValueError(f"unknown model class {cls!r} in group {group.name}")


def read_model_arrays(path: str, group: str = "/") -> dict:
    """The model tree of a model file (or of ``group`` in a file) as flat arrays (serial)."""
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
    except OSError as err:
        raise ValueError(f"{path}: cannot read model file ({err})") from None


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
            raise ValueError(f"{path}: H(k) is not Hermitian (max |H - H^dagger| = "
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
