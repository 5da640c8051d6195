"""The symmetry accelerator (models/symmetry.py, models/kstars.py, solvers/images.py,
run/irreducible.py; theory §5.11).

Independent checks: every operation found keeps the spectrum (a dense diagonalisation at k
and W k); the stars cover the grid; the eigenpairs of an image equal a direct solve at the
image (energies, projectors, velocities, out-of-window metric and curvature); a wrong
operation is refused by the residual certificate and solved in full; whole runs with and
without the accelerator agree (σ, S, κ, Chern numbers, metric integrals); pool layouts and
rank counts agree; the deck key and the restart fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI
from mpi_util import assert_all

from qgt_mpi.models import build_model, haldane
from qgt_mpi.models.kstars import IrreducibleGrid, star_sizes
from qgt_mpi.models.lattice import kgrid_points
from qgt_mpi.models.symmetry import Operation, find_operations
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers.dense import DenseSolver
from qgt_mpi.solvers.images import SymmetryImages, summary
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

KEYS = ("sigma_xx", "sigma_xx_geometric", "sigma_xy", "seebeck", "kappa_xx")


@pytest.fixture(scope="module")
def tbg():
    """Relaxed atomistic TBG m = 3 (148 orbitals) with layer-dependent sublattice masses:
    isolated, non-degenerate bands near 0; C3 and time reversal, no layer-swap mirror."""
    return build_model("tbg_atomistic", {"m": 3, "mass": [20.0, 10.0],
                                         "relax": {"method": "continuum"}})


def _eigenvalues(model, k):
    h = model.hamiltonian(np.atleast_2d(k), False)[0][0]
    return np.linalg.eigvalsh(h)


@pytest.mark.parametrize("kind,params,count", [
    ("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.2}, 6),  # C3, mirrors × T
    ("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": 0.0}, 12),  # graphene-like: C6v
    ("tbg_atomistic", {"m": 2}, 12),  # rigid TBG: D3 × T
    ("tbg_atomistic", {"m": 2, "mass": [20.0, 10.0]}, 6),  # the masses break the layer swap
    ("tbg_atomistic", {"m": 3, "relax": {"method": "continuum"}}, 12),  # relaxed: D3 × T kept
])
def test_operations_keep_the_spectrum(kind, params, count):
    """Every operation found maps the spectrum at k onto that at W k (dense, independent of
    the permutation); the counts are those of the models' point groups."""
    model = build_model(kind, params)
    ops = find_operations(model)
    assert len(ops) == count and ops[0].label == "E" and not ops[0].antiunitary
    rng = np.random.default_rng(3)
    for _ in range(2):
        k = rng.uniform(-0.5, 0.5, 2) @ model.reciprocal
        ref = _eigenvalues(model, k)
        for op in ops:
            assert np.max(np.abs(_eigenvalues(model, op.w @ k) - ref)) < 1e-10 * np.abs(
                ref).max()


def test_stars_cover_the_grid():
    """Representatives and operations: op(rep) is each grid point modulo a reciprocal vector;
    the stars partition the grid; a 6×9 grid keeps only the operations that map it."""
    model = build_model("haldane", {"t1": 1.0, "t2": 0.3, "mass": 0.0, "phi": 0.0})
    ops = find_operations(model)
    grid = IrreducibleGrid(model.reciprocal, 12, 12, ops)
    assert len(grid.operations) == 12 and star_sizes(grid).sum() == 144
    assert grid.representatives.size < 144 / 6
    k = grid.points(np.arange(144))
    for p in range(144):
        op = grid.operations[grid.op[p]]
        g = (op.w @ k[grid.rep[p]] - k[p]) @ np.linalg.inv(model.reciprocal)
        assert np.allclose(g, np.rint(g), atol=1e-9)
    flat, inside = grid.locate(k + model.reciprocal[0])  # shifted by b1: same points
    assert inside.all() and np.array_equal(flat, np.arange(144))
    odd = IrreducibleGrid(model.reciprocal, 6, 9, ops)
    assert 1 < len(odd.operations) < 12 and star_sizes(odd).sum() == 54


def _images(model, inner, n):
    """A SymmetryImages over ``inner`` with every representative of the n×n grid cached."""
    acc = SymmetryImages(inner, find_operations(model))
    acc.grid = IrreducibleGrid(model.reciprocal, n, n, acc.operations)
    reps = acc.grid.representatives
    acc.store(model, reps, inner.solve(model, acc.grid.points(reps)))
    return acc


