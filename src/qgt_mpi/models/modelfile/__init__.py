"""qgt_mpi's own model file (HDF5): every model kind saved and read back with bit-identical H(k).

Layout (``format = "qgt_mpi model"``): the root group (or ``/model/definition`` of a result
file) is one model; ``class`` says which, and each class stores its arrays exactly as they are
in memory, so the model read back evaluates the same floating-point operations on the same
bits (H(k) and ∂H/∂k compared with ``np.array_equal``). ``format_version`` 1: ``TightBinding``
and ``FlattenedModel`` (:mod:`.dense`); version 2 adds ``BondModel`` and ``CarbonModel``
(:mod:`.bonds`: supercells, tbg_atomistic, atomistic) and ``ContinuumModel``
(:mod:`.continuum`: bm/tbg/tmd/htg_continuum). A file is written with the lowest version that
holds its model (a TightBinding file stays version 1) and both versions are read. Every
problem of a file read is one :class:`ModelFileError` naming it (:mod:`.fields`).
"""

from __future__ import annotations

from collections.abc import Callable

import h5py
import numpy as np

from qgt_mpi.models.carbon import CarbonModel
from qgt_mpi.models.continuum.builder import ContinuumModel
from qgt_mpi.models.flatten import FlattenedModel
from qgt_mpi.models.lattice import TightBinding
from qgt_mpi.models.modelfile import bonds, continuum, dense
from qgt_mpi.models.sparse import BondModel
from qgt_mpi.models.textfile import ModelFileError

FORMAT, VERSION = "qgt_mpi model", 2
CLASSES = {"TightBinding": 1, "FlattenedModel": 1, "BondModel": 2, "CarbonModel": 2,
           "ContinuumModel": 2}  # class -> the format version that introduced it
_MAX_DEPTH = 4  # nested FlattenedModel groups accepted


def _class(model) -> str:
    """The model-file class of ``model`` (subclasses first); TypeError if none holds it."""
    for cls, name in ((CarbonModel, "CarbonModel"), (BondModel, "BondModel"),
                      (ContinuumModel, "ContinuumModel"), (TightBinding, "TightBinding"),
                      (FlattenedModel, "FlattenedModel")):
        if isinstance(model, cls):
            return name
    raise TypeError(f"cannot save a {type(model).__name__}: the model file holds "
                    f"{', '.join(CLASSES)} models")


def _version(model) -> int:
    """The lowest format version that holds ``model`` (1 keeps dense files readable by
    qgt_mpi before version 2)."""
    own = CLASSES[_class(model)]
    return max(own, _version(model.parent)) if isinstance(model, FlattenedModel) else own


def _put(group: h5py.Group, model) -> None:
    """Write one model into ``group`` (recursively for wrapped models)."""
    name = _class(model)
    if name == "CarbonModel":
        bonds.put_carbon(group, model)
    elif name == "BondModel":
        bonds.put_bonds(group, model)
    elif name == "ContinuumModel":
        continuum.put_continuum(group, model)
    elif name == "TightBinding":
        dense.put_tight_binding(group, model)
    else:
        dense.put_flattened(group, model, _put)


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
        _version(model)  # TypeError before the group exists: never an empty model group
        with h5py.File(path, "a") as f:
            try:
                _write(f.create_group(group), model)
            except BaseException:
                if group in f:
                    del f[group]
                raise
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
    target.attrs["format_version"] = _version(model)
    _put(target, model)


