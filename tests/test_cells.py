"""Adaptive energy cells (transport/energy_cells.py, tree.py, evaluate.py) at materials scale.

The representation must reproduce the direct per-pair closed forms of theory §3 (w_pair,
y_pair) to 1e-10 relative for eV-wide bands and meV broadenings, with μ inside bands, in
gaps and far outside the spectrum; its size must grow only logarithmically with
bandwidth/(δ + πk_BT); bands sharing δ share one channel.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import binned_sums, direct_sums
from mpi4py import MPI

from qgt_mpi.geometry.bands import pair_products
from qgt_mpi.transport.binning import channels
from qgt_mpi.transport.energy_cells import EnergyLattice, accepted_ranges, encode, truncation_bound
from qgt_mpi.transport.tree import CellTree, shift_matrix


def _ev_model(nk=120, seed=5):
    """Random 5-band 'Wannier-like' batch: bands several eV wide with two gaps (meV)."""
    rng = np.random.default_rng(seed)
    windows = [(-6000, -2500), (-2400, -300), (-250, 1500), (1600, 4000), (4100, 9000)]
    eps = np.column_stack([rng.uniform(a, b, nk) for a, b in windows])
    eps[:6, 2] = eps[:6, 1] + 250 + rng.uniform(0, 1e-3, 6)  # (nearly) touching pairs are
    eps[:6, 1] = eps[:6, 2] - rng.uniform(0, 1e-3, 6)  # dealt with by the near series
    nb = eps.shape[1]
    v = rng.normal(size=(2, nk, nb, nb)) + 1j * rng.normal(size=(2, nk, nb, nb))
    v = 400 * (v + v.conj().swapaxes(-1, -2))
    return eps, pair_products(v)


@pytest.mark.parametrize("delta", [np.array([1.0, 1.0, 1.0, 1.0, 1.0]),
                                   np.array([0.5, 2.0, 2.0, 10.0, 0.5])])
def test_ev_wide_bands_match_direct_closed_forms(delta):
    """μ inside bands, in the gaps (−275, 1550 meV) and ±20 eV outside; T = 1 K and 300 K."""
    eps, prod = _ev_model()
    mu = np.array([-20000.0, -4000.0, -275.0, 10.0, 1550.0, 3000.0, 20000.0])
    temps = [1.0, 300.0]
    ref_s, ref_h = direct_sums(eps, prod, delta, mu, temps)
    got_s, got_h = binned_sums(eps, prod, delta, mu, temps)
    for a in range(3):
        for c in range(4):
            scale = np.abs(ref_s[a, c]).max()
            assert np.max(np.abs(got_s[a, c] - ref_s[a, c])) / scale < 1e-10, (a, c)
    # per point where the value is not a cancellation remainder of the scale
    big = np.abs(ref_s) > 1e-6 * np.abs(ref_s).max(axis=(2, 3), keepdims=True)
    assert np.max(np.abs(got_s - ref_s)[big] / np.abs(ref_s)[big]) < 1e-9
    assert np.max(np.abs(got_h - ref_h)) / np.abs(ref_h).max() < 1e-10


def test_cells_grow_logarithmically_with_bandwidth():
    """Leaves over a band of width W: O(log(W/R)/η) per μ, not W/(ηR)."""
    mu = np.array([-1.0, 0.0, 2.0])
    lat = EnergyLattice(mu, r_min=0.3)
    counts = []
    for width in (1e2, 1e4, 1e6):
        e = np.linspace(-width, width, 400_001)
        counts.append(np.unique(encode(*lat.leaves(e))).size)
    per_decade = 3 * 2 / lat.eta * np.log2(10) * 1.5  # 3 μ, two sides, 1/η cells per octave
    assert counts[1] - counts[0] < 2 * per_decade
    assert counts[2] - counts[1] < 2 * per_decade
    assert counts[2] < 1e-3 * 2e6 / lat.h  # far fewer than a uniform lattice


def test_every_leaf_is_used_exactly_once():
    """The Barnes–Hut cover of each μ partitions the leaves (any radius ≥ R_min)."""
    rng = np.random.default_rng(2)
    mu = np.sort(rng.uniform(-50, 50, 9))
    lat = EnergyLattice(mu, r_min=0.2)
    e = np.concatenate([rng.uniform(-3e3, 3e3, 3000), rng.normal(0, 30, 3000)])
    level, j = lat.leaves(e)
    keys, inv = np.unique(encode(level, j), return_inverse=True)
    data = np.zeros((keys.size, 1, 1, 1), complex)
    np.add.at(data[:, 0, 0, 0], inv, 1.0)  # moment 0 = number of energies per leaf
    tree = CellTree(lat, keys, data)
    for radius in (0.2, 3.0, 400.0):
        total = np.zeros(mu.size)
        for lev, (cj, cd) in enumerate(tree.levels):
            for lo, hi in accepted_ranges(lat, lev, lev == tree.top, mu, radius):
                for i in range(mu.size):
                    sel = (cj >= lo[i]) & (cj <= hi[i])
                    total[i] += cd[sel, 0, 0, 0].real.sum()
        assert np.all(total == e.size), (radius, total)


def test_recentring_composes_exactly():
    """Shifting by t then u equals shifting by t + u (truncated Toeplitz maps form a group)."""
    a, b = shift_matrix(0.3, 9), shift_matrix(-1.1, 9)
    assert np.allclose(a @ b, shift_matrix(-0.8, 9), rtol=1e-14, atol=1e-15)


def test_bands_sharing_delta_share_a_channel():
    delta = np.array([[1.0] * 64, [0.5] * 32 + [2.0] * 32])
    of, choice, value = channels(delta)
    assert value.tolist() == [1.0, 0.5, 2.0]
    assert choice.tolist() == [0, 1, 1]
    assert np.all(of[0] == 0) and np.all(of[1, :32] == 1) and np.all(of[1, 32:] == 2)


def test_truncation_bound_is_stated():
    assert truncation_bound() < 1e-12


@pytest.mark.mpi
def test_reduced_cells_do_not_depend_on_rank_count():
    """Each rank deposits its share; the reduced moments equal one rank's to 1e-12."""
    comm = MPI.COMM_WORLD
    eps, prod = _ev_model(nk=60)
    from qgt_mpi.transport.accumulate import TransportSums

    delta = np.array([[1.0] * 5])
    whole = TransportSums(np.array([1.0]), np.linspace(-300, 300, 5), delta)
    whole.add(eps, prod)
    ref_keys, ref, *_ = whole.moments.reduce(MPI.COMM_SELF)
    part = TransportSums(np.array([1.0]), np.linspace(-300, 300, 5), delta)
    sl = slice(comm.rank * 60 // comm.size, (comm.rank + 1) * 60 // comm.size)
    part.add(eps[sl], {k: v[sl] for k, v in prod.items()})
    keys, got, *_ = part.moments.reduce(comm)
    assert np.array_equal(keys, ref_keys)
    assert np.max(np.abs(got - ref)) <= 1e-12 * np.abs(ref).max()


def test_dry_run_estimates_cells_and_pairs_of_the_full_grid():
    """transport/estimate.py from a 16² sample vs the real 64² tree: within 30 %."""
    import math

    from qgt_mpi.models import haldane
    from qgt_mpi.models.lattice import kgrid_points
    from qgt_mpi.run.driver import compute
    from qgt_mpi.solvers.dense import DenseSolver
    from qgt_mpi.transport.estimate import expected_cells, expected_pairs
    from qgt_mpi.transport.evaluate import cover_pairs

    model = haldane(300.0, 30.0, 20.0, 1.2)
    mu, delta, temp = np.linspace(-900, 900, 61), 0.5, 2.0
    job, _, _ = compute(MPI.COMM_SELF, model, (64, 64), np.array([temp]), mu,
                        np.array([[delta, delta]]))
    tree = job.sums.reduce(MPI.COMM_SELF).tree
    radius = delta + math.pi * 8.617333262e-2 * temp
    real_cells = sum(j.size for j, _ in tree.levels)
    real_pairs = sum(r.size for _, r, _ in cover_pairs(tree, mu, radius))
    sample = DenseSolver().solve(model, kgrid_points(model.reciprocal, 16, 16, 0, 256)).energies
    lat = job.sums.lattice
    assert expected_cells(lat, sample, 64 * 64) == pytest.approx(real_cells, rel=0.3)
    assert expected_pairs(lat, sample, 64 * 64, mu, radius) == pytest.approx(real_pairs, rel=0.3)


def _assert_direct(eps, prod, delta, mu, temps) -> None:
    """Cells against the direct closed forms: ≤ 1e-10 of each component's scale."""
    ref_s, ref_h = direct_sums(eps, prod, delta, mu, temps)
    got_s, got_h = binned_sums(eps, prod, delta, mu, temps)
    scale = np.abs(ref_s).max(axis=(2, 3), keepdims=True)
    assert np.max(np.abs(got_s - ref_s) / scale) < 1e-10
    assert np.max(np.abs(got_h - ref_h)) / np.abs(ref_h).max() < 1e-10


def test_many_bands_in_sub_batches_match_direct(monkeypatch):
    """40 bands (1600 pairs per k) in weight sub-batches of 2 k-points vs direct closed forms."""
    import qgt_mpi.transport.accumulate as acc

    monkeypatch.setattr(acc, "_PAIR_ELEMENTS", 2 * 40 * 40)
    rng = np.random.default_rng(11)
    nk, nb = 24, 40
    eps = np.sort(rng.uniform(-3000, 3000, (nk, nb)), axis=1)
    v = rng.normal(size=(2, nk, nb, nb)) + 1j * rng.normal(size=(2, nk, nb, nb))
    prod = pair_products(100 * (v + v.conj().swapaxes(-1, -2)))
    delta = np.full(nb, 2.0)
    mu, temps = np.array([-1000.0, 15.0, 2900.0]), [5.0]
    _assert_direct(eps, prod, delta, mu, temps)


def test_flat_bands_are_point_masses_and_exact():
    """Two flat bands (energies equal to rounding on every k): evaluated as point masses
    (points.py), not through the tree, and equal to the direct closed forms to 1e-10 at μ
    inside, between and outside the bands, from 0.1 K to 300 K."""
    from qgt_mpi.transport.accumulate import TransportSums

    rng = np.random.default_rng(4)
    nk = 200
    eps = np.array([-0.25, 0.25])[None, :] * (1 + 1e-16 * rng.normal(size=(nk, 2)))
    v = rng.normal(size=(2, nk, 2, 2)) + 1j * rng.normal(size=(2, nk, 2, 2))
    prod = pair_products(v + v.conj().swapaxes(-1, -2))
    delta = np.array([0.01, 0.01])
    mu, temps = np.linspace(-0.5, 0.5, 11), [0.1, 3.0, 300.0]
    sums = TransportSums(np.asarray(temps), mu, delta[None])
    sums.add(eps, prod)
    reduced = sums.reduce(MPI.COMM_SELF)
    assert reduced.points[0][0].size == 2 and reduced.n_cells == 0
    assert reduced.points[0][1].shape[-1] <= 3  # orders 0..2 only
    _assert_direct(eps, prod, delta, mu, temps)


def test_dispersive_leaves_with_one_k_point_are_not_points():
    """A coarse grid of a dispersive band puts single k-points into leaves (zero spread):
    they stay in the tree (a point needs ≥ N_k/2 deposits), so the cost stays that of cells."""
    from qgt_mpi.transport.accumulate import TransportSums

    eps, prod = _ev_model(nk=50)
    sums = TransportSums(np.array([1.0]), np.array([0.0, 10.0]), np.array([[1.0] * 5]))
    sums.add(eps, prod)
    reduced = sums.reduce(MPI.COMM_SELF)
    assert all(p[0].size == 0 for p in reduced.points) and reduced.n_cells > 0


@pytest.mark.subprocess
@pytest.mark.parametrize("deck", ["hall_vs_mu", "haldane_flat", "fig3_thermoelectric"])
def test_dry_run_predicts_within_30_percent_of_a_real_run(tmp_path, deck):
    """`qgt-mpi dry-run --np 1` against the same deck run serially: memory per rank within
    30 %, CPU time within a factor 2 (the time of these small decks is mostly start-up, which
    the dry-run can only model; the issue-9 decks are compared in docs/performance.md §10);
    nothing is written."""
    import re
    import resource

    from runner import REPO, qgt

    src = REPO / "inputs" / f"{deck}.toml"
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = qgt(["dry-run", str(src), "--np", "1"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    est_t = float(re.search(r"= ([0-9.]+) s per run", proc.stdout).group(1))
    est_m = float(re.search(r"memory\s+~([0-9.]+) MiB", proc.stdout).group(1))
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # under mpirun: a fresh process (ru_maxrss survives fork + exec from the test process)
    run = qgt(["run", str(src), "-o", str(tmp_path / "out.h5")], np=1, timeout=600)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert run.returncode == 0, run.stderr
    import h5py

    with h5py.File(tmp_path / "out.h5", "r") as f:
        peak = float(f.attrs["peak_memory_MiB_max_over_ranks"])
    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    assert abs(est_m / peak - 1) <= 0.30, (est_m, peak)
    assert 0.5 <= est_t / cpu <= 2.0, (est_t, cpu)
