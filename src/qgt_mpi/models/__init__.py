"""Bloch models (SPEC §2): tight-binding core, Haldane builder, flattening and truncation.

``build_model`` is the single entry point used by the driver; every model it returns
follows the ``BlochModel`` protocol of ``docs/architecture.md``.
"""

from __future__ import annotations

import math

from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.models.flatten import FlattenedModel, bandwidth, build_flattened, truncate
from qgt_mpi.models.haldane import haldane
from qgt_mpi.models.lattice import TightBinding, kgrid_points, reduced_indices
from qgt_mpi.models.sparse import BondModel, SparseModel, as_sparse
from qgt_mpi.models.supercell import supercell
from qgt_mpi.models.tbg_atomistic import tbg_atomistic

__all__ = [
    "BondModel",
    "FlattenedModel",
    "SparseModel",
    "TightBinding",
    "as_sparse",
    "bandwidth",
    "build_flattened",
    "build_model",
    "haldane",
    "kgrid_points",
    "reduced_indices",
    "supercell",
    "truncate",
]

_BUILDERS = {"haldane": (haldane, ("t1", "t2", "mass", "phi")),
             "bm_continuum": (bm_continuum, ("theta", "alpha", "w0", "w1", "hbar_v", "shells",
                                             "valley", "mass")),
             "tbg_atomistic": (tbg_atomistic, ("m", "a", "d0", "vpp_pi0", "vpp_sigma0",
                                               "delta0", "cutoff"))}
_FLATTEN_DEFAULTS = {"range": math.inf, "nfine": 48}


def _call_builder(kind: str, params: dict):
    """Call the builder of ``kind`` with exactly its parameters, or raise ValueError."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {sorted(_BUILDERS)}")
    builder, names = _BUILDERS[kind]
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise ValueError(f"model {kind!r} needs parameters {list(names)}; "
                         f"missing {missing}, unknown {extra}")
    return builder(**{n: float(params[n]) for n in names})


def build_model(kind: str, params: dict, flatten: dict | None = None,
                cell: dict | None = None):
    """Build a BlochModel from its kind, parameters and optional flattening.

    Parameters
    ----------
    kind : model kind ("haldane").
    params : builder parameters (haldane: t1, t2, mass, phi).
    flatten : None, or {"gap": float, "range": float (math.inf = exact), "nfine": int}.
    cell : None, or {"size": (n1, n2), "disorder_width": meV, "disorder_seed": int}: the
        supercell of the (flattened, truncated) model as a sparse BondModel (SPEC §2.7).

    Raises
    ------
    ValueError for an unknown kind, missing/unknown parameters or flatten keys.
    """
    model = _flattened(_call_builder(kind, params), flatten)
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
