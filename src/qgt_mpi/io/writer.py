"""One HDF5 result file per run, written collectively with parallel HDF5.

Layout (names other tools rely on; see README "Output file"):
``/`` provenance attributes; ``/model``; ``/kgrid/{k_frac, k_cart, energies, berry_curvature,
metric}`` (k-resolved, each rank writes its own slab); ``/bands``; ``/geometry``;
``/transport/{temperature, mu, delta}`` axes (dimension scales) and the observables with
shape (n_mu, n_delta, n_temperature); ``/timing``.

The file is created as ``<name>.partial`` and renamed by rank 0 after every rank closed it,
with the root attribute ``complete = True`` set last: a file under its final name is whole.
Metadata (groups, datasets, attributes) is created identically on every rank, as parallel
HDF5 requires; reduced data is written by rank 0 alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np
from mpi4py import MPI


@dataclass
class ResultFile:
    """Everything a run writes. Reduced fields are identical on all ranks."""

    attrs: dict[str, object]
    groups: dict[str, dict[str, tuple[np.ndarray, dict[str, object]]]]
    group_attrs: dict[str, dict[str, object]] = field(default_factory=dict)
    kfields: dict[str, tuple[tuple[int, ...], np.dtype, dict[str, object]]] = field(
        default_factory=dict)  # name -> (shape of one k-point's entry, dtype, attrs)
    kslabs: list[tuple[int, int, dict[str, np.ndarray]]] = field(default_factory=list)
    nk_total: int = 0
    scales: dict[str, list[str]] = field(default_factory=dict)


def partial_name(path: str) -> str:
    """Temporary name of a result file while it is being written."""
    return path + ".partial"


def check_writable(comm: MPI.Comm, path: str) -> None:
    """Fail early (on rank 0, agreed by the caller) if the output directory is unusable."""
    if comm.rank == 0:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise OSError(f"output directory {directory!r} is not writable")


def write(comm: MPI.Comm, path: str, result: ResultFile, append: bool = False) -> None:
    """Write ``result`` to ``path`` collectively and rename it into place.

    Collective over ``comm``: all ranks call it with identical reduced data; each rank's
    k-resolved arrays are the slabs ``result.kslabs`` (start, stop, arrays) it owns.
    ``append``: the partial file exists already (streamed /transport observables, see
    io/sweep_file.py); datasets present in it are kept.
    """
    tmp = partial_name(path)
    with h5py.File(tmp, "r+" if append else "w", driver="mpio", comm=comm) as f:
        _set_attrs(f, {**result.attrs, "complete": False})
        for name, datasets in result.groups.items():
            grp = f.require_group(name)
            _set_attrs(grp, result.group_attrs.get(name, {}))
            for key, (data, attrs) in datasets.items():
                _reduced_dataset(comm, grp, key, data, attrs)
        if result.kfields:
            _kresolved(f.require_group("kgrid"), result)
        _attach_scales(f, result.scales)
        f.attrs["complete"] = True
    comm.Barrier()
    if comm.rank == 0:
        os.replace(tmp, path)
    comm.Barrier()


def _set_attrs(obj: h5py.HLObject, attrs: dict[str, object]) -> None:
    """Set attributes (collective metadata; same values on every rank)."""
    for key, value in attrs.items():
        obj.attrs[key] = value.replace("\x00", "") if isinstance(value, str) else value


def _reduced_dataset(comm, grp, key, data, attrs) -> None:
    """Create a dataset on all ranks; rank 0 writes the (identical) data."""
    if key in grp:
        return  # streamed during the evaluation (append mode)
    data = np.asarray(data)
    if data.dtype.kind == "U":
        data = np.char.encode(data, "utf-8")  # fixed-length: parallel HDF5 cannot write VLEN
    dset = grp.create_dataset(key, data.shape, dtype=data.dtype)
    _set_attrs(dset, attrs)
    if comm.rank == 0 and data.size:
        dset[...] = data


def _kresolved(grp: h5py.Group, result: ResultFile) -> None:
    """k-resolved fields: collective create, then each rank writes its slabs independently.

    Independent (not collective) writes, so a rank with no slab simply writes nothing.
    """
    for key, (entry, dtype, attrs) in result.kfields.items():
        if key in grp:  # append mode after an interrupted write: rewrite the slabs
            dset = grp[key]
        else:
            dset = grp.create_dataset(key, (result.nk_total, *entry), dtype=dtype)
        _set_attrs(dset, attrs)
        for start, stop, arrays in result.kslabs:
            if stop > start:
                dset[start:stop] = arrays[key]


def _attach_scales(f: h5py.File, scales: dict[str, list[str]]) -> None:
    """Make axis datasets dimension scales and attach them (Dedalus-style self-description)."""
    made: set[str] = set()
    for target, axes in scales.items():
        for dim, axis in enumerate(axes):
            if axis not in f:
                continue
            if axis not in made:
                f[axis].make_scale(axis.rsplit("/", 1)[-1])
                made.add(axis)
            f[target].dims[dim].attach_scale(f[axis])
