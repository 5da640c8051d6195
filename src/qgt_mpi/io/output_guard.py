"""Output-path safety: refuse outputs that would destroy data, and lock the output name.

Checked before anything is computed (rank 0; the driver agrees on the result):

* the output must not be the input deck (also not through a symlink or a hard link: the
  test is on device and inode, ``os.path.samefile``);
* an existing output must be a regular file (never replace a directory, a device node, a
  FIFO or a socket), and it is kept unless the run was asked to ``overwrite`` it;
* the helper names ``NAME.partial``, ``NAME.checkpoint.h5``, ``NAME.checkpoint.kgrid.h5``,
  ``NAME.lock`` (and the temporary ``.partial.space``, ``.checkpoint.h5.tmp``) must not be
  non-regular files or symbolic links (writing through a planted link would overwrite its
  target; the lock is also opened with ``O_NOFOLLOW``);
* neither the output nor a helper name may be an input of the run (the deck, an hr or
  model file, ... — :func:`input_paths`), with or without ``overwrite``.

The lock is an exclusive ``flock`` on the sidecar file ``NAME.lock``, taken without waiting
and held by rank 0 for the whole run, so a second run with the same output refuses at once
and names the first (host, pid, start time, written into the lock file). The kernel drops
the lock when the holder exits in any way, ``kill -9`` and a node crash of a local file
system included, so a stale ``.lock`` file never blocks a rerun: it is simply locked again
and rewritten. A finished run removes the file while still holding the lock; a run that
opened the old file meanwhile notices that the name now points elsewhere and retries.
On NFS, Linux maps ``flock`` to POSIX byte-range locks, which lockd keeps across clients.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
import stat

from mpi4py import MPI

from qgt_mpi.io.checks import InputError
from qgt_mpi.io.writer import check_writable

SUFFIXES = (".partial", ".checkpoint.h5", ".checkpoint.kgrid.h5", ".lock", ".partial.space",
            ".checkpoint.h5.tmp")


def lock_name(output: str) -> str:
    """Sidecar lock file of an output."""
    return output + ".lock"


def input_paths(config) -> list[str]:
    """Every file a run reads: the deck and the model's files (hr, tb, centres, model file,
    structure files: the ``path`` parameters of its kind)."""
    from qgt_mpi.models.registry import KINDS

    paths = [] if config.source.startswith("<") else [config.source]
    spec = KINDS.get(config.model.kind)
    for name, value in config.model.params.items():
        param = spec.params.get(name) if spec is not None else None
        if isinstance(value, str) and param is not None and param.type == "path":
            paths.append(value)
    return paths


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str, deck: str | None, overwrite: bool, key: str = "-o",
                 inputs: tuple[str, ...] | list[str] = (),
                 hint: str = "pass --overwrite to replace it") -> None:
    """Refuse an output that would destroy data (see module docstring). Local (rank 0).

    ``inputs``: more files the run reads (hr, model file, ...): the output and its helper
    names must not be any of them (also not through a symlink or hard link), with or
    without ``overwrite``.

    Raises
    ------
    InputError
        Naming ``key`` (``-o`` or ``output.file``), the path and what is allowed.
    """
    if not output:
        raise InputError(key, output, "must name a file")
    if os.path.isdir(output):
        raise InputError(key, output, "is a directory; name a file (e.g. DIR/result.h5)")
    if deck and os.path.exists(output) and os.path.exists(deck) and \
            os.path.samefile(output, deck):
        raise InputError(key, output, f"is the input deck {deck!r} (same file); choose "
                                      "another output name")
    names = (output, *(output + s for s in SUFFIXES))
    for path in names:
        for source in inputs:
            if _same(path, source):
                raise InputError(key, output, f"{path} is an input of the run ({source}, "
                                              "same file); choose another output name")
    _regular_or_absent(output, key)
    for path in names[1:]:
        _regular_or_absent(path, key, follow=False)
    if os.path.lexists(output) and not overwrite:
        raise InputError(key, output, "exists; the file is kept: choose another output "
                                      f"name or {hint}")


def _regular_or_absent(path: str, key: str, follow: bool = True) -> None:
    """Refuse an existing path that is not a regular file (symlinks are followed unless
    ``follow`` is False: a helper name (lock, partial, checkpoint) that is a symlink is
    refused, since writing through it would overwrite its target)."""
    if not follow and os.path.islink(path):
        raise InputError(key, path, "is a symbolic link; qgt_mpi never writes through a link "
                                    "at a lock, partial or checkpoint name: remove it")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # absent, or a dangling symlink that the rename replaces
    if stat.S_ISDIR(mode):
        raise InputError(key, path, "is a directory; name a file")
    if not stat.S_ISREG(mode):
        raise InputError(key, path, "exists and is not a regular file (device, FIFO or "
                                    "socket); refusing to replace it")


class OutputLock:
    """Exclusive lock on ``NAME.lock`` for one run (held by one process, rank 0)."""

    def __init__(self, output: str, key: str = "-o") -> None:
        self.path = lock_name(output)
        self.fd: int | None = None
        for _attempt in range(5):
            try:  # never through a planted symlink (it would truncate its target)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                             0o644)
            except OSError as err:
                raise InputError(key, output, f"cannot open the lock {self.path} "
                                              f"({err.strerror}; a symbolic link is refused)"
                                 ) from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise InputError(key, output, f"the lock {self.path} is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise InputError(key, output, f"is in use by another run ({holder}; lock "
                                              f"{self.path}); wait for it or choose another "
                                              "output name") from None
            if _same_inode(fd, self.path):
                self.fd = fd
                _write_holder(fd)
                return
            os.close(fd)  # the previous holder removed the file meanwhile: lock the new one
        raise InputError(key, output, f"cannot lock {self.path} (it keeps being replaced)")

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            if _same_inode(self.fd, self.path):
                os.unlink(self.path)
        finally:
            os.close(self.fd)
            self.fd = None


def _same_inode(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _write_holder(fd: int) -> None:
    """Record who holds the lock (read by a refused second run)."""
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    text = f"host {socket.gethostname()} pid {os.getpid()} started {started}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _read_holder(fd: int) -> str:
    """The holder's record, or a placeholder when it has not written it yet."""
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder not yet recorded"


def guard(comm: MPI.Comm, output: str, deck: str, overwrite: bool,
          key: str = "-o", inputs: tuple[str, ...] | list[str] = (),
          hint: str = "pass --overwrite to replace it") -> OutputLock | None:
    """Rank 0 checks ``output`` and locks it; returns the lock (None on other ranks).

    Local to rank 0; the caller agrees on errors (``collective``). Nothing is computed and
    no file is touched before this passes, except the output directory being created.
    """
    if comm.rank != 0:
        return None
    check_writable(comm, output)
    for path in (output, *(output + s for s in SUFFIXES)):  # before the lock opens one
        if path != output:
            _regular_or_absent(path, key, follow=False)
    lock = OutputLock(output, key)
    try:
        check_output(output, None if deck.startswith("<") else deck, overwrite, key, inputs,
                     hint)
    except BaseException:
        lock.release()
        raise
    return lock
