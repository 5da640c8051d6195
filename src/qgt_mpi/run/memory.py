"""Memory per rank of a run: estimate (printed by ``dry-run``) and the up-front refusal.

The estimate adds what one rank holds at its peak (docs/performance.md "Memory" has the
measurements it is calibrated on):

* ``base``: the interpreter with numpy, scipy, mpi4py and h5py loaded, measured as this
  process's resident set size when the estimate is made;
* ``k-pass``: one block's work arrays, per k-point 16 B × (3 N_orb² + 5 N_orb N_b + 8 N_b²
  + N_b · 5 components · (P_CELL + 2) Taylor slots) × WORK_FACTOR (calibrated on the
  issue-9 bench decks with 2–32 bands: the arrays of a block are not all alive at once);
* ``cells``: the moments of the adaptive energy cells (transport/binning.py): the expected
  occupied cells of the full grid (transport/estimate.py, from a sample of band energies)
  × (channels × 6 components × N_SLOTS complex + occupation bands × N_SLOTS real) ×
  CELL_COPIES (the leaves, ≈ 45 % of the tree's cells, are held as the store, its padded
  copy and the reduced sum, then the tree; calibrated on the issue-9 bench decks);
* ``k-resolved``: the fields of the rank's own blocks (5 N_b + 4 doubles per k-point);
* ``symmetry``: with ``accelerate = "symmetry"`` (theory §5.11), the eigenpairs of the star
  representatives a rank's blocks need, min(representatives, 4 × its k-points) × 16 B ×
  (N_orb N_b + 2 N_b²) (vectors, velocities) + 48 N_b B (energies, geometry, residuals);
* ``sweep``: one evaluation unit (at most stream.MAX_UNIT_POINTS points; the sweep itself
  is streamed into the file): its sums, observables and masks, 357 B per point (measured
  for the in-memory sweep, an upper bound).

A run whose estimate times the ranks sharing a node exceeds the memory available there
(MemAvailable, or the cgroup limit when lower) is refused before the k-pass with the
estimate and the keys that change it.
"""

from __future__ import annotations

import math
import os

import numpy as np
from mpi4py import MPI

from qgt_mpi._startup import peak_rss_mib
from qgt_mpi.io.checks import InputError
from qgt_mpi.parallel import allreduce_max, broadcast, collective
from qgt_mpi.parallel.comm import ranks_on_node
from qgt_mpi.transport.binning import N_SLOTS, NCOMP
from qgt_mpi.transport.energy_cells import P_CELL
from qgt_mpi.transport.stream import MAX_UNIT_POINTS

MIB = 2.0**20
WORK_FACTOR = 0.75  # measured / counted bytes of the k-pass work arrays (2-32 bands)
SWEEP_BYTES_PER_POINT = 357.0  # measured (see module docstring)
CELL_COPIES = 1.0  # peak bytes of the cell moments / (tree cells × bytes per cell), measured


def rss_mib() -> float:
    """Current resident set size of this process [MiB] (Linux /proc; 0 if unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def estimate_mib(*, base: float, norb: int, nbands: int, chunk: int, k_max: int,
                 n_points: int, cells: float, n_channels: int, n_occ: int, kresolved: bool,
                 dense: bool = True, solve_mib: float = 0.0,
                 cached_kpoints: int = 0) -> dict[str, float]:
    """Peak memory of one rank by component [MiB]; ``total`` is their sum. Local.

    ``k_max``: k-points of the rank's blocks; ``n_points``: μ × δ × T sweep points;
    ``cells``: expected occupied cells; ``n_channels``/``n_occ``: broadening channels and
    bands with per-band occupations (transport/accumulate.py). A windowed (SLEPc) solve holds no
    dense norb × norb matrices (``dense = False``); its sparse matrices and MUMPS factors are
    ``solve_mib``, measured on a sample solve (they are not modelled). ``cached_kpoints``:
    representatives held by the symmetry accelerator.
    """
    per_k = 16 * (3 * norb**2 * dense + 5 * norb * nbands + 8 * nbands**2
                  + nbands * NCOMP * (P_CELL + 2)) * WORK_FACTOR
    parts = {
        "base": base,
        "k-pass": min(chunk, max(k_max, 1)) * per_k / MIB + solve_mib,
        "cells": CELL_COPIES * cells * N_SLOTS * (16 * n_channels * NCOMP + 8 * n_occ) / MIB,
        "k-resolved": (k_max * (4 + 5 * nbands) * 8 / MIB) if kresolved else 0.0,
        "symmetry": cached_kpoints * (16 * (norb * nbands + 2 * nbands**2) + 48 * nbands)
        / MIB,
        "sweep": min(n_points, MAX_UNIT_POINTS) * SWEEP_BYTES_PER_POINT / MIB,
    }
    parts["total"] = sum(parts.values())
    return parts


def available_mib() -> float:
    """Memory available to this node's processes [MiB]: MemAvailable or the cgroup limit."""
    avail = math.inf
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            avail = min(avail, int(text) / MIB)
    return avail


