"""Deck sections of the sparse engine: ``[solver]`` and ``[model.supercell]`` (docs/input.md).

``[solver]`` chooses the eigensolver (theory §2.1, §5): ``kind = "dense"`` (all bands, batched
LAPACK), ``"slepc"`` (a window of ``nev`` bands nearest ``target``, shift-and-invert with
MUMPS) or ``"auto"`` (dense up to ``AUTO_CROSSOVER`` orbitals, SLEPc above; the crossover is
measured in bench/bench_sparse.py and docs/performance.md). Bands outside a window enter the
transport through their far-off-resonance limit with broadening ``delta_out`` (theory §5); the
Hall response of filled bands below the window is ``chern_below`` (an integer: those bands'
total Chern number) or reported as excluded. ``valley = true`` adds the valley-resolved
Chern numbers and metric of the window (theory §5.8; models with a valley operator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

from qgt_mpi.io.checks import (
    ENERGY_MAX_MEV,
    InputError,
    Table,
    boolean,
    integer,
    magnitude,
    number,
    positive,
    string,
    type_error,
)

SOLVER_KINDS = ("dense", "slepc", "auto")
ACCELERATORS = ("none", "basis", "symmetry")  # [solver] accelerate (theory §5.10, §5.11)
AUTO_CROSSOVER = 190  # orbitals; above this "auto" uses SLEPc (measured: docs/performance.md §5)


@dataclass(frozen=True)
class SolverSpec:
    """``[solver]``: eigensolver choice and window (theory §5)."""

    kind: str = "dense"
    nev: int | None = None
    target: float | None = None  # meV
    tol: float = 1e-10
    ncv: int | None = None
    max_it: int | None = None
    pad: int | None = None
    edge_tol: float = 1e-6  # meV
    cluster_tol: float = 1e-2  # meV: eigenvalues closer than this stay together in a window
    resolve: str = "auto"  # operator resolving degenerate window groups: auto | none | name
    out_of_window: bool = True
    delta_out: float | None = None  # meV
    chern_below: int | None = None
    flatten: tuple[float, ...] | None = None  # meV, one per band: exactly flat bands
    valley: bool = False  # valley-resolved geometry of the window (theory §5.8)
    accelerate: str = "none"  # "basis": reduced basis (§5.10); "symmetry": star images (§5.11)
    accelerate_tol: float = 1e-8  # bound on the vector angle and the metric's relative error
    accelerate_energy_tol: float = 1e-6  # meV: bound on the eigenvalue error
    accelerate_max_basis: int = 400  # columns


@dataclass(frozen=True)
class SupercellSpec:
    """``[model.supercell]``: n1×n2 supercell with optional box disorder (theory §2.7)."""

    size: tuple[int, int]
    disorder_width: float = 0.0  # meV
    disorder_seed: int = 0


def _tolerance(key: str, value: object) -> float:
    x = positive(key, value)
    if x >= 1e-2:
        raise InputError(key, value, "must be in (0, 1e-2) (relative residual)")
    return x


def parse_solver(top: Table) -> SolverSpec:
    """Read the optional ``[solver]`` section; without it the dense solver is used."""
    if "solver" not in top.data:
        return SolverSpec()
    t = top.sub("solver", {"kind", "nev", "target", "tol", "ncv", "max_it", "pad", "edge_tol",
                           "cluster_tol", "resolve", "out_of_window", "delta_out",
                           "chern_below", "flatten", "valley", "accelerate",
                           "accelerate_tol", "accelerate_energy_tol",
                           "accelerate_max_basis"},
                  optional=True)
    kind = t.get("kind", string, "dense")
    if kind not in SOLVER_KINDS:
        raise InputError(t.key("kind"), kind, f"must be one of {', '.join(SOLVER_KINDS)}")
    nev = t.optional("nev", partial(integer, low=1))
    target = t.optional("target", partial(magnitude, high=ENERGY_MAX_MEV, unit="meV"))
    ncv = t.optional("ncv", partial(integer, low=2))
    max_it = t.optional("max_it", partial(integer, low=1))
    pad = t.optional("pad", partial(integer, low=1))
    delta_out = t.optional("delta_out", partial(positive, unit="meV"))
    chern_below = t.optional("chern_below", _signed_integer)
    flatten = t.optional("flatten", _energies)
    if kind == "slepc":
        for name in ("nev", "target"):
            if name not in t.data:
                t.get(name, number, what=' (the slepc solver needs "nev" and "target")')
    if ncv is not None and nev is not None:
        need = nev + (pad if pad is not None else max(4, nev // 2))
        if ncv <= need:
            raise InputError(t.key("ncv"), ncv, f"must exceed solver.nev + pad = {need}")
    valley = t.get("valley", boolean, False)
    if valley and (kind == "dense" or (nev if nev is not None else 2) % 2):
        raise InputError(t.key("valley"), True, "needs a window of an even number of bands "
                         '(solver.kind = "slepc" or "auto", even solver.nev): n per valley')
    accelerate = t.get("accelerate", string, "none")
    if accelerate not in ACCELERATORS:
        raise InputError(t.key("accelerate"), accelerate,
                         f"must be one of {', '.join(ACCELERATORS)}")
    if accelerate == "basis" and kind == "dense":
        raise InputError(t.key("accelerate"), accelerate, "accelerates a window solve "
                         '(solver.kind = "slepc" or "auto")')
    return SolverSpec(kind=kind, nev=nev, target=target, tol=t.get("tol", _tolerance, 1e-10),
                      ncv=ncv, max_it=max_it, pad=pad,
                      edge_tol=t.get("edge_tol", partial(positive, unit="meV"), 1e-6),
                      cluster_tol=t.get("cluster_tol", partial(positive, unit="meV"), 1e-2),
                      resolve=t.get("resolve", string, "auto"),
                      out_of_window=t.get("out_of_window", boolean, True),
                      delta_out=delta_out, chern_below=chern_below, flatten=flatten,
                      valley=valley, accelerate=accelerate,
                      accelerate_tol=t.get("accelerate_tol", _tolerance, 1e-8),
                      accelerate_energy_tol=t.get("accelerate_energy_tol",
                                                  partial(positive, unit="meV"), 1e-6),
                      accelerate_max_basis=t.get("accelerate_max_basis",
                                                 partial(integer, low=1), 400))


def _energies(key: str, value: object) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(key, value, "must be a non-empty list of energies (meV), one per band")
    return tuple(number(f"{key}[{i}]", v, "meV") for i, v in enumerate(value))


def _signed_integer(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(key, value, "an integer (total Chern number of the bands below)")
    return value


def parse_supercell(model: Table) -> SupercellSpec | None:
    """Read the optional ``[model.supercell]`` sub-table."""
    if "supercell" not in model.data:
        return None
    t = model.sub("supercell", {"size", "disorder"})
    size = t.get("size", _pair, what=" ([n1, n2])")
    width, seed = 0.0, 0
    if "disorder" in t.data:
        d = t.sub("disorder", {"width", "seed"})
        width = d.get("width", partial(number, unit="meV"), what=" (meV)")
        if width < 0 or not math.isfinite(width):
            raise InputError(d.key("width"), width, "must be >= 0 meV (box full width)")
        seed = d.get("seed", partial(integer, low=0), 0)
    return SupercellSpec(size=size, disorder_width=width, disorder_seed=seed)


def _pair(key: str, value: object) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(key, value, "must be a list of two positive integers [n1, n2]")
    return integer(f"{key}[0]", value[0], 1), integer(f"{key}[1]", value[1], 1)
