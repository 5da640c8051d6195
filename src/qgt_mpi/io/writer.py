"""One HDF5 result file per run, written collectively with parallel HDF5.

Layout (names other tools rely on; see README "Output file"):
``/`` provenance attributes; ``/model``; ``/kgrid/{k_frac, k_cart, energies, berry_curvature,
metric}`` (k-resolved, shape (N1, N2, ...) of the row-major grid, each rank writes its own
slabs); ``/bands``; ``/geometry``; ``/transport/{temperature, mu, delta}`` axes and the
observables with shape (n_mu, n_delta, n_temperature); ``/timing``. Names, units and
dimension scales of every dataset come from the table of :mod:`qgt_mpi.io.conventions`.

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

from qgt_mpi.io import conventions


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
    kgrid_shape: tuple[int, int] | None = None  # (N1, N2); None: k-fields stay flat (nk, ...)


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


def write(comm: MPI.Comm, path: str, result: ResultFile) -> None:
    """Write ``result`` to ``path`` collectively and rename it into place.

    Collective over ``comm``: all ranks call it with identical reduced data; each rank's
    k-resolved arrays are the slabs ``result.kslabs`` (start, stop, arrays) it owns.
    """
    tmp = partial_name(path)
    with h5py.File(tmp, "w", driver="mpio", comm=comm) as f:
        _set_attrs(f, {**result.attrs, "complete": False})
        for name, datasets in result.groups.items():
            grp = f.require_group(name)
            _set_attrs(grp, result.group_attrs.get(name, {}))
            for key, (data, attrs) in datasets.items():
                _reduced_dataset(comm, grp, key, data, attrs)
        if result.kfields:
            _kresolved(f.require_group("kgrid"), result)
        _attach_scales(f, result.scales)
        conventions.apply(comm, f)
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
    data = np.asarray(data)
    if data.dtype.kind == "U":
        data = np.char.encode(data, "utf-8")  # fixed-length: parallel HDF5 cannot write VLEN
    dset = grp.create_dataset(key, data.shape, dtype=data.dtype)
    _set_attrs(dset, attrs)
    if comm.rank == 0 and data.size:
        dset[...] = data


def _kresolved(grp: h5py.Group, result: ResultFile) -> None:
    """k-resolved fields: collective create, then each rank writes its slabs independently.

    Independent (not collective) writes, so a rank with no slab simply writes nothing. With
    ``kgrid_shape`` the datasets are (N1, N2, ...) and a flat slab is written as at most three
    rectangles (:func:`grid_pieces`).
    """
    shape = result.kgrid_shape or (result.nk_total,)
    if result.kgrid_shape:
        grp.attrs["N1"], grp.attrs["N2"] = shape
    for key, (entry, dtype, attrs) in result.kfields.items():
        dset = grp.create_dataset(key, (*shape, *entry), dtype=dtype)
        _set_attrs(dset, {k: v for k, v in attrs.items() if k not in ("units", "axes")})
        for start, stop, arrays in result.kslabs:
            if stop > start and result.kgrid_shape:
                for (rows, cols), lo, hi in grid_pieces(shape[1], start, stop):
                    piece = arrays[key][lo - start:hi - start]
                    dset[rows, cols] = piece.reshape(rows.stop - rows.start,
                                                     cols.stop - cols.start, *entry)
            elif stop > start:
                dset[start:stop] = arrays[key]


def grid_pieces(n2: int, start: int, stop: int) -> list[tuple[tuple, int, int]]:
    """Cut flat row-major indices [start, stop) of an (N1, N2) grid into rectangles.

    Returns (index into the (N1, N2, ...) array, flat lo, flat hi) for at most three pieces:
    the tail of the first row, the full rows, the head of the last row.
    """
    pieces = []
    lo = start
    while lo < stop:
        row, col = divmod(lo, n2)
        if col or stop - lo < n2:
            hi = min(stop, (row + 1) * n2)
            pieces.append(((slice(row, row + 1), slice(col, col + hi - lo)), lo, hi))
        else:
            rows = (stop - lo) // n2
            hi = lo + rows * n2
            pieces.append(((slice(row, row + rows), slice(0, n2)), lo, hi))
        lo = hi
    return pieces


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
