"""Memory per rank of a run: estimate (printed by ``dry-run``) and the up-front refusal.

The estimate adds what one rank holds at its peak (docs/performance.md "Memory" has the
measurements it is calibrated on):

* ``base``: the interpreter with numpy, scipy, mpi4py and h5py loaded, measured as this
  process's resident set size when the estimate is made;
* ``k-pass``: one block's work arrays, per k-point 16 B × (3 N_orb² + 5 N_orb N_b + 8 N_b²
  + N_b · 5 components · (P_BIN + 2) Taylor slots) × 1.1 (measured: 2.76 kB per k-point
  for the two-band Haldane model against 2.46 kB counted);
* ``bins``: the energy-bin moments of every band (theory §3), held twice during the reduction;
* ``k-resolved``: the fields of the rank's own blocks (5 N_b + 4 doubles per k-point);
* ``sweep``: the reduced sweep, N = N_μ N_δ N_T points: the 13 sums per point of the
  evaluation, their exchange over ranks (pickled and unpacked) and the 8 observables,
  measured as 357 B per point (N = 10⁶ and 4·10⁶, two ranks).

A run whose estimate times the ranks sharing a node exceeds the memory available there
(MemAvailable, or the cgroup limit when lower) is refused before the k-pass with the
estimate and the keys that change it.
"""

from __future__ import annotations

import math
import os

from mpi4py import MPI

from qgt_mpi.io.checks import InputError
from qgt_mpi.parallel import broadcast, collective
from qgt_mpi.parallel.comm import ranks_on_node
from qgt_mpi.solvers import is_windowed, serial_copy
from qgt_mpi.transport.binning import N_SLOTS, NCOMP, P_BIN

MIB = 2.0**20
WORK_FACTOR = 1.1  # measured / counted bytes of the k-pass work arrays
SWEEP_BYTES_PER_POINT = 357.0  # measured (see module docstring)


def rss_mib() -> float:
    """Current resident set size of this process [MiB] (Linux /proc; 0 if unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def estimate_mib(*, base: float, norb: int, nbands: int, chunk: int, k_max: int,
                 n_delta: int, n_points: int, bins_per_band: int, kresolved: bool,
                 dense: bool = True, solve_mib: float = 0.0) -> dict[str, float]:
    """Peak memory of one rank by component [MiB]; ``total`` is their sum. Local.

    ``k_max``: k-points of the rank's blocks; ``n_points``: μ × δ × T sweep points;
    ``bins_per_band``: energy bins of the widest band. A windowed (SLEPc) solve holds no
    dense norb × norb matrices (``dense = False``); its sparse matrices and MUMPS factors are
    ``solve_mib``, measured on a sample solve (they are not modelled).
    """
    per_k = 16 * (3 * norb**2 * dense + 5 * norb * nbands + 8 * nbands**2
                  + nbands * NCOMP * (P_BIN + 2)) * WORK_FACTOR
    parts = {
        "base": base,
        "k-pass": min(chunk, max(k_max, 1)) * per_k / MIB + solve_mib,
        "bins": 2 * nbands * n_delta * bins_per_band * NCOMP * N_SLOTS * 16 / MIB,
        "k-resolved": (k_max * (4 + 5 * nbands) * 8 / MIB) if kresolved else 0.0,
        "sweep": n_points * SWEEP_BYTES_PER_POINT / MIB,
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


def sample_bins(job, n: int = 256) -> int:
    """Energy bins of the widest band, from the band extent of a sample block. Local.

    A windowed solver samples 2 k-points with a serial copy of itself (its pool's other
    ranks are not taking part here).
    """
    from dataclasses import replace

    from qgt_mpi.geometry.summary import GeometrySummary
    from qgt_mpi.kpass import _block
    from qgt_mpi.parallel.timing import Timers
    from qgt_mpi.transport.accumulate import TransportSums

    s = job.sums
    windowed = is_windowed(job.solver)
    window = ({"delta_out": s.delta_out, "chern_below": s.chern_below}
              if s.delta_out is not None else {})
    sample = replace(job, chunk=min(2 if windowed else n, job.nk), kresolved=False,
                     kfields={}, solver=serial_copy(job.solver),
                     sums=TransportSums(s.temperature, s.mu, s.delta, **window),
                     geometry=GeometrySummary(job.geometry.nb, len(job.groups)))
    _block(sample, 0, Timers())
    return int(max(max(d.shape[1] for d in sample.sums.moments.data), 1))


def run_estimate(job, nprocs: int, kresolved: bool, base: float) -> dict[str, float]:
    """Estimate for a run of ``job`` (a KPass) on ``nprocs`` ranks. Local.

    A windowed solver's blocks go to pools (``job.solver.comm`` ranks each); its solve memory
    is the resident-set growth of the sample.
    """
    s = job.sums
    windowed = is_windowed(job.solver)
    n_pools = nprocs // job.solver.comm.size if windowed else nprocs
    blocks_max = math.ceil(job.n_blocks / max(n_pools, 1))
    before = rss_mib()
    bins = sample_bins(job)
    return estimate_mib(base=base, norb=job.model.norb, nbands=job.geometry.nb,
                        chunk=job.chunk, k_max=min(job.nk, blocks_max * job.chunk),
                        n_delta=len(s.delta),
                        n_points=s.mu.size * len(s.delta) * s.temperature.size,
                        bins_per_band=bins, kresolved=kresolved, dense=not windowed,
                        solve_mib=max(rss_mib() - before, 0.0) if windowed else 0.0)


def check(comm: MPI.Comm, job, kresolved: bool) -> dict[str, float]:
    """Estimate memory per rank; refuse (InputError) a run the node cannot hold. Collective.

    Rank 0 estimates (its base footprint, a 256-k-point sample for the bin count) and
    checks against the memory available to the ranks on its node; returns the parts.
    """
    on_node = ranks_on_node(comm)
    parts = None
    with collective(comm):
        if comm.rank == 0:
            parts = run_estimate(job, comm.size, kresolved, rss_mib())
            reason = refusal(parts, on_node, available_mib())
            if reason:
                raise InputError("memory", f"{parts['total']:.0f} MiB per rank", reason)
    return broadcast(comm, parts)