def _assert_same_eigenpairs(ref, got, tol):
    """Energies, band projectors (non-degenerate bands), band velocities, |v_nm|, and the
    out-of-window metric and curvature when present."""
    assert np.max(np.abs(got.energies - ref.energies)) < tol * np.abs(ref.energies).max()
    overlap = np.abs(np.einsum("kan,kan->kn", ref.vectors.conj(), got.vectors))
    assert np.max(np.abs(overlap - 1.0)) < 1e-9
    v_ref, v_got = ref.velocities, got.velocities
    scale = np.abs(v_ref).max()
    diag = np.einsum("iknn->ikn", v_ref).real, np.einsum("iknn->ikn", v_got).real
    assert np.max(np.abs(diag[0] - diag[1])) < tol * scale
    assert np.max(np.abs(np.abs(v_ref) - np.abs(v_got))) < tol * scale
    if ref.metric_out is not None:
        s = np.abs(ref.metric_out).max()
        assert np.max(np.abs(got.metric_out - ref.metric_out)) < 1e-8 * s
        assert np.max(np.abs(got.curvature_out - ref.curvature_out)) < 1e-8 * s


def test_images_equal_direct_solves_dense():
    """Haldane (φ = 1.2, 6 operations): every point of a 9×9 grid from its representative
    equals the dense solve there."""
    model = haldane(1.0, 0.3, 0.2, 1.2)
    acc = _images(model, DenseSolver(), 9)
    k = kgrid_points(model.reciprocal, 9, 9, 0, 81)
    got, ref = acc.solve(model, k), DenseSolver().solve(model, k)
    assert acc.report.images == 81 and acc.report.full == 0 and acc.report.refused == 0
    _assert_same_eigenpairs(ref, got, 1e-12)


def test_images_equal_direct_solves_window(tbg):
    """Relaxed TBG m = 3, SLEPc window of 4 bands at 0 with the out-of-window metric
    (Sternheimer, theory §5.4): images equal the window solves at the image points."""
    inner = SlepcSolver(WindowOptions(nev=4, target=0.0), MPI.COMM_SELF)
    acc = _images(tbg, inner, 6)
    k = kgrid_points(tbg.reciprocal, 6, 6, 0, 36)
    got = acc.solve(tbg, k)
    ref = SlepcSolver(WindowOptions(nev=4, target=0.0), MPI.COMM_SELF).solve(tbg, k)
    assert acc.report.images == 36 and acc.report.max_ratio <= 1.0
    _assert_same_eigenpairs(ref, got, 1e-9)


def test_certificate_refuses_a_wrong_operation():
    """Operations that are not symmetries (the true k-maps with the sublattices swapped, which
    flips the mass and the Haldane flux) give residuals far above the representative's: those
    images are solved in full, and every result equals the direct solve."""
    model = haldane(1.0, 0.3, 0.2, 1.2)
    good = find_operations(model)
    swap = np.arange(model.norb)[::-1].copy()
    bad = [good[0]] + [Operation(o.w, o.m, swap, o.antiunitary, "bad") for o in good[1:]]
    acc = SymmetryImages(DenseSolver(), bad)
    acc.grid = IrreducibleGrid(model.reciprocal, 6, 6, acc.operations)
    reps = acc.grid.representatives
    acc.store(model, reps, DenseSolver().solve(model, acc.grid.points(reps)))
    k = kgrid_points(model.reciprocal, 6, 6, 0, 36)
    got, ref = acc.solve(model, k), DenseSolver().solve(model, k)
    assert acc.report.refused > 0 and acc.report.full == acc.report.refused
    assert acc.report.images + acc.report.full == 36
    _assert_same_eigenpairs(ref, got, 1e-12)


def _run(comm, model, solver, grid, window=None, delta=0.05, mus=(-0.5, 0.0, 0.5)):
    nb = solver.bands(model)
    return compute(comm, model, grid, np.array([1.0, 10.0]), np.array(mus),
                   np.full((1, nb), delta), solver=solver, window=window, chunk=9)[1:]


def _scale(tr, key):
    """The scale a transport difference is judged against: the tensor's own largest value
    (σ_xy, zero by time reversal in TBG, against σ_xx: the conductivity tensor's scale)."""
    own = float(np.max(np.abs(tr[key])))
    return max(own, float(np.max(np.abs(tr["sigma_xx"])))) if key == "sigma_xy" else own


