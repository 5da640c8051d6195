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

With an h5py that has no MPI support (the serial PyPI wheel) a run on one rank writes the
same file with serial HDF5 (:func:`open_file`; docs/install.md, "pip only"); more ranks stop
before any file is made (``_deps.require_h5py_writer``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np
from mpi4py import MPI

from qgt_mpi import _deps
from qgt_mpi.io import conventions
from qgt_mpi.parallel.errors import agree, collective, fail_point


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


def open_file(comm: MPI.Comm, path: str, mode: str) -> h5py.File:
    """Open ``path`` for collective writing over ``comm``: parallel HDF5 (``driver="mpio"``)
    when h5py is the MPI build, else serial HDF5 on a one-rank ``comm``. Collective.

    Serial HDF5 with more than one rank raises ``_deps.SerialH5pyError`` (the command line
    and ``Result.save`` check this before any file is made).
    """
    if _deps.parallel_h5py():
        return h5py.File(path, mode, driver="mpio", comm=comm)
    if comm.size > 1:
        raise _deps.SerialH5pyError(_deps.serial_h5py_message(comm.size))
    return h5py.File(path, mode)


def early_allocation() -> h5py.h5p.PropDCID:
    """Dataset creation properties that allocate the storage at creation, as parallel HDF5
    always does, so that later writes never change a file's structure (also serially)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


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
    k-resolved arrays are the slabs ``result.kslabs`` (start, stop, arrays) it owns. All
    metadata is created first (identically everywhere); the data writes that may fail on
    one rank only (a full file system, an I/O error) are caught per rank and agreed on
    before ``complete`` is set, the file closed and renamed, so a failure reaches every
    rank as the same CollectiveError and the caller can remove the partial file.
    ``append``: the partial file exists already with the streamed sweep datasets
    (io/sweep_file.py); datasets present in it are kept.
    """
    tmp = partial_name(path)
    reserve(comm, tmp + ".space" if append else tmp, expected_bytes(result))
    with open_file(comm, tmp, "r+" if append else "w") as f:
        _set_attrs(f, {**result.attrs, "complete": False})
        pending = _layout(comm, f, result)
        _attach_scales(f, result.scales)
        conventions.apply(comm, f)
        error = None
        try:
            fail_point(comm, "write")
            for dset, data in pending:
                dset[...] = data
            if result.kfields:
                _kresolved(f["kgrid"], result)
        except Exception as exc:  # agreed on below, so no rank waits in close()
            error = exc
        agree(comm, error)
        f.attrs["complete"] = True
    with collective(comm):  # every rank agrees the file is whole before it gets its name
        fail_point(comm, "rename")
    with collective(comm):
        if comm.rank == 0:
            os.replace(tmp, path)


def expected_bytes(result: ResultFile) -> int:
    """Upper estimate of the file size: data, k-resolved fields, attributes, HDF5 overhead."""
    data = sum(np.asarray(d).nbytes for g in result.groups.values() for d, _ in g.values())
    kres = sum(result.nk_total * int(np.prod(e)) * np.dtype(t).itemsize
               for e, t, _ in result.kfields.values())
    attrs = sum(len(str(v)) for v in result.attrs.values())
    n_obj = sum(len(g) for g in result.groups.values()) + len(result.kfields)
    return int(1.25 * (data + kres + attrs) + 4096 * n_obj + 65536)


def reserve(comm: MPI.Comm, tmp: str, nbytes: int) -> None:
    """Check that ``nbytes`` can be written at ``tmp`` before any collective file I/O.

    Rank 0 allocates the space (posix_fallocate) and frees it again; a full file system or
    a file-size limit fails here, agreed by all ranks, instead of inside parallel HDF5,
    whose collective close can hang after a failed write. Collective.
    """
    with collective(comm, OSError):
        if comm.rank == 0:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            try:
                os.posix_fallocate(fd, 0, nbytes)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot write {nbytes / 2**20:.1f} MiB to {tmp} "
                              f"({exc.strerror})") from None
            finally:
                os.close(fd)
                os.remove(tmp)


def _layout(comm: MPI.Comm, f: h5py.File, result: ResultFile
            ) -> list[tuple[h5py.Dataset, np.ndarray]]:
    """Create every reduced group and dataset (collective metadata, same on all ranks).

    Returns the (dataset, data) pairs this rank must write: rank 0 writes reduced data.
    """
    pending = []
    for name, datasets in result.groups.items():
        grp = f.require_group(name)
        _set_attrs(grp, result.group_attrs.get(name, {}))
        for key, (data, attrs) in datasets.items():
            if key in grp:  # streamed during the evaluation (append mode)
                continue
            data = np.asarray(data)
            if data.dtype.kind == "U":
                data = np.char.encode(data, "utf-8")  # parallel HDF5 cannot write VLEN
            dset = grp.create_dataset(key, data.shape, dtype=data.dtype)
            _set_attrs(dset, attrs)
            if comm.rank == 0 and data.size:
                pending.append((dset, data))
    if result.kfields:
        grp = f.require_group("kgrid")
        shape = result.kgrid_shape or (result.nk_total,)
        if result.kgrid_shape:
            grp.attrs["N1"], grp.attrs["N2"] = result.kgrid_shape
        for key, (entry, dtype, attrs) in result.kfields.items():
            dset = grp.create_dataset(key, (*shape, *entry), dtype=dtype)
            _set_attrs(dset, {k: v for k, v in attrs.items() if k not in ("units", "axes")})
    return pending


def _set_attrs(obj: h5py.HLObject, attrs: dict[str, object]) -> None:
    """Set attributes (collective metadata; same values on every rank)."""
    for key, value in attrs.items():
        obj.attrs[key] = value.replace("\x00", "") if isinstance(value, str) else value


def _kresolved(grp: h5py.Group, result: ResultFile) -> None:
    """k-resolved fields: each rank writes its slabs independently (datasets exist already).

    Independent (not collective) writes, so a rank with no slab simply writes nothing. With
    ``kgrid_shape`` the datasets are (N1, N2, ...) and a flat slab is written as at most three
    rectangles (:func:`grid_pieces`).
    """
    for key, (entry, _dtype, _attrs) in result.kfields.items():
        dset = grp[key]
        for start, stop, arrays in result.kslabs:
            if stop > start and result.kgrid_shape:
                for (rows, cols), lo, hi in grid_pieces(result.kgrid_shape[1], start, stop):
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