GRAPHENE_A_NM = 0.246
BYTES_PER_BOND = 200  # R (2 int64), a, b, t, d3, the KD-tree pair list and the CSR pattern
BYTES_PER_IMAGE_ATOM = 64  # periodic images searched by the KD-tree (position + tree node)


def tbg_build_estimate(m: float, cutoff: float, a: float = GRAPHENE_A_NM,
                       d0: float = 0.335) -> tuple[float, float, float]:
    """(orbitals, bonds, MiB) that building ``tbg_atomistic`` would need (floats: any m).

    N = 4(3m² + 3m + 1) carbons; each has ~ρ·π·cutoff² partners in its own layer and
    ~ρ·π·(cutoff² − d0²) in the other (ρ = 4/(√3 a²) atoms per nm² per layer); the KD-tree
    searches N·(2p + 1)² periodic images, p = ⌈cutoff/h⌉ + 1, h the height of the cell.
    Used before the builder allocates anything (validate included).
    """
    m, cutoff = float(m), float(cutoff)
    cells = 3.0 * m * m + 3.0 * m + 1.0
    n = 4.0 * cells
    rho = 4.0 / (math.sqrt(3.0) * a * a)
    partners = rho * math.pi * (cutoff ** 2 + max(cutoff ** 2 - d0 ** 2, 0.0))
    bonds = n * max(partners, 1.0)
    height = a * math.sqrt(cells) * math.sqrt(3.0) / 2.0
    p = math.ceil(cutoff / height) + 1 if math.isfinite(cutoff / height) else math.inf
    images = n * (2.0 * p + 1.0) ** 2
    mib = (bonds * BYTES_PER_BOND + images * BYTES_PER_IMAGE_ATOM) / MIB
    return n, bonds, mib


def check_build(kind: str, params: dict, cells: int = 1) -> None:
    """Refuse (InputError) a model whose construction alone would exceed the memory of the
    node, before anything is allocated (``validate`` too). ``cells``: supercell size n1·n2.

    Today: ``tbg_atomistic`` (m = 1000 or cutoff = 1000 allocated gigabytes inside
    ``validate``). Local; the caller agrees on the error.
    """
    if kind == "tbg_atomistic" and "m" not in params and "theta" in params:
        from qgt_mpi.models.tbg_atomistic import m_for_angle

        params = {**params, "m": m_for_angle(float(params["theta"]))}
    if kind != "tbg_atomistic" or "m" not in params:
        return
    try:
        n, bonds, mib = tbg_build_estimate(params["m"], params.get("cutoff", 0.5),
                                           params.get("a", GRAPHENE_A_NM),
                                           params.get("d0", 0.335))
    except (TypeError, ValueError, OverflowError):
        return  # a malformed value: the builder names it
    n, bonds, mib = n * cells, bonds * cells, mib * cells
    available = available_mib()
    if mib > available:
        raise InputError("model", {"kind": kind, "m": params["m"],
                                   "cutoff": params.get("cutoff", 0.5)},
                         f"building it needs ~{mib:.3g} MiB ({n:.3g} orbitals, ~{bonds:.3g} "
                         f"bonds), more than the {available:.0f} MiB available on this node; "
                         "lower model.m or model.cutoff (docs/input.md)")


KEYS_THAT_MATTER = ("kgrid.size", "run.chunk", "sweep.temperature/mu/delta sizes",
                    "output.kresolved", "the number of ranks")


