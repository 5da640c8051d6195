"""Checkpoint files: the reduced partial sums of the finished k-blocks and their done mask.

A checkpoint is written by rank 0 alone, to ``<output>.checkpoint.h5.tmp`` and then renamed,
so a job killed at any moment (``kill -9`` included) leaves either the previous or the new
checkpoint, never a torn one. It holds a fingerprint of every input that changes the
results, the done mask over blocks, the reduced accumulator arrays, and the k-resolved
fields of the done blocks. Restarting adds the saved sums once (on rank 0) and processes
the remaining blocks on any number of ranks, so the result equals an uninterrupted run up
to floating-point summation order.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from qgt_mpi.io.deck import RunConfig

FORMAT = 2  # 2: adaptive energy cells (cell_keys, cell_moments) and sweep_done


def checkpoint_name(output: str) -> str:
    """Checkpoint path belonging to a result file."""
    return output + ".checkpoint.h5"


def fingerprint(config: RunConfig) -> dict[str, str]:
    """JSON text of every deck entry that changes results or the block layout."""
    m = config.model
    flat = None if m.flatten is None else [m.flatten.gap, str(m.flatten.range), m.flatten.nfine]
    s = config.sweep
    fields = {
        "model.kind": m.kind,
        "model.params": sorted(m.params.items()),
        "model.flatten": flat,
        "kgrid.size": list(config.kgrid),
        "sweep.temperature": s.temperature.tolist(),
        "sweep.mu": s.mu.tolist(),
        "sweep.delta": s.delta.tolist(),
        "degeneracy": config.degeneracy,
        "run.chunk": config.run.chunk,
        "output.kresolved": config.output.kresolved,
    }
    sf = getattr(config, "superfluid", None)
    if sf is not None:
        fields["superfluid"] = repr(sf)
    return {k: json.dumps(v, sort_keys=True) for k, v in fields.items()}


def changed_fields(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Names of fingerprint entries that differ (added or removed count as changed)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def save(path: str, fp: dict[str, str], done: np.ndarray, state: dict[str, np.ndarray],
         kfields: dict[str, np.ndarray] | None) -> None:
    """Write a checkpoint atomically (call on one rank only)."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", driver=None) as f:
        f.attrs["format"] = FORMAT
        f.attrs["fingerprint"] = json.dumps(fp, sort_keys=True)
        f.create_dataset("done", data=done.astype(np.uint8))
        grp = f.create_group("state")
        for key, value in state.items():
            grp.create_dataset(key, data=value)
        if kfields:
            kgrp = f.create_group("kgrid")
            for key, value in kfields.items():
                kgrp.create_dataset(key, data=value)
    os.replace(tmp, path)


def load(path: str) -> tuple[dict[str, str], np.ndarray, dict[str, np.ndarray],
                             dict[str, np.ndarray]]:
    """Read a checkpoint: (fingerprint, done mask, state arrays, k-resolved arrays)."""
    with h5py.File(path, "r", driver=None) as f:
        if int(f.attrs.get("format", -1)) != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format")
        fp = json.loads(f.attrs["fingerprint"])
        done = f["done"][()].astype(bool)
        state = {k: f["state"][k][()] for k in f["state"]}
        kfields = {k: f["kgrid"][k][()] for k in f["kgrid"]} if "kgrid" in f else {}
    return fp, done, state, kfields