def _assert_runs_agree(a, b, tol):
    (tr_a, geo_a), (tr_b, geo_b) = a, b
    for key in KEYS:
        rel = np.max(np.abs(tr_b[key] - tr_a[key])) / _scale(tr_a, key)
        assert rel < tol, (key, rel)
    assert np.array_equal(geo_a["chern_groups"], geo_b["chern_groups"])
    compared = 0
    for key, value in geo_a.items():  # every numeric geometry array: metric integrals (band,
        try:  # group, out-of-window), curvature integrals, gaps, band ranges ...
            x, y = np.asarray(value, dtype=float), np.asarray(geo_b[key], dtype=float)
        except (TypeError, ValueError):
            continue
        if "max_flux" in key:  # the largest plaquette phase: gauge-invariant but near ±π
            continue
        assert np.array_equal(np.isnan(x), np.isnan(y)), key
        if np.any(np.isfinite(x)):
            scale = max(np.nanmax(np.abs(x)), 1.0 if "chern" in key else 1e-300)  # C: O(1)
            assert np.nanmax(np.abs(x - y)) <= tol * scale, (key, np.nanmax(np.abs(x - y)))
            compared += 1
    assert compared >= 5


def test_run_matches_full_run_dense():
    """Haldane 12×12 (φ = 1.2, C = ±1): the k-pass through images equals the plain one."""
    model = haldane(1.0, 0.3, 0.2, 1.2)
    acc = SymmetryImages(DenseSolver(), find_operations(model))
    plain = _run(MPI.COMM_SELF, model, DenseSolver(), (12, 12))
    fast = _run(MPI.COMM_SELF, model, acc, (12, 12))
    _assert_runs_agree(plain, fast, 1e-12)
    assert abs(abs(plain[1]["chern_groups"][0]) - 1) < 1e-9
    facts = summary(MPI.COMM_SELF, acc)
    assert facts["symmetry_image_kpoints"] > 0 and facts["symmetry_representatives"] < 144 / 4


def test_run_matches_full_run_window(tbg):
    """Relaxed TBG m = 3, window of 4 bands: σ, S, κ and the metric integrals (out-of-window
    part included) within 1e-7 of their scale (the plain run solves every k to the SLEPc
    tolerance 1e-10, so its Hall parts, zero by time reversal, are ~1e-9 of σ_xx; the issue
    asks 1e-6), Chern numbers equal."""
    window = {"delta_out": np.array([0.5]), "chern_below": 0}
    opts = WindowOptions(nev=4, target=0.0)
    plain = _run(MPI.COMM_SELF, tbg, SlepcSolver(opts, MPI.COMM_SELF), (6, 6), window, 0.5,
                 (-20.0, 0.0, 20.0))
    acc = SymmetryImages(SlepcSolver(opts, MPI.COMM_SELF), find_operations(tbg))
    fast = _run(MPI.COMM_SELF, tbg, acc, (6, 6), window, 0.5, (-20.0, 0.0, 20.0))
    _assert_runs_agree(plain, fast, 1e-7)
    assert summary(MPI.COMM_SELF, acc)["symmetry_representatives"] < 36 / 4