def refusal(parts: dict[str, float], ranks_on_node: int, available: float) -> str | None:
    """Why a run cannot fit (None if it fits)."""
    need = parts["total"] * ranks_on_node
    if need <= available:
        return None
    big = sorted(((v, k) for k, v in parts.items() if k not in ("total", "base")),
                 reverse=True)[:2]
    return (f"needs ~{parts['total']:.0f} MiB per rank x {ranks_on_node} rank(s) on this node "
            f"= {need:.0f} MiB, more than the {available:.0f} MiB available (largest: "
            + ", ".join(f"{k} {v:.0f} MiB" for v, k in big)
            + f"); reduce {', '.join(KEYS_THAT_MATTER)}")


def sample_cells(job, n: int = 24) -> float:
    """Expected occupied energy cells of the full grid, from the band energies of a sample.

    Dense solvers: an n × n coarse grid spanning the zone; a windowed solver samples 2
    k-points with a serial copy of itself (its pool's other ranks are not taking part). Local.
    """
    from qgt_mpi.models.lattice import kgrid_points
    from qgt_mpi.transport.estimate import expected_cells

    windowed = job.solver.windowed
    n1, n2 = (min(m, 2 if windowed else n) for m in job.grid)
    k = kgrid_points(job.model.reciprocal, n1, n2, 0, min(n1 * n2, 2) if windowed else n1 * n2)
    energies = job.solver.serial().solve(job.model, k, velocities=False).energies
    energies = energies[np.all(np.isfinite(energies), axis=1)]  # the k-pass reports NaN
    return expected_cells(job.sums.lattice, energies, job.nk) if energies.size else 0.0


def run_estimate(job, nprocs: int, kresolved: bool, base: float) -> dict[str, float]:
    """Estimate for a run of ``job`` (a KPass) on ``nprocs`` ranks. Local.

    A windowed solver's blocks go to pools (``job.solver.comm`` ranks each); its solve memory
    is the resident-set growth of the sample.
    """
    s = job.sums
    windowed = job.solver.windowed
    n_pools = nprocs // job.solver.comm.size if windowed else nprocs
    blocks_max = math.ceil(job.n_blocks / max(n_pools, 1))
    k_max = min(job.nk, blocks_max * job.chunk)
    before = rss_mib()
    cells = sample_cells(job)
    return estimate_mib(base=base, norb=job.model.norb, nbands=job.geometry.nb,
                        chunk=job.chunk, k_max=k_max,
                        n_points=s.mu.size * len(s.delta) * s.temperature.size,
                        cells=cells, n_channels=s.chan_delta.size, n_occ=s.occ_bands.size,
                        kresolved=kresolved, dense=not windowed,
                        solve_mib=max(rss_mib() - before, 0.0) if windowed else 0.0,
                        cached_kpoints=_cached(job, k_max))


def _cached(job, k_max: int) -> int:
    """Representatives the symmetry accelerator may hold on one rank (0 without it)."""
    from qgt_mpi.models.kstars import IrreducibleGrid
    from qgt_mpi.solvers.images import SymmetryImages

    if not isinstance(job.solver, SymmetryImages):
        return 0
    n1, n2 = job.grid
    grid = IrreducibleGrid(job.model.reciprocal, n1, n2, job.solver.operations)
    return min(int(grid.representatives.size), 4 * k_max)


def check(comm: MPI.Comm, job, kresolved: bool) -> dict[str, float]:
    """Estimate memory per rank; refuse (InputError) a run the node cannot hold. Collective.

    Rank 0 estimates (its base footprint, a sample of band energies for the cell count) and
    checks against the memory available to the ranks on its node; returns the parts.
    """
    on_node = ranks_on_node(comm)
    parts: dict[str, float] = {}  # rank 0's estimate, broadcast
    with collective(comm):
        if comm.rank == 0:
            parts = run_estimate(job, comm.size, kresolved, rss_mib())
            reason = refusal(parts, on_node, available_mib())
            if reason:
                raise InputError("memory", f"{parts['total']:.0f} MiB per rank", reason)
    return broadcast(comm, parts)


def peak_memory_mib(comm: MPI.Comm) -> float:
    """Largest peak resident set size over ranks [MiB] (VmHWM, _startup.peak_rss_mib).
    Collective."""
    return allreduce_max(comm, peak_rss_mib())
