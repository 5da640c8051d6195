"""Collective behaviour in-process: run serially and under mpirun -n 2 / -n 3 (marked mpi)."""

from __future__ import annotations

import itertools
import math
import os

import h5py
import numpy as np
import pytest
from decks import HALDANE_T, deck_text, kgrid_table, sweep_table, table
from mpi4py import MPI
from mpi_util import assert_all

from qgt_mpi.io import writer
from qgt_mpi.models import build_model, haldane
from qgt_mpi.parallel import CollectiveError, Timers, block_range, collective
from qgt_mpi.parallel.comm import allunion
from qgt_mpi.run.driver import compute

pytestmark = pytest.mark.mpi


def _transport(comm, model, grid):
    _, tr, geo = compute(comm, model, grid, np.array([0.7, 9.0]), np.linspace(-2, 2, 9),
                         np.array([[0.03, 0.03], [0.01, 0.06]]))
    return tr, geo


@pytest.mark.parametrize("grid", [(9, 7), (1, 2)])
def test_world_equals_serial(comm, grid):
    """Distributed sums equal a serial run on every rank (≤1e-12), even with empty ranks."""
    model = haldane(1.0, 0.3, 0.1, 1.3)
    tr_w, geo_w = _transport(comm, model, grid)
    tr_s, geo_s = _transport(MPI.COMM_SELF, model, grid)
    worst = max(float(np.max(np.abs(tr_w[k] - tr_s[k]) / np.max(np.abs(tr_s[k]))))
                for k in ("sigma_xx", "sigma_xy", "seebeck", "kappa_xx"))
    assert_all(comm, worst < 1e-12, f"relative difference {worst:.3g}")
    assert_all(comm, np.array_equal(geo_w["chern_groups"], geo_s["chern_groups"]), "Chern")


def test_allunion_equals_the_gathered_union(comm):
    """allunion (tree merge, no P-sized gather) equals np.unique of the allgathered keys,
    with empty ranks and overlapping keys, on every rank."""
    rng = np.random.default_rng(comm.rank)
    for n in (0, 7, 500):
        mine = np.unique(rng.integers(-50, 3000, size=n * (comm.rank % 3))).astype(np.int64)
        got = allunion(comm, mine)
        want = np.unique(np.concatenate(comm.allgather(mine))).astype(np.int64)
        assert_all(comm, got.dtype == np.int64 and np.array_equal(got, want), f"n = {n}")


def test_rank0_against_the_others(comm):
    """Timers.rank0_vs_others: rank 0's own seconds and memory, the max and mean of the
    other ranks (mean memory over the ranks that entered a phase), NaN where none did."""
    timers = Timers()
    r = comm.rank
    timers.seconds, timers.peak_mib = {"a": 1.0 + r, "b": 0.5}, {"a": 10.0 + r}
    if r % 2:  # odd ranks also entered "c"
        timers.peak_mib["c"], timers.seconds["c"] = 100.0 * r, 2.0
    seconds, peak = timers.rank0_vs_others(comm, ["a", "b", "c"])

    def stat(values: list[float]) -> tuple[float, float]:  # max, mean; NaN for none
        return (max(values), float(np.mean(values))) if values else (np.nan, np.nan)

    others = range(1, comm.size)
    want_s = [[1.0, *stat([1.0 + q for q in others])], [0.5, *stat([0.5 for q in others])],
              [0.0, *stat([2.0 * (q % 2) for q in others])]]
    want_m = [[10.0, *stat([10.0 + q for q in others])], [np.nan] * 3,
              [np.nan, *stat([100.0 * q for q in others if q % 2])]]
    ok = (np.allclose(seconds, want_s, equal_nan=True)
          and np.allclose(peak, want_m, equal_nan=True))
    assert_all(comm, ok, f"got {seconds.tolist()} {peak.tolist()}")