def _flat(group: h5py.Group, prefix: str, out: dict, depth: int = 0) -> None:
    """Model tree of ``group`` as flat ``{"prefix/name": array or value}`` entries, every
    array shape-, type- and range-checked (a file is data from outside)."""
    cls = group.attrs.get("class")
    where = f"group {group.name}"
    if isinstance(cls, bytes):
        cls = cls.decode(errors="replace")
    out[prefix + "class"] = str(cls)
    if cls == "TightBinding":
        dense.flat_tight_binding(group, where, prefix, out)
    elif cls == "FlattenedModel":
        if depth >= _MAX_DEPTH:
            raise ValueError(f"{where}: models nested deeper than {_MAX_DEPTH} levels")
        dense.flat_flattened(group, where, prefix, out,
                             lambda sub, pre: _flat(sub, pre, out, depth + 1))
    elif cls == "BondModel":
        bonds.flat_bonds(group, where, prefix, out)
    elif cls == "CarbonModel":
        bonds.flat_carbon(group, where, prefix, out)
    elif cls == "ContinuumModel":
        continuum.flat_continuum(group, where, prefix, out)
    else:
        raise ValueError(f"unknown model class {cls!r} in group {group.name} (known: "
                         f"{', '.join(CLASSES)})")


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
            version = f.attrs.get("format_version", 0)
            if not isinstance(version, (int, np.integer)) or not 1 <= version <= VERSION:
                raise ValueError(f"{path}: model file version {version!r}: this qgt_mpi "
                                 f"reads versions 1 to {VERSION}")
            out: dict = {"version": int(version)}
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
        return dense.build_tight_binding(flat, prefix)
    if cls == "BondModel":
        return bonds.build_bonds(flat, prefix)
    if cls == "CarbonModel":
        return bonds.build_carbon(flat, prefix)
    if cls == "ContinuumModel":
        return continuum.build_continuum(flat, prefix)
    return dense.build_flattened(flat, prefix, _build)


def load_model(path: str, comm=None, group: str = "/"):
    """Read a model file (or the model ``group`` of a result file, e.g. "/model/definition").

    Collective over ``comm`` when given (rank 0 reads and broadcasts).
    """
    if comm is None:
        flat = read_model_arrays(path, group)
    else:
        from qgt_mpi.parallel.rootcall import root_call

        flat = root_call(comm, lambda: read_model_arrays(path, group))
    try:  # the same arrays on every rank: the same model or the same error
        model = _build(flat)
    except ValueError as err:
        raise ModelFileError(path, None, str(err)) from None
    return _hermitian(model, path)


HERMITIAN_RTOL = 1e-10  # accepted max |H − H†| relative to max |H| at the probe k-points


def _hermitian(model, path: str):
    """``model`` if H(k), the valley operator V(k) and every k-independent operator equal
    their adjoints at two generic k-points, else ModelFileError naming the file.

    A file is data from outside (edited, converted, truncated): a non-Hermitian H gives
    complex "energies" that the solvers silently take as real. O(bonds); the same on every
    rank (every rank holds the same arrays).
    """
    from qgt_mpi.models.sparse import as_sparse

    base = model.parent if isinstance(model, FlattenedModel) else model
    sparse = as_sparse(base)
    probes: list[tuple[str, Callable, str]] = [
        ("H(k)", lambda k: sparse.csr(k)[0],
         "every hopping t_ab(R) needs its partner t_ba(-R) = t_ab(R)*")]
    if isinstance(base, CarbonModel):
        probes.append(("the valley operator V(k)", base.valley, "dataset valley_model"))
    for name, op in sorted(getattr(base, "operators", {}).items()):
        probes.append((f"operator {name!r}", lambda k, op=op: op, "group operators"))
    for k in (np.array([0.1234, -0.0457]), np.array([-0.731, 0.389])):
        for what, matrix, hint in probes:
            h = matrix(k)
            scale = float(abs(h).max()) if h.nnz else 0.0
            error = float(abs(h - h.getH()).max()) if h.nnz else 0.0
            if error > HERMITIAN_RTOL * max(scale, 1.0):
                raise ModelFileError(path, None, f"{what} is not Hermitian (max |H - "
                                     f"H^dagger| = {error:.3g} at k = {k.tolist()}, max |H| "
                                     f"= {scale:.3g}): {hint}")
    return model


def model_summary(path: str) -> str:
    """Multi-line human summary of a model file (serial)."""
    model = load_model(path)
    with h5py.File(path, "r") as f:
        version = f.attrs.get("format_version")
    lines = [f"{path}: qgt_mpi model file (version {version}, {_class(model)})"]
    for key, value in model.describe().items():
        lines.append(f"  {key:<22} {value}")
    lines.append(f"  {'lattice':<22} {np.asarray(model.lattice).tolist()}")
    lines.append(f"  {'cell_area':<22} {model.cell_area:.12g}")
    return "\n".join(lines)
