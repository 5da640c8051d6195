"""Memory estimate against the measured peak, and the up-front refusal."""

from __future__ import annotations

import h5py
import pytest
from decks import HALDANE, deck_text, kgrid_table, span, sweep_table, table
from runner import REPO, qgt

from qgt_mpi.run import memory


def _big_sweep(nt: int, nmu: int) -> str:
    """The flattened Haldane model on 12×12 with nt temperatures × nmu chemical potentials."""
    return deck_text(HALDANE, table("model.flatten", gap=0.5), kgrid_table(12),
                     sweep_table(span(0.1, 30.0, nt, "log"), span(-0.5, 0.5, nmu), [0.01]),
                     table("output", kresolved=False))


def test_estimate_parts_scale_as_counted():
    """The parts grow with what they count: sweep points (up to one unit), k-points of a
    block, cells."""
    kw = dict(base=70.0, norb=2, nbands=2, chunk=4096, k_max=10_000, n_points=1000,
              cells=1000.0, n_channels=1, n_occ=2, kresolved=True)
    one = memory.estimate_mib(**kw)
    two = memory.estimate_mib(**{**kw, "n_points": 2000, "chunk": 8192, "cells": 2000.0})
    assert two["sweep"] == pytest.approx(2 * one["sweep"])
    assert two["k-pass"] == pytest.approx(2 * one["k-pass"])
    assert two["cells"] == pytest.approx(2 * one["cells"])
    huge = memory.estimate_mib(**{**kw, "n_points": 10**12})
    assert huge["sweep"] < 50.0  # streamed: one unit in memory, not the sweep
    assert one["total"] == pytest.approx(sum(v for k, v in one.items() if k != "total"))
    assert memory.refusal(one, 2, 1e9) is None
    assert "kgrid.size" in memory.refusal(one, 2, 10.0)


@pytest.mark.subprocess
@pytest.mark.parametrize("deck", ["hall_vs_mu", "geometry_maps", "big_sweep"])
def test_estimate_within_30_percent_of_measured_peak(tmp_path, deck):
    """Measured peak RSS (max over 2 ranks) against the estimate the run stored."""
    if deck == "big_sweep":  # 10⁵ sweep points: the sweep part is ~45 % of the base
        path = tmp_path / "big.toml"
        path.write_text(_big_sweep(400, 250))
    else:
        path = REPO / "inputs" / f"{deck}.toml"
    out = tmp_path / "out.h5"
    proc = qgt(["run", str(path), "-o", str(out)], np=2, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        peak = f.attrs["peak_memory_MiB_max_over_ranks"]
        est = f.attrs["memory_estimate_MiB_per_rank"]
    print(f"{deck}: estimate {est:.1f} MiB, measured peak {peak:.1f} MiB")
    assert abs(est / peak - 1) <= 0.30, (est, peak)


@pytest.mark.subprocess
def test_run_that_cannot_fit_is_refused_up_front(tmp_path):
    """10¹⁴ sweep points: refused before the k-pass (the streamed file cannot fit on the
    disk), status 2, one line, no file."""
    path = tmp_path / "huge.toml"
    path.write_text(_big_sweep(10_000_000, 10_000_000))
    out = tmp_path / "out.h5"
    proc = qgt(["run", str(path), "-o", str(out)], np=2, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("qgt-mpi: input error: sweep = ") and "GiB" in lines[0]
    assert "k-pass" not in proc.stdout and sorted(p.name for p in tmp_path.iterdir()) == [
        "huge.toml"]