def test_block_decomposition_covers_grid_once(comm):
    for n in (0, 1, 2, 5, 97):
        ranges = [block_range(n, comm.size, r) for r in range(comm.size)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        sizes = [b - a for a, b in ranges]
        assert max(sizes) - min(sizes) <= 1


def test_stop_signal_on_one_rank_stops_every_rank_after_a_phase(comm):
    """signals.stop_after: a SIGTERM seen by the last rank only ends a phase that cannot
    stop midway (superfluid, valley) on every rank with status 3 and the same message; no
    signal, no stop."""
    import signal

    from qgt_mpi.parallel.signals import EXIT_INTERRUPTED, StopFlag, stop_after

    flag = StopFlag()
    stop_after(comm, flag, "valley phase")  # nothing set: returns on every rank
    if comm.rank == comm.size - 1:
        flag.handler(signal.SIGTERM, None)
    with pytest.raises(CollectiveError) as err:
        stop_after(comm, flag, "valley phase")
    assert err.value.status == EXIT_INTERRUPTED
    assert str(err.value).startswith("interrupted by SIGTERM during the valley phase")


def test_failure_on_one_rank_is_raised_on_all(comm):
    """An error on the last rank only reaches every rank with the same message."""
    with pytest.raises(CollectiveError) as err:
        with collective(comm):
            if comm.rank == comm.size - 1:
                raise FloatingPointError("NaN in kernel")
    assert str(err.value) == "NaN in kernel" and err.value.origin == comm.size - 1


def test_flat_model_run_writes_one_complete_file(comm, tmp_path_shared):
    """A full write with k-resolved slabs from every rank; read back on every rank."""
    flat = {"gap": 0.5, "range": math.inf, "nfine": 48}
    model = build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": math.pi / 2},
                        flat)
    job, tr, _ = compute(comm, model, (3, 3), np.array([1.0]), np.array([0.0]),
                         np.array([[0.01, 0.01]]), chunk=4, kresolved=True)
    from qgt_mpi.run.kpass import kfield_slabs

    result = writer.ResultFile(
        attrs={"program": "qgt_mpi", "n_ranks": comm.size},
        groups={"transport": {"sigma_xx": (tr["sigma_xx"], {"units": "e^2/h"})}},
        kfields={"energies": ((2,), np.dtype(float), {}),
                 "k_frac": ((2,), np.dtype(float), {})},
        kslabs=kfield_slabs(job), nk_total=9, kgrid_shape=(3, 3))
    path = str(tmp_path_shared / "collective.h5")
    writer.write(comm, path, result)
    with h5py.File(path, "r", driver="mpio", comm=comm) as f:
        ok = bool(f.attrs["complete"]) and f["kgrid"]["energies"].shape == (3, 3, 2)
        ok = ok and np.allclose(f["kgrid"]["energies"][()], [[[-0.25, 0.25]] * 3] * 3)
        # blocks of 4 cut rows: (3, 3) layout must put k = (i/3, j/3) at [i, j]
        grid = np.stack(np.meshgrid(np.arange(3), np.arange(3), indexing="ij"), -1) / 3
        ok = ok and np.allclose(f["kgrid"]["k_frac"][()], grid)
        ok = ok and np.allclose(f["transport"]["sigma_xx"][()], tr["sigma_xx"])
    assert_all(comm, ok, "file content")


def test_nan_on_one_rank_stops_all_ranks_without_output(comm, tmp_path_shared, monkeypatch):
    """A NaN produced on the last rank only: every rank raises the same error, no file."""
    from qgt_mpi.io.deck import parse_deck
    from qgt_mpi.logs import setup_logging
    from qgt_mpi.run.driver import run
    from qgt_mpi.solvers.dense import DenseSolver

    original = DenseSolver.solve

    def poisoned(self, model, k, velocities=True):
        eig = original(self, model, k, velocities)
        eig.energies[...] = np.nan
        return eig

    if comm.rank == comm.size - 1:
        monkeypatch.setattr(DenseSolver, "solve", poisoned)
    deck = parse_deck(deck_text(HALDANE_T, kgrid_table(6), sweep_table(delta=[0.01]),
                                table("run", chunk=4)), "nan.toml")
    out = str(tmp_path_shared / "nan.h5")
    with pytest.raises(CollectiveError) as err:
        run(comm, deck, out, setup_logging(comm))
    msg = str(err.value)
    assert_all(comm, "non-finite" in msg, msg)
    assert_all(comm, err.value.origin == comm.size - 1, f"origin {err.value.origin}")
    comm.Barrier()
    exists = [os.path.exists(p) for p in (out, out + ".partial")]
    assert_all(comm, not any(exists), f"files left: {exists}")
