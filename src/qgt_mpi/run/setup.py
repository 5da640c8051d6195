"""From a validated deck to a job: model, solver on its pool, broadcastings, accumulators.

The set-up half of a run (driver.py does the rest): ``model_from_config`` builds the model
(collective for kinds that read files), ``solver_from_config`` chooses the eigensolver
(solvers.make_solver), ``window_terms`` gives a windowed solver's δ_out and C_below
(theory §5), ``make_job`` the k-pass accumulators and ``prepare`` does all of it with one
agreed error. Input problems become InputErrors naming the deck key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np
from mpi4py import MPI

from qgt_mpi.geometry.summary import GeometrySummary
from qgt_mpi.io import writer
from qgt_mpi.io.deck import (
    InputError,
    ModelSpec,
    RunConfig,
    check_filling_bands,
    delta_for_bands,
)
from qgt_mpi.io.deck_solver import AUTO_CROSSOVER
from qgt_mpi.models import build_model
from qgt_mpi.models.flatten import RangeError
from qgt_mpi.parallel import collective
from qgt_mpi.parallel.errors import fail_point
from qgt_mpi.run.bandpath import resolve_path
from qgt_mpi.run.blocks import default_chunk
from qgt_mpi.run.kpass import KPass, link_groups
from qgt_mpi.solvers import DenseSolver, Eigensolver, make_solver
from qgt_mpi.solvers.resolve import operator_apply
from qgt_mpi.transport.accumulate import TransportSums

if TYPE_CHECKING:
    from qgt_mpi.models.protocols import BlochModel


def model_from_config(config: RunConfig, comm: MPI.Comm | None = None) -> BlochModel:
    """Build the BlochModel of a deck; builder errors become InputErrors naming the key.

    Collective over ``comm`` when given (model files are read on rank 0 and broadcast).
    """
    return model_from_spec(config.model, comm)


def model_from_spec(spec: ModelSpec, comm: MPI.Comm | None = None) -> BlochModel:
    """Build the model of a checked ``[model]`` section (:func:`model_from_config`; also
    ``qgt_mpi.deck_model``). Collective over ``comm`` when given."""
    flatten = None
    if spec.flatten is not None:
        f = spec.flatten
        flatten = {"gap": f.gap, "range": f.range, "nfine": f.nfine}
    cell = None
    if spec.supercell is not None:
        c = spec.supercell
        cell = {"size": c.size, "disorder_width": c.disorder_width,
                "disorder_seed": c.disorder_seed}
    from qgt_mpi.run.memory import check_build

    n1n2 = int(np.prod(spec.supercell.size)) if spec.supercell is not None else 1
    check_build(spec.kind, dict(spec.params), n1n2)  # before the builder allocates anything
    try:
        return build_model(spec.kind, dict(spec.params), flatten, cell, comm)
    except RangeError as exc:  # names the offending setting
        raise InputError(f"model.{exc.key}", exc.value, exc.allowed) from exc
    except ValueError as exc:
        raise InputError("model", spec.kind, str(exc)) from exc


def prepare(comm: MPI.Comm, config: RunConfig, output: str, pool: MPI.Comm | None = None
            ) -> tuple[BlochModel, Eigensolver, np.ndarray]:
    """Model, solver (on ``pool``), per-band broadenings and an output check. Collective.

    Three agreements, each before the next collective step: a rank that fails must not leave
    the others inside the model's broadcasts (rank-0 reads) or inside the creation of the
    solver on its pool (PETSc objects are collective over the pool).
    """
    with collective(comm):
        fail_point(comm, "setup")
    with collective(comm):
        model = model_from_config(config, comm)
    with collective(comm):
        solver, delta = engine(config, model, pool or MPI.COMM_SELF)
        writer.check_writable(comm, output)
    return model, solver, delta


def engine(config: RunConfig, model: BlochModel, pool: MPI.Comm
           ) -> tuple[Eigensolver, np.ndarray]:
    """The deck's solver for ``model`` on ``pool`` and the per-band broadenings, with every
    check that needs the model (bands of δ and of the filling, [bands] names). The CLI run
    (:func:`prepare`) and the Python API both come here. Raises InputError; call it inside
    ``collective`` (the solver's creation is collective over ``pool``)."""
    solver = solver_from_config(config, model, pool)
    delta = delta_for_bands(config.sweep, solver.bands(model))
    check_filling_bands(config.sweep, solver.bands(model))
    resolve_path(config.bands, model)  # [bands] names checked before anything is computed
    return solver, delta


def solver_from_config(config: RunConfig, model: BlochModel, pool: MPI.Comm) -> Eigensolver:
    """The deck's solver for ``model`` on ``pool``; errors become InputErrors (``solver``)."""
    name = config.solver.resolve
    if name not in ("auto", "none"):
        try:
            operator_apply(model, name)
        except ValueError as exc:
            raise InputError("solver.resolve", name, str(exc)) from None
    try:
        solver = make_solver(config.solver, model, pool, AUTO_CROSSOVER)
    except ValueError as exc:
        raise InputError("solver", config.solver.kind, str(exc)) from exc
    if name not in ("auto", "none") and not solver.windowed:
        raise InputError("solver.resolve", name, "resolves degenerate groups of a window: "
                         'needs solver.kind = "slepc" (or "auto" above the dense crossover)')
    if config.solver.valley:
        if (not callable(getattr(model, "valley", None))
                or len(getattr(model, "valleys", (1, -1))) != 2):
            raise InputError("solver.valley", True, "needs a model with a valley operator "
                             '(kind = "tbg_atomistic", or a continuum kind with valley = '
                             f'"both"); model.kind = "{config.model.kind}" has none')
        if not solver.windowed:
            raise InputError("solver.valley", True, f"needs a window; solver.kind = "
                             f'"auto" chose the dense solver for {model.norb} orbitals '
                             '(use kind = "slepc")')
    return solver


class WindowTerms(TypedDict, total=False):
    """What a windowed solver adds to the k-pass accumulators (TransportSums keywords)."""

    delta_out: np.ndarray  # (n_delta,) broadening of the bands outside the window [meV]
    chern_below: int | None  # Chern number of the filled bands below the window


def window_terms(config: RunConfig, solver: Eigensolver, delta: np.ndarray) -> WindowTerms:
    """``delta_out`` (per δ choice) and ``chern_below`` for a windowed solver (theory §5).

    δ_out defaults to the δ choice's value when all window bands share it; per-band δ
    needs ``solver.delta_out``.
    """
    if not solver.windowed:
        return {}
    spec = config.solver
    if spec.delta_out is not None:
        out = np.full(len(delta), spec.delta_out)
    elif np.all(delta == delta[:, :1]):
        out = delta[:, 0].copy()
    else:
        raise InputError("solver.delta_out", None, "required with per-band sweep.delta "
                         "(broadening of the bands outside the window, meV)")
    return {"delta_out": out, "chern_below": spec.chern_below}


def prepare_model_only(comm: MPI.Comm, config: RunConfig) -> str:
    """``validate``: build the model and per-band δ; return a summary. Collective."""
    with collective(comm):
        model = model_from_config(config, comm)
        solver = solver_from_config(config, model, MPI.COMM_SELF)
        delta = delta_for_bands(config.sweep, solver.bands(model))
        path = resolve_path(config.bands, model)  # [bands]: named points exist here
    s = config.sweep
    n1, n2 = config.kgrid
    lines = [
        f"input ok: {config.source}",
        f"  title       {config.title}",
        f"  model       {model.describe().get('kind', '?')}, {model.nbands} bands",
        f"  solver      {solver.name}, {solver.bands(model)} bands"
        + (f" nearest {config.solver.target:g} meV" if solver.windowed else ""),
        f"  k-grid      {n1} x {n2} = {n1 * n2} k-points",
        f"  temperature {s.temperature.size} values, {s.temperature.min():.4g}"
        f"..{s.temperature.max():.4g} K",
        f"  mu          {s.mu.size} values, {s.mu.min():.4g}..{s.mu.max():.4g} meV"
        if s.filling is None else f"  filling     {s.filling.size} values, "
        f"{s.filling.min():.4g}..{s.filling.max():.4g} of bands {list(s.filling_bands)}",
        f"  delta       {len(delta)} choice(s) x {delta.shape[1]} bands, "
        f"{delta.min():.4g}..{delta.max():.4g} meV",
        f"  output      {config.output.file} (k-resolved: {config.output.kresolved})",
    ]
    if path is not None:
        lines.append(f"  bands path  {' '.join(path.labels)}, {path.points} points")
    return "\n".join(lines)


def make_job(comm: MPI.Comm, model: BlochModel, kgrid: tuple[int, int],
             temperature: np.ndarray, mu: np.ndarray, delta: np.ndarray,
             chunk: int | None = None,
             kresolved: bool = False, solver: Eigensolver | None = None,
             window: WindowTerms | None = None,
             filling_bands: list[int] | None = None) -> KPass:
    """Accumulators and block layout for one model and sweep. Local, no communication.

    ``solver`` defaults to the dense solver; ``window`` holds a windowed solver's
    ``delta_out`` and ``chern_below`` (:func:`window_terms`); ``filling_bands`` the band
    group of a fixed-filling sweep (its μ is solved after the k-pass). ``chunk`` (k-points
    per block) None: the default for this grid, the pools of ``comm`` and the solver
    (run/blocks.default_chunk).
    """
    solver = solver or DenseSolver()
    if chunk is None:
        nk = int(kgrid[0]) * int(kgrid[1])
        chunk = default_chunk(nk, comm.size // solver.comm.size, solver.windowed)
    nb = solver.bands(model)
    sums = TransportSums(temperature, mu, delta, **(window or {}),
                         filling_bands=filling_bands)
    groups = link_groups(nb, window=solver.windowed)
    return KPass(model, solver, (int(kgrid[0]), int(kgrid[1])), chunk, groups, sums,
                 GeometrySummary(nb, len(groups)), kresolved)
