"""The one guarded door for every file that enters a run: regular files only, a size cap.

Every input file (the deck, Wannier90 ``_hr.dat`` / ``_tb.dat`` / ``_centres.xyz``, a
qgt_mpi model file, a checkpoint, a result file read by ``info``/``plot``) passes
:func:`check_input` before anything opens it for reading:

* it must exist and be a regular file (symlinks are followed): a FIFO would block the
  reading rank forever, ``/dev/zero`` would grow its memory without bound, a directory
  gives an OS error deep inside a parser;
* its size must be at most the cap of its kind (:data:`SIZE_CAPS`, docs/input.md
  "Limits of input files").

:func:`read_bytes` reads a text file through the same door without a race between the
check and the open: the file is opened with ``O_NONBLOCK`` (opening a FIFO never blocks)
and ``fstat`` of the open descriptor is checked again before one bounded read.
HDF5 files (model files, checkpoints, results) are opened by h5py after
:func:`check_input`; HDF5 refuses a FIFO or a device itself when the name is swapped in
between (it seeks and reads a superblock).

Errors are :class:`~qgt_mpi.io.checks.InputError` (one line naming the key, the path and what
is allowed; exit status 2). Serial: callers run it on the reading rank (rank 0) and
broadcast the result or the error (:func:`qgt_mpi.parallel.rootcall.root_call`).
"""

from __future__ import annotations

import os
import stat

from qgt_mpi.io.checks import InputError

MIB = 1 << 20
# Size caps per kind of input file (bytes). docs/input.md "Limits of input files".
SIZE_CAPS: dict[str, int] = {
    "deck": 1 * MIB,  # a deck with inline hoppings is a few kB; 1 MiB is ~30,000 lines
    "hr": 2048 * MIB,  # Wannier90 _hr.dat / _tb.dat: ~50 B per hopping, ~40 M hoppings
    "tb": 2048 * MIB,
    "centres": 64 * MIB,  # _centres.xyz: one line per orbital and atom
    "model": 8192 * MIB,  # qgt_mpi model file (HDF5): 48 B per hopping, ~170 M hoppings
    "structure": 4096 * MIB,  # structure files (ASE): extended XYZ ~ 80 B per atom, ~50 M atoms
    "checkpoint": 65536 * MIB,  # reduced sums; its k-resolved slabs are a separate file
    "result": 1 << 50,  # result files are read lazily (h5py): no practical cap
}


def check_input(path: str, kind: str, key: str = "INPUT") -> int:
    """Refuse ``path`` unless it is an existing regular file within the cap of ``kind``.

    Returns the size in bytes. ``key`` names the input in the error (deck key or option).
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise InputError(key, path, f"cannot read file ({err.strerror or err})") from None
    return _check_stat(st, path, kind, key)


def _check_stat(st: os.stat_result, path: str, kind: str, key: str) -> int:
    """The checks of :func:`check_input` on a stat result."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise InputError(key, path, f"is a directory; name a {kind} file")
    if not stat.S_ISREG(mode):
        what = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "special")
        raise InputError(key, path, f"is {what}, not a regular file; input files must be "
                                    "regular files")
    cap = SIZE_CAPS[kind]
    if st.st_size > cap:
        raise InputError(key, path, f"is {st.st_size} bytes, more than the {kind} file limit "
                                    f"of {cap} bytes (docs/input.md)")
    return int(st.st_size)


def read_bytes(path: str, kind: str, key: str = "INPUT") -> bytes:
    """Contents of the regular file ``path`` (checked before and after a non-blocking open)."""
    check_input(path, kind, key)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise InputError(key, path, f"cannot read file ({err.strerror or err})") from None
    try:
        size = _check_stat(os.fstat(fd), path, kind, key)  # the file really opened
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, max(size - total, 0) + 1)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > SIZE_CAPS[kind]:
                raise InputError(key, path, f"grew beyond the {kind} file limit of "
                                            f"{SIZE_CAPS[kind]} bytes while being read")
        return b"".join(chunks)
    except OSError as err:
        raise InputError(key, path, f"cannot read file ({err.strerror or err})") from None
    finally:
        os.close(fd)


def read_text(path: str, kind: str, key: str = "INPUT", encoding: str = "utf-8") -> str:
    """UTF-8 text of ``path`` through :func:`read_bytes`; non-UTF-8 is one InputError."""
    data = read_bytes(path, kind, key)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise InputError(key, path, f"cannot read file (not UTF-8 text: {err.reason})") from None
