"""The ``-qgt_*`` PETSc/SLEPc options a run accepts: an allow-list of solver tuning.

Options reach SLEPc's options database with the prefix ``qgt_`` (solvers/shift_invert.py,
``EPS.setFromOptions``). Only options that tune *how* the window is found pass: Krylov-Schur
restarts and subspace size, the linear solver and its factorisation package, MUMPS controls.
Refused, with one line and exit status 2, are options that

* change *what* is computed: the target, the number of eigenpairs, which eigenpairs, the
  problem type, the eigensolver or spectral transformation type, the tolerance and
  iteration limits (these are deck keys, ``[solver]``: the deck's value is what the result
  file records, docs/input.md);
* write files or print at large: every ``*_view*``, ``*_monitor*``, ``*_log*`` option and
  any value holding a ``:`` or ``/`` (a PETSc viewer such as ``ascii:/any/file``).

The accepted options (name and value pairs) are kept for the run: they enter the restart
fingerprint (io/checkpoint.py) and the ``/solver`` attribute ``petsc_options`` of the file.
"""

from __future__ import annotations

import re

from qgt_mpi.io.checks import InputError

PREFIX = "-qgt_"
# Solver tuning only (names after the prefix); docs/input.md "PETSc options".
ALLOWED = (
    r"eps_mpd",
    r"eps_krylovschur_restart",
    r"eps_krylovschur_locking",
    r"eps_krylovschur_partitions",
    r"eps_purify",
    r"st_ksp_type",
    r"st_pc_type",
    r"st_pc_factor_mat_solver_type",
    r"st_pc_factor_mat_ordering_type",
    r"st_mat_mumps_icntl_\d{1,2}",
    r"st_mat_mumps_cntl_\d{1,2}",
    r"st_ksp_rtol",
    r"st_ksp_max_it",
)
_ALLOWED = re.compile(r"(?:" + "|".join(ALLOWED) + r")\Z")
_DECK_KEYS = {"eps_target": "solver.target", "eps_nev": "solver.nev", "eps_ncv": "solver.ncv",
              "eps_tol": "solver.tol", "eps_max_it": "solver.max_it"}
_VALUE = re.compile(r"[A-Za-z0-9_.+\-]{1,64}\Z")

_accepted: list[tuple[str, str]] = []


def _is_value(token: str) -> bool:
    """Whether ``token`` is an option's value (not the next option): -5 and -.5 are values."""
    return not token.startswith("-") or bool(re.match(r"-[0-9.]", token))


def parse(tokens: list[str]) -> list[tuple[str, str]]:
    """(name, value) pairs of ``-qgt_*`` command-line tokens; InputError for anything refused.

    ``value`` is "" for a flag given without a value.
    """
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith(PREFIX):
            raise InputError("PETSc option", token, "solver options start -qgt_ and come "
                                                    "with at most one value each")
        name = token[len(PREFIX):]
        value = ""
        if i + 1 < len(tokens) and _is_value(tokens[i + 1]):
            value = tokens[i + 1]
            i += 1
        i += 1
        check(name, value)
        pairs.append((name, value))
    return pairs


def check(name: str, value: str) -> None:
    """Refuse one option that is not solver tuning (see the module docstring)."""
    shown = f"{PREFIX}{name}" + (f" {value}" if value else "")
    if name in _DECK_KEYS:
        raise InputError("PETSc option", shown, f"changes what is computed; set "
                                                f"{_DECK_KEYS[name]} in the deck instead")
    if any(word in name for word in ("view", "monitor", "log", "draw", "output")):
        raise InputError("PETSc option", shown, "writes output (viewer, monitor or log); "
                                                "viewers are not accepted")
    if not _ALLOWED.match(name):
        raise InputError("PETSc option", shown, "not a solver tuning option; allowed: "
                         + ", ".join(PREFIX + a.replace(r"\d{1,2}", "N") for a in ALLOWED))
    if value and not _VALUE.match(value):
        raise InputError("PETSc option", shown, "the value must be a plain word or number "
                                                "(no viewers or file names)")


def accept(tokens: list[str]) -> list[str]:
    """Check ``tokens`` and remember them for the run; returns the argv for ``petsc4py.init``."""
    pairs = parse(tokens)
    _accepted[:] = pairs
    return [x for name, value in pairs for x in ((PREFIX + name, value) if value
                                                  else (PREFIX + name,))]


def accepted() -> list[tuple[str, str]]:
    """The accepted (name, value) pairs of this process (empty: none given)."""
    return list(_accepted)


def describe() -> str:
    """One-line text of the accepted options, for the file and the fingerprint."""
    return " ".join(PREFIX + n + (f" {v}" if v else "") for n, v in _accepted)


def check_database(entries: dict[str, object]) -> None:
    """Refuse refused ``qgt_*`` entries of PETSc's options database (``Options().getAll()``).

    The database also takes options from ``PETSC_OPTIONS`` and ``.petscrc`` files, which
    bypass the command line; this is checked just before ``EPS.setFromOptions``.
    """
    pairs = []
    for key, value in sorted(entries.items()):
        name = key.lstrip("-")
        if name.startswith(PREFIX[1:]):
            text = "" if value is None or value is True else str(value)
            check(name[len(PREFIX) - 1:], text)
            pairs.append((name[len(PREFIX) - 1:], text))
    _accepted[:] = pairs  # the effective options (command line, API, defaults set in code)
