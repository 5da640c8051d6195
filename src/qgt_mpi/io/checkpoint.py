"""Checkpoint files: the reduced partial sums of the finished k-blocks and their done mask.

A checkpoint is written by rank 0 alone, to ``<output>.checkpoint.h5.tmp`` and then renamed,
so a job killed at any moment (``kill -9`` included) leaves either the previous or the new
checkpoint, never a torn one. It holds a fingerprint of every input that changes the
results, the done mask over blocks and the reduced accumulator arrays; the k-resolved
fields of the done blocks are in a separate slab file written from every rank
(io/kslabs.py). Restarting adds the saved sums once (on rank 0) and processes
the remaining blocks on any number of ranks, so the result equals an uninterrupted run up
to floating-point summation order.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from qgt_mpi.io.deck import RunConfig

FORMAT = 5  # 2: k-resolved fields in the slab file (io/kslabs.py); 3: adaptive energy cells
# (cells_*, occupation_* stores) and sweep_done; 4: every GeometrySummary.reduced_state entry
# (max flux, open gaps, window edges, touching groups); 5: the streamed sweep has masks of
# the full-tensor outputs too and the fingerprint file hashes; older checkpoints are refused


def checkpoint_name(output: str) -> str:
    """Checkpoint path belonging to a result file."""
    return output + ".checkpoint.h5"


def fingerprint(config: RunConfig, hash_files: bool = True) -> dict[str, str]:
    """JSON text of every deck entry that changes results or the block layout, the SHA-256
    of every input file the model reads and the accepted ``-qgt_*`` PETSc options.

    ``hash_files`` False leaves the file hashes out (ranks other than 0 never use the
    fingerprint: only rank 0 writes and compares checkpoints).
    """
    m = config.model
    s = config.sweep
    fields = {
        "model.kind": m.kind,
        **{f"model.{key}": value for key, value in m.params.items()},  # names the exact key
        **_flatten_fields(m.flatten),
        "kgrid.size": list(config.kgrid),
        "sweep.temperature": s.temperature.tolist(),
        "sweep.mu": s.mu.tolist(),
        "sweep.delta": s.delta.tolist(),
        "degeneracy": config.degeneracy,
        "run.chunk": config.run.chunk,
        "output.kresolved": config.output.kresolved,
    }
    if m.supercell is not None:
        fields["model.supercell"] = repr(m.supercell)
    sv = config.solver
    if sv.kind != "dense":  # everything but Krylov sizes changes the window's results
        fields["solver"] = repr({k: getattr(sv, k) for k in (
            "kind", "nev", "target", "tol", "pad", "edge_tol", "cluster_tol", "resolve",
            "out_of_window", "delta_out", "chern_below")})
        if sv.accelerate != "none":  # certified results, but not bitwise those of the full solve
            fields["solver.accelerate"] = repr({k: getattr(sv, k) for k in (
                "accelerate", "accelerate_tol", "accelerate_energy_tol",
                "accelerate_max_basis")})
    sf = getattr(config, "superfluid", None)
    if sf is not None:
        fields["superfluid"] = repr(sf)
    if hash_files:
        fields.update(_file_fields(m.kind, m.params))
    from qgt_mpi.solvers import options

    if options.accepted():  # the effective -qgt_* options (absent when none are given)
        fields["petsc_options"] = options.describe()
    return {k: json.dumps(v, sort_keys=True, default=_plain) for k, v in fields.items()}


def _file_fields(kind: str, params: dict) -> dict[str, str]:
    """``model.<key>.sha256`` of every input file the model reads (hr, tb, centres, model
    file, structure files): a restart after a file changed its *content* is refused, not
    only one after its name changed."""
    from qgt_mpi.models.registry import KINDS

    spec = KINDS.get(kind)
    out: dict[str, str] = {}
    for key, value in sorted(params.items()):
        param = spec.params.get(key) if spec is not None else None
        if isinstance(value, str) and param is not None and param.type == "path":
            out[f"model.{key}.sha256"] = file_digest(value)
    return out


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB pieces; "unreadable: ..." when it cannot be
    read (the checkpoint then does not match a readable file)."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as err:
        return f"unreadable: {err.strerror or err}"
    return digest.hexdigest()


def _plain(value: object) -> object:
    """JSON form of array-valued model parameters (tight_binding lattice, hoppings)."""
    if isinstance(value, dict):
        return sorted(value.items())
    array = np.asarray(value)
    return [array.real.tolist(), array.imag.tolist()] if array.dtype.kind == "c" else \
        array.tolist()


def _flatten_fields(flatten) -> dict[str, object]:
    """Fingerprint entries of ``[model.flatten]``, one per key."""
    if flatten is None:
        return {"model.flatten": None}
    return {"model.flatten.gap": flatten.gap, "model.flatten.range": str(flatten.range),
            "model.flatten.nfine": flatten.nfine}


def changed_fields(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Names of fingerprint entries that differ (added or removed count as changed)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def save(path: str, fp: dict[str, str], done: np.ndarray, state: dict[str, np.ndarray]
         ) -> None:
    """Write a checkpoint atomically (call on one rank only)."""
    tmp = path + ".tmp"
    try:
        _save(tmp, fp, done, state)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.remove(tmp)  # a failed checkpoint write leaves no .tmp file behind
        raise


def _save(tmp: str, fp: dict[str, str], done: np.ndarray, state: dict[str, np.ndarray]
          ) -> None:
    """Write the checkpoint contents to ``tmp``."""
    with h5py.File(tmp, "w", driver=None) as f:
        f.attrs["format"] = FORMAT
        f.attrs["fingerprint"] = json.dumps(fp, sort_keys=True)
        f.create_dataset("done", data=done.astype(np.uint8))
        grp = f.create_group("state")
        for key, value in state.items():
            grp.create_dataset(key, data=value)


def load(path: str) -> tuple[dict[str, str], np.ndarray, dict[str, np.ndarray]]:
    """Read a checkpoint: (fingerprint, done mask, state arrays).

    A regular file within the checkpoint size cap only (io/input_guard.py).
    """
    from qgt_mpi.io.input_guard import check_input

    check_input(path, "checkpoint", "checkpoint")
    with h5py.File(path, "r", driver=None) as f:
        if int(f.attrs.get("format", -1)) != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format")
        fp = json.loads(f.attrs["fingerprint"])
        done = f["done"][()].astype(bool)
        state = {k: f["state"][k][()] for k in f["state"]}
    return fp, done, state
