"""Line-numbered reading of model text files (Wannier90 ``_hr.dat``, ``_tb.dat``, ``.xyz``).

Every problem in a file becomes one :class:`ModelFileError` whose message is one line,
``"<file>:<line>: <what is wrong>"``, so a run stops with the place to look at.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.io.checks import InputError


class ModelFileError(ValueError):
    """A malformed model file: ``str(err)`` is ``"<path>:<line>: <reason>"`` (one line).

    Parameters
    ----------
    path : str
        File that was read.
    line : int or None
        1-based line number of the problem (None: the file as a whole).
    reason : str
        What is wrong and, where useful, what was expected.
    """

    input_error = True  # bad input: exit status 2 wherever it surfaces (parallel/errors.py)

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}".replace("\n", " "))

    def __reduce__(self):
        """Picklable, so rank 0's error can be broadcast to every rank."""
        return (type(self), (self.path, self.line, self.reason))


def read_lines(path: str, kind: str = "hr") -> list[str]:
    """Lines of a text file read through the input guard (regular files only, the size cap
    of ``kind``, io/input_guard.py); any problem raises :class:`ModelFileError`."""
    from qgt_mpi.io.input_guard import read_bytes

    try:
        data = read_bytes(path, kind)
    except InputError as err:
        raise ModelFileError(path, None, err.allowed) from None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ModelFileError(path, None, f"not UTF-8 text ({err.reason})") from None


class Cursor:
    """Walks the non-blank lines of a file, keeping their 1-based line numbers."""

    def __init__(self, path: str, lines: list[str], start: int = 0) -> None:
        self.path = path
        self.rows = [(i + 1, ln.split()) for i, ln in enumerate(lines[start:], start)
                     if ln.strip()]
        self.pos = 0

    def error(self, reason: str, offset: int = 0) -> ModelFileError:
        """Error located at the current row (plus ``offset`` rows), or at the end of file."""
        i = self.pos + offset
        line = self.rows[i][0] if i < len(self.rows) else self.end_line()
        return ModelFileError(self.path, line, reason)

    def end_line(self) -> int:
        """Line number just after the last non-blank line (where missing data would be)."""
        return self.rows[-1][0] + 1 if self.rows else 1

    def take(self, n: int, what: str) -> list[tuple[int, list[str]]]:
        """The next ``n`` rows; a truncated file raises naming what was expected."""
        if self.pos + n > len(self.rows):
            have = len(self.rows) - self.pos
            raise ModelFileError(self.path, self.end_line(),
                                 f"file ends early: expected {n} line(s) of {what}, found {have}")
        rows = self.rows[self.pos:self.pos + n]
        self.pos += n
        return rows

    def integer(self, what: str, low: int = 1) -> int:
        """One line holding one integer >= ``low``."""
        (line, fields), = self.take(1, what)
        if len(fields) != 1 or not _is_int(fields[0]) or int(fields[0]) < low:
            raise ModelFileError(self.path, line, f"expected {what} (one integer >= {low}), "
                                 f"found {' '.join(fields)!r}")
        return int(fields[0])

    def floats(self, n: int, what: str) -> np.ndarray:
        """One line of exactly ``n`` finite numbers."""
        (line, fields), = self.take(1, what)
        return row_numbers(self.path, line, fields, n, what)

    def finish(self) -> None:
        """Refuse trailing non-blank lines (a wrong count earlier in the file)."""
        if self.pos < len(self.rows):
            raise self.error(f"unexpected extra data ({len(self.rows) - self.pos} more "
                             "line(s)); a count earlier in the file is wrong")


def _is_int(token: str) -> bool:
    return token.lstrip("+-").isdigit()


def row_numbers(path: str, line: int, fields: list[str], n: int, what: str) -> np.ndarray:
    """Exactly ``n`` finite floats from ``fields``, or a :class:`ModelFileError` at ``line``."""
    if len(fields) != n:
        raise ModelFileError(path, line, f"expected {n} fields ({what}), found {len(fields)}")
    try:
        values = np.array([float(x) for x in fields])
    except ValueError:
        bad = next(x for x in fields if not _is_float(x))
        raise ModelFileError(path, line, f"non-numeric field {bad!r} in {what}") from None
    if not np.all(np.isfinite(values)):
        raise ModelFileError(path, line, f"non-finite number in {what}")
    return values


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def table(cursor: Cursor, nrows: int, ncols: int, what: str,
          int_cols: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """``nrows`` rows of ``ncols`` numbers as a float array, and their line numbers.

    Fast path: one vectorised conversion; only when it fails is the first bad row searched,
    so a large well-formed file costs one ``numpy`` parse. Columns in ``int_cols`` must hold
    integers.
    """
    rows = cursor.take(nrows, what)
    lines = np.array([ln for ln, _ in rows], dtype=np.int64)
    counts = np.array([len(f) for _, f in rows])
    if np.any(counts != ncols):
        i = int(np.argmax(counts != ncols))
        raise ModelFileError(cursor.path, int(lines[i]),
                             f"expected {ncols} fields ({what}), found {counts[i]}")
    try:
        data = np.array([x for _, f in rows for x in f], dtype=float).reshape(nrows, ncols)
    except ValueError:
        for line, fields in rows:
            row_numbers(cursor.path, line, fields, ncols, what)
        raise  # unreachable: some row failed above
    bad = ~np.all(np.isfinite(data), axis=1)
    if int_cols:
        ints = data[:, list(int_cols)]
        bad |= np.any(ints != np.round(ints), axis=1)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ModelFileError(cursor.path, int(lines[i]),
                             f"non-finite or non-integer field in {what}: "
                             f"{' '.join(rows[i][1])!r}")
    return data, lines
