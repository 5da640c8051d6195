"""Streaming evaluation (transport/stream.py, io/sweep_file.py): failure, stop and resume.

A signal during the evaluation must checkpoint the finished units (their data stay in the
partial result file) and exit with status 3; the rerun, on another rank count, continues
and gives the same file as an uninterrupted run. A unit failing on one rank stops every
rank with one message (no hang).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import HALDANE, deck_text, kgrid_table, span, sweep_table, table
from helpers import TRANSPORT_KEYS, assert_same_results
from mpi4py import MPI
from runner import qgt, rank_pids, start

from qgt_mpi.parallel import CollectiveError
from qgt_mpi.transport.stream import MemorySink, run_units, sweep_units

DECK = deck_text(HALDANE, kgrid_table(12),
                 sweep_table(span(0.5, 30.0, 300, "log"), span(-3.0, 3.0, 41), [0.05]),
                 table("output", kresolved=True), table("run", progress_percent=1))


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
        out.update({k: f["kgrid"][k][()] for k in ("energies", "berry_curvature", "metric")})
        return out


@pytest.mark.subprocess
@pytest.mark.parametrize("how", ["term", "kill9"])
def test_stop_during_evaluation_resumes_on_other_rank_count(tmp_path, how):
    """SIGTERM to every rank, or kill -9 of one rank with checkpoints every round."""
    deck = tmp_path / "deck.toml"
    deck.write_text(DECK)
    ref = tmp_path / "ref.h5"
    assert qgt(["run", str(deck), "-o", str(ref)], np=2).returncode == 0
    out = tmp_path / "out.h5"
    proc = start(["run", str(deck), "-o", str(out)]
                 + (["--checkpoint-interval", "0"] if how == "kill9" else []), 3)
    wanted, seen = int(np.random.default_rng().integers(2, 8)), 0
    for line in proc.stdout:
        seen += "evaluation" in line
        if seen >= wanted:
            break
    pids = rank_pids(str(out))
    for pid in pids if how == "term" else pids[-1:]:
        os.kill(pid, signal.SIGTERM if how == "term" else signal.SIGKILL)
    log = proc.stdout.read()
    status = proc.wait(timeout=120)
    assert status == 3 if how == "term" else status != 0, log
    ckpt = Path(str(out) + ".checkpoint.h5")
    with h5py.File(ckpt, "r") as f:
        done = f["state/sweep_done"][()].astype(bool)
    assert 0 < done.sum() < done.size
    with h5py.File(str(out) + ".partial", "r") as f:  # finished units are on disk already
        part = f["transport/sigma_xx"][()]
    units = sweep_units(*part.shape)
    first = units[int(np.flatnonzero(done)[0])]
    assert np.all(np.isfinite(part[first[2], first[0], first[1]]))
    proc = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resuming from checkpoint" in proc.stdout
    assert not ckpt.exists() and not Path(str(out) + ".partial").exists()
    assert_same_results(_read(ref), _read(out))


def test_units_do_not_depend_on_ranks_and_are_bounded():
    """The unit layout is a function of the sweep only, with at most MAX_UNIT_POINTS each;
    temperatures are grouped beyond MAX_UNITS units; each (δ, T, μ) is in one unit."""
    from qgt_mpi.transport.stream import MAX_UNIT_POINTS, MAX_UNITS, MIN_UNITS

    units = sweep_units(1000, 1, 10_000)
    assert all(u[2] == slice(0, 1000) for u in units)
    sizes = [u[1].stop - u[1].start for u in units]
    assert max(sizes) == 10 and len(units) == 1000 <= MAX_UNITS
    assert len(sweep_units(41, 1, 300)) == 300  # no grouping below MAX_UNITS
    assert max(u[1].stop - u[1].start for u in sweep_units(1000, 1, 10**6)) * 1000 \
        <= MAX_UNIT_POINTS
    assert np.array_equal(np.concatenate([np.arange(10_000)[u[1]] for u in units]),
                          np.arange(10_000))
    assert len(sweep_units(5, 2, 20)) >= MIN_UNITS
    units = sweep_units(300_000, 2, 1)
    assert max(u[2].stop - u[2].start for u in units) <= MAX_UNIT_POINTS
    assert len(sweep_units(281, 1, 1)) == MIN_UNITS
    covered = np.zeros((300_000, 2), int)
    for d, temps, sl in units:
        assert temps == slice(0, 1)
        covered[sl, d] += 1
    assert np.all(covered == 1)


def _failing(rank_to_fail: int, unit_to_fail: int):
    def evaluate(unit):
        if MPI.COMM_WORLD.rank == rank_to_fail and unit[1] == unit_to_fail:
            raise ValueError("kernel table broke")
        return {"x": np.full((unit[2].stop - unit[2].start, unit[1].stop - unit[1].start),
                             float(unit[1].start))}
    return evaluate


@pytest.mark.mpi
def test_unit_failure_on_one_rank_stops_every_rank():
    """The last rank fails in its second unit: every rank raises the same error."""
    comm = MPI.COMM_WORLD
    units = sweep_units(5, 1, 4 * comm.size)
    sink = MemorySink((5, 1, 4 * comm.size))
    fail_unit = units[comm.size + comm.size - 1][1]  # the last rank's second unit
    import logging

    with pytest.raises(CollectiveError) as err:
        run_units(comm, _failing(comm.size - 1, fail_unit), units, list(range(len(units))),
                  sink, logging.getLogger("test"))
    assert "kernel table broke" in str(err.value) and err.value.status == 1
    assert err.value.origin == comm.size - 1


@pytest.mark.mpi
def test_streamed_units_cover_the_sweep_once():
    """Every (μ, δ, T) is computed by exactly one rank; result same on every rank."""
    comm = MPI.COMM_WORLD
    units = sweep_units(7, 2, 3)
    sink = MemorySink((7, 2, 3))
    import logging

    def evaluate(u):
        temps = 10.0 * np.arange(u[1].start, u[1].stop)
        return {"x": np.broadcast_to(1.0 + u[0] + temps, (u[2].stop - u[2].start, temps.size))}

    run_units(comm, evaluate, units, list(range(len(units))), sink, logging.getLogger("test"))
    got = sink.result(comm)["x"]
    expect = 1.0 + np.arange(2)[None, :, None] + 10 * np.arange(3)[None, None, :]
    assert np.array_equal(got, np.broadcast_to(expect, (7, 2, 3)))
    assert sum(len(p) for p in comm.allgather(sink.local)) == len(units)


@pytest.mark.subprocess
def test_grouped_temperature_units_in_the_file(tmp_path):
    """A sweep of more than MAX_UNITS (δ, T) points is written in slabs of several T: the
    values land at the right temperatures (against a run of a few of those temperatures
    alone) and do not depend on the rank count (≤ 1e-12)."""
    from qgt_mpi.transport.stream import MAX_UNITS

    n_t = MAX_UNITS + 77
    temps = np.linspace(0.5, 30.0, n_t)
    assert max(u[1].stop - u[1].start for u in sweep_units(3, 1, n_t)) > 1
    def text(temperature) -> str:
        return deck_text(HALDANE, kgrid_table(12), sweep_table(temperature, [-0.4, 0.1, 0.9],
                                                               [0.05]))

    deck = tmp_path / "deck.toml"
    deck.write_text(text(span(0.5, 30.0, n_t)))
    picks = [0, 1, 2, 517, n_t - 1]
    few = tmp_path / "few.toml"
    few.write_text(text([float(temps[i]) for i in picks]))
    runs = {}
    for name, path, np_ in (("a", deck, 2), ("b", deck, 3), ("few", few, 1)):
        out = tmp_path / f"{name}.h5"
        proc = qgt(["run", str(path), "-o", str(out)], np=np_)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with h5py.File(out, "r") as f:
            runs[name] = {k: f["transport"][k][()] for k in TRANSPORT_KEYS}
    assert_same_results(runs["a"], runs["b"])
    assert_same_results(runs["few"], {k: v[:, :, picks] for k, v in runs["a"].items()})