@pytest.mark.mpi
def test_ranks_and_pools_agree(comm, tbg):
    """Pools of one rank and one pool of all ranks: the same sums as one rank (1e-12 and
    1e-10), because every representative is solved once, by whichever pool."""
    window = {"delta_out": np.array([0.5]), "chern_below": 0}
    opts = WindowOptions(nev=4, target=0.0)
    serial = SymmetryImages(SlepcSolver(opts, MPI.COMM_SELF), find_operations(tbg))
    ref = _run(MPI.COMM_SELF, tbg, serial, (6, 6), window, 0.5, (-20.0, 0.0, 20.0))
    for per_pool, tol in sorted({(1, 1e-12), (comm.size, 1e-10)}):
        pool = comm.Split(color=comm.rank // per_pool, key=comm.rank)
        acc = SymmetryImages(SlepcSolver(opts, pool), find_operations(tbg))
        got = _run(comm, tbg, acc, (6, 6), window, 0.5, (-20.0, 0.0, 20.0))
        pool.Free()
        worst = max(float(np.max(np.abs(got[0][k] - ref[0][k])) / _scale(ref[0], k))
                    for k in KEYS)
        assert_all(comm, worst < tol, f"{per_pool} rank(s) per pool: differs by {worst:.3g}")
        assert_all(comm, np.array_equal(got[1]["chern_groups"], ref[1]["chern_groups"]),
                   "Chern numbers differ")


def test_deck_key_and_fingerprint():
    """accelerate = "symmetry" is accepted for dense and window solvers; it is part of the
    restart fingerprint (a plain checkpoint is not continued by a symmetric run)."""
    from dataclasses import replace

    from qgt_mpi.io.checkpoint import fingerprint
    from qgt_mpi.io.checks import Table
    from qgt_mpi.io.deck import load_deck
    from qgt_mpi.io.deck_solver import parse_solver

    def spec(**solver):
        return parse_solver(Table({"solver": solver}, "", {"solver"}, {}))

    assert spec(kind="dense", accelerate="symmetry").accelerate == "symmetry"
    assert spec(kind="slepc", nev=4, target=0.0, accelerate="symmetry").accelerate == "symmetry"
    deck = Path(__file__).resolve().parent.parent / "inputs" / "supercell_window.toml"
    config = load_deck(str(deck))
    fast = replace(config, solver=replace(config.solver, accelerate="symmetry"))
    assert "symmetry" in fingerprint(fast, hash_files=False)["solver.accelerate"]


def test_stop_signal_during_the_prepass(tmp_path):
    """A stop request seen at a pre-pass round boundary stops the run with status 3 (nothing
    of the pre-pass is kept; the k-pass had not started)."""
    import logging

    from qgt_mpi.parallel import CollectiveError, Timers
    from qgt_mpi.parallel.signals import StopFlag
    from qgt_mpi.run.irreducible import prepare_images
    from qgt_mpi.run.setup import make_job
    from qgt_mpi.status import EXIT_INTERRUPTED

    model = haldane(1.0, 0.3, 0.2, 1.2)
    acc = SymmetryImages(DenseSolver(), find_operations(model))
    job = make_job(MPI.COMM_SELF, model, (24, 24), np.array([1.0]), np.array([0.0]),
                   np.full((1, 2), 0.05), 48, False, acc, None, None)
    stop = StopFlag()
    stop.name = "SIGTERM"
    with pytest.raises(CollectiveError) as err:
        prepare_images(MPI.COMM_SELF, job, list(range(job.n_blocks)), Timers(),
                       logging.getLogger("test"), 100.0, stop)
    assert err.value.status == EXIT_INTERRUPTED and "pre-pass" in str(err.value)


def _haldane_deck(tmp_path, acc: str, n: int = 96):
    from decks import HALDANE, deck_text, kgrid_table, span, sweep_table, table

    path = tmp_path / f"deck_{acc}.toml"
    path.write_text(deck_text(HALDANE, kgrid_table(n),
                              sweep_table([1.0, 10.0], span(-3.0, 3.0, 13), [0.05]),
                              table("solver", accelerate=acc),
                              table("output", kresolved=True),
                              table("run", chunk=96, progress_percent=2)))
    return path


@pytest.mark.subprocess
def test_injected_failure_in_the_prepass_stops_all_ranks(tmp_path):
    """QGT_TEST_FAIL=kpass:1 fires in the pre-pass of a symmetric run under mpirun -n 3:
    status 1, one line, no file."""
    from runner import qgt

    out = tmp_path / "out.h5"
    proc = qgt(["run", str(_haldane_deck(tmp_path, "symmetry", 24)), "-o", str(out)], np=3,
               timeout=90, env={"QGT_TEST_FAIL": "kpass:1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "injected failure in phase 'kpass' on rank 1" in lines[0]
    assert not out.exists() and not Path(str(out) + ".partial").exists()


@pytest.mark.subprocess
def test_interrupted_symmetric_run_resumes_and_equals_the_plain_run(tmp_path):
    """SIGTERM to every rank of a symmetric run under -n 3 during its k-pass, resumed under
    -n 2 (its pre-pass then solves only the stars of the blocks left): every output equals the
    plain run's (every k solved) to 1e-12."""
    import os
    import signal

    import h5py
    from helpers import assert_same_results
    from runner import qgt, rank_pids, start

    def read(path):
        with h5py.File(path, "r") as f:
            out = {k: f["transport"][k][()] for k in KEYS}
            out.update({k: f["kgrid"][k][()] for k in ("energies", "metric")})
            out["chern"] = f["geometry/chern"][()]
            return out

    ref = tmp_path / "plain.h5"
    assert qgt(["run", str(_haldane_deck(tmp_path, "none")), "-o", str(ref)],
               np=2).returncode == 0
    deck, out = _haldane_deck(tmp_path, "symmetry"), tmp_path / "out.h5"
    proc = start(["run", str(deck), "-o", str(out), "--checkpoint-interval", "0"], 3)
    seen = 0
    for line in proc.stdout:
        seen += "k-pass" in line and "%" in line
        if seen >= 3:
            break
    for pid in rank_pids(str(out)):
        os.kill(pid, signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=120) == 3
    resumed = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from checkpoint" in resumed.stdout
    assert "symmetry accelerator" in resumed.stdout
    assert "of them stored by an earlier run" in resumed.stdout  # not solved again
    assert not Path(str(out) + ".checkpoint.symmetry").exists()  # removed with the checkpoint
    got, want = read(out), read(ref)
    assert np.array_equal(got["chern"], want["chern"])
    for key in ("energies", "metric"):
        assert np.max(np.abs(got[key] - want[key])) < 1e-12 * np.max(np.abs(want[key]))
    assert_same_results({k: want[k] for k in KEYS}, {k: got[k] for k in KEYS})


class _StopAfter:
    """A stop flag that turns on at its (n+1)-th look: the pre-pass looks once per round,
    after the round's chunk is solved and stored, so n + 1 chunks are kept."""

    def __init__(self, n: int) -> None:
        self.n, self.name = n, "SIGTERM"

    def __bool__(self) -> bool:
        self.n -= 1
        return self.n < 0


def test_prepass_store_survives_a_stop(tmp_path):
    """A pre-pass stopped at its third round boundary keeps those 3 chunks on disk; the
    rerun reads them (bit-identical eigenpairs) and solves only the rest; a changed input is
    refused; the store is removed with the checkpoint's files only."""
    import logging

    from qgt_mpi.parallel import CollectiveError, Timers
    from qgt_mpi.run.irreducible import PREPASS_CHUNK, prepare_images
    from qgt_mpi.run.irreducible_store import remove_store
    from qgt_mpi.run.setup import make_job
    from qgt_mpi.status import EXIT_INTERRUPTED

    model = haldane(1.0, 0.3, 0.2, 1.2)
    store, fp = str(tmp_path / "out.checkpoint.symmetry"), {"model.kind": "haldane"}

    def job():
        acc = SymmetryImages(DenseSolver(), find_operations(model))
        return make_job(MPI.COMM_SELF, model, (24, 24), np.array([1.0]), np.array([0.0]),
                        np.full((1, 2), 0.05), 48, False, acc, None, None)

    def prepass(j, stop=None, fingerprint=fp):
        prepare_images(MPI.COMM_SELF, j, list(range(j.n_blocks)), Timers(),
                       logging.getLogger("test"), 100.0, stop, store, fingerprint)

    first = job()
    with pytest.raises(CollectiveError) as err:
        prepass(first, _StopAfter(2))
    assert err.value.status == EXIT_INTERRUPTED and store in str(err.value)
    files = sorted(p.name for p in Path(store).iterdir())
    assert files[0] == "fingerprint.json" and len(files) == 4
    second, fresh = job(), job()
    prepass(second)
    prepare_images(MPI.COMM_SELF, fresh, list(range(fresh.n_blocks)), Timers(),
                   logging.getLogger("test"), 100.0)
    assert second.solver.report.representatives == len(second.solver.cache) - 3 * PREPASS_CHUNK
    for p, (eig, res) in fresh.solver.cache.items():
        got, got_res = second.solver.cache[p]
        assert np.array_equal(got.energies, eig.energies)
        assert np.array_equal(got.vectors, eig.vectors)
        assert np.array_equal(got.velocities, eig.velocities)
        assert np.array_equal(got_res, res)
    with pytest.raises(CollectiveError, match="input changed"):
        prepass(job(), fingerprint={"model.kind": "haldane", "kgrid.size": "[25, 25]"})
    (Path(store) / "notes.txt").write_text("a user's file")
    remove_store(store)
    assert sorted(p.name for p in Path(store).iterdir()) == ["notes.txt"]


def test_later_phases_solve_each_missing_representative_once():
    """A request for grid points whose representatives no cache holds (the valley phase, link
    corners on another rank) solves each representative once and images the rest; without
    velocities they go to the vectors-only cache; all equal direct solves."""
    model = haldane(1.0, 0.3, 0.2, 1.2)
    acc = SymmetryImages(DenseSolver(), find_operations(model))
    acc.grid = IrreducibleGrid(model.reciprocal, 9, 9, acc.operations)
    k = kgrid_points(model.reciprocal, 9, 9, 0, 81)
    got = acc.solve(model, k, velocities=False)
    assert acc.report.full == acc.grid.representatives.size and not acc.cache
    assert len(acc.cache_vectors) == acc.grid.representatives.size
    ref = DenseSolver().solve(model, k, velocities=False)
    assert got.velocities is None
    assert np.max(np.abs(got.energies - ref.energies)) < 1e-12
    overlap = np.abs(np.einsum("kan,kan->kn", ref.vectors.conj(), got.vectors))
    assert np.max(np.abs(overlap - 1.0)) < 1e-12
    again = acc.solve(model, k, velocities=True)  # velocities: solved again, into the cache
    assert len(acc.cache) == acc.grid.representatives.size
    _assert_same_eigenpairs(DenseSolver().solve(model, k), again, 1e-12)
