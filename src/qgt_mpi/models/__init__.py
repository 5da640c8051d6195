"""Bloch models (theory §2): tight-binding core, Haldane builder, flattening and truncation.

``build_model`` is the single entry point used by the driver; every model it returns
follows the ``BlochModel`` protocol of ``docs/architecture.md``.
"""

from __future__ import annotations

import math

from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.models.flatten import (
    NFINE_DEFAULT,
    FlattenedModel,
    bandwidth,
    build_flattened,
    truncate,
)
from qgt_mpi.models.haldane import haldane
from qgt_mpi.models.inline import tight_binding
from qgt_mpi.models.lattice import TightBinding, kgrid_points, reduced_indices
from qgt_mpi.models.modelfile import load_model, save_model
from qgt_mpi.models.registry import KINDS, call_builder
from qgt_mpi.models.sparse import BondModel, SparseModel, as_sparse
from qgt_mpi.models.supercell import supercell
from qgt_mpi.models.tbg_atomistic import tbg_atomistic
from qgt_mpi.models.textfile import ModelFileError
from qgt_mpi.models.wannier90 import read_wannier90

__all__ = [
    "KINDS",
    "BondModel",
    "FlattenedModel",
    "ModelFileError",
    "SparseModel",
    "TightBinding",
    "as_sparse",
    "bandwidth",
    "bm_continuum",
    "build_flattened",
    "build_model",
    "haldane",
    "kgrid_points",
    "load_model",
    "read_wannier90",
    "reduced_indices",
    "save_model",
    "supercell",
    "tbg_atomistic",
    "tight_binding",
    "truncate",
]

_FLATTEN_DEFAULTS = {"range": math.inf, "nfine": NFINE_DEFAULT}


def build_model(kind: str, params: dict, flatten: dict | None = None,
                cell: dict | None = None, comm=None):
    """Build a BlochModel from its kind, parameters and optional flattening.

    Parameters
    ----------
    kind : model kind, a key of :data:`KINDS` (haldane, wannier90, tight_binding,
        model_file).
    params : builder parameters (see ``KINDS[kind].params``; defaults are filled in).
    flatten : None, or {"gap": float, "range": float (math.inf = exact), "nfine": int}.
    cell : None, or {"size": (n1, n2), "disorder_width": meV, "disorder_seed": int}: the
        supercell of the (flattened, truncated) model as a sparse BondModel (theory §2.7).
    comm : communicator for kinds that read files (rank 0 reads and broadcasts); then
        collective over ``comm``. None reads on the calling process.

    Raises
    ------
    ValueError for an unknown kind, missing/unknown parameters or flatten keys, and
    (:class:`ModelFileError`) malformed model files.
    """
    model = _flattened(call_builder(kind, params, comm), flatten)
    if cell is None:
        return model
    return supercell(model, cell["size"], cell.get("disorder_width", 0.0),
                     cell.get("disorder_seed", 0))


def _flattened(model, flatten: dict | None):
    """The model flattened (and truncated) as ``flatten`` asks, or itself."""
    if flatten is None:
        return model
    unknown = set(flatten) - {"gap", *_FLATTEN_DEFAULTS}
    if "gap" not in flatten or unknown:
        raise ValueError(f"flatten needs 'gap' (optional 'range', 'nfine'); "
                         f"got keys {sorted(flatten)}")
    opts = {**_FLATTEN_DEFAULTS, **flatten}
    return build_flattened(model, float(opts["gap"]), float(opts["range"]), int(opts["nfine"]))
