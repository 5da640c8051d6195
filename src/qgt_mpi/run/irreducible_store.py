"""The symmetry pre-pass on disk: solved representatives survive a stopped job (theory §5.11).

Next to the checkpoint ``<output>.checkpoint.h5`` a directory ``<output>.checkpoint.symmetry``
holds ``fingerprint.json`` (the run's input fingerprint, io/checkpoint.py) and one
``r<first>.npz`` per pre-pass chunk (NumPy arrays only, no pickles), written by the root of
the pool that solved it, under a temporary name then renamed. A restarted run reads the
representatives it needs from there instead of solving them; a changed input is refused as a
changed checkpoint is (one line, exit 2); ``--no-restart`` and a completed run remove the
directory (only the files named here). A symbolic link in its place is refused.
"""

from __future__ import annotations

import json
import os

import numpy as np

from qgt_mpi.io.checkpoint import changed_fields
from qgt_mpi.io.checks import InputError
from qgt_mpi.solvers.base import Eigenpairs

FIELDS = ("velocities", "metric_out", "curvature_out", "outside", "groups")
FINGERPRINT = "fingerprint.json"


def store_dir(checkpoint_path: str) -> str:
    """The directory of the representatives of the checkpoint ``checkpoint_path``."""
    return checkpoint_path.removesuffix(".h5") + ".symmetry"


def _checked(path: str) -> str:
    """``path`` unless it is a symbolic link (InputError)."""
    if os.path.islink(path):
        raise InputError("-o", path, "is a symbolic link where the run keeps its symmetry "
                         "pre-pass; remove it")
    return path


def open_store(path: str, fp: dict[str, str]) -> dict[int, str]:
    """Rank-0 work: {representative: file} of a store made with the same input (creating
    the directory and its fingerprint when absent). Raises InputError for a changed input."""
    _checked(path)
    if not os.path.isdir(path):
        os.mkdir(path)
        _write_json(os.path.join(path, FINGERPRINT), fp)
        return {}
    try:
        with open(os.path.join(_checked(os.path.join(path, FINGERPRINT)))) as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        old = {}
    changed = changed_fields(old, fp)
    if changed:
        raise InputError("INPUT", path, f"cannot restart: the input changed since the symmetry "
                         f"pre-pass was stored ({', '.join(changed[:4])}); rerun with "
                         "--no-restart to start over")
    found: dict[int, str] = {}
    for name in sorted(os.listdir(path)):
        if name.startswith("r") and name.endswith(".npz"):
            try:
                with np.load(os.path.join(path, name), allow_pickle=False) as data:
                    for p in data["flat"]:
                        found[int(p)] = name
            except (OSError, ValueError, KeyError):
                continue  # a file cut by a crash: its representatives are solved again
    return found


def save_chunk(path: str, flat: np.ndarray, eig: Eigenpairs, residuals: np.ndarray) -> None:
    """Write one chunk's eigenpairs (one pool root), atomically."""
    arrays = {"flat": np.asarray(flat, dtype=np.int64), "energies": eig.energies,
              "vectors": eig.vectors, "residuals": residuals}
    arrays.update({f: getattr(eig, f) for f in FIELDS if getattr(eig, f) is not None})
    final = os.path.join(path, f"r{int(flat[0]):09d}.npz")
    tmp = final + f".{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, final)


def load(path: str, names: dict[int, str], wanted: set[int]) -> dict[int, tuple]:
    """{representative: (Eigenpairs of one k, residuals)} for ``wanted`` from the store."""
    out: dict[int, tuple] = {}
    for name in sorted({names[p] for p in wanted if p in names}):
        with np.load(os.path.join(path, name), allow_pickle=False) as data:
            flat = data["flat"]
            extra = {f: data[f] for f in FIELDS if f in data}
            for i, p in enumerate(map(int, flat)):
                if p not in wanted:
                    continue
                s = slice(i, i + 1)
                vel = extra.get("velocities")
                eig = Eigenpairs(data["energies"][s], data["vectors"][s],
                                 None if vel is None else vel[:, s],
                                 *(None if extra.get(f) is None else extra[f][s]
                                   for f in FIELDS[1:]))
                out[p] = (eig, data["residuals"][i])
    return out


def remove_store(path: str) -> None:
    """Delete the store's own files and the directory (rank 0; nothing else is touched)."""
    if os.path.islink(path) or not os.path.isdir(path):
        return
    for name in os.listdir(path):
        if name == FINGERPRINT or (name.startswith("r") and name.endswith(".npz")):
            os.remove(os.path.join(path, name))
    try:
        os.rmdir(path)
    except OSError:
        pass  # something else was put there: left alone


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
