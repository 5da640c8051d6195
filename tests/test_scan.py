"""qgt_mpi.scan (src/qgt_mpi/param_scan.py): a model key over many values in one job.

Each value's result must be the one-rank ``compute`` result bit for bit (serially and under
mpirun -n 2, 3: the values are dealt to the ranks), the stacked quantities must carry the
scanned axis, and a bad argument or a failing value must raise the same error on every
rank instead of leaving one waiting.
"""

from __future__ import annotations

import numpy as np
import pytest
from decks import HALDANE_PARAMS
from mpi4py import MPI
from mpi_util import assert_all

import qgt_mpi as q

BASE = {k: v for k, v in HALDANE_PARAMS.items() if k != "mass"}
MASSES = [0.0, 0.2, 0.5]
SETTINGS = {"kgrid": (6, 6), "temperature": [1.0, 3.0], "mu": [-0.5, 0.0, 0.5],
            "delta": [0.05]}


def _serial(mass: float):
    return q.compute(q.deck_model("haldane", **BASE, mass=mass), comm=MPI.COMM_SELF, **SETTINGS)


@pytest.mark.mpi
def test_scan_equals_one_rank_computes(comm, tmp_path_shared):
    """On 1, 2 or 3 ranks every value's arrays equal the serial compute exactly; the files
    written by ``save=`` are the same results; ``stack`` adds the scanned axis."""
    out = tmp_path_shared
    res = q.scan("haldane", "mass", MASSES, model=BASE, comm=comm,
                 save=str(out / "m_{index}.h5"), **SETTINGS)
    ok, msg = len(res) == 3 and res.values.tolist() == MASSES, "values"
    for i, mass in enumerate(MASSES):
        ref = _serial(mass)
        for key in ("sigma_xx", "sigma_xy", "kappa_xx", "chern"):
            if not np.array_equal(np.asarray(getattr(res[i], key)), np.asarray(getattr(ref, key))):
                ok, msg = False, f"value {mass}: {key} differs on rank {comm.rank}"
        back = q.load(str(out / f"m_{i}.h5"))
        if not np.array_equal(np.asarray(back.sigma_xy), np.asarray(ref.sigma_xy)):
            ok, msg = False, f"file {i} differs"
    sxy = res.stack("sigma_xy")
    ok = ok and sxy.dims == ("mass", "mu", "delta", "temperature") and sxy.shape == (3, 3, 1, 2)
    ok = ok and res.stack("bandwidth").shape == (3, 2) and res.seconds.shape == (3,)
    assert_all(comm, ok, msg or "stack")


@pytest.mark.mpi
def test_scan_errors_reach_every_rank(comm):
    """A value that fails on its rank only (the last one, dealt to rank 2 mod size) and bad
    arguments raise on every rank; nothing hangs."""
    for values, model, extra, text in (
            ([0.0, 0.1, "heavy"], BASE, {}, "mass"),
            ([0.1], {**BASE, "mass": 0.1}, {}, "scanned key"),
            ([0.1], BASE, {"pools": 1}, "deals its values"),
            ([], BASE, {}, "at least one value"),
            ([0.1], BASE, {"save": "x_{nope}.h5"}, "format string")):
        try:
            q.scan("haldane", "mass", values, model=model, comm=comm, **SETTINGS, **extra)
            ok, msg = False, f"no error for {values}, {extra}"
        except Exception as exc:  # every rank must get here
            ok, msg = text in str(exc), f"{text!r} not in {exc}"
        assert_all(comm, ok, msg)
    if comm.size == 1:
        return
    last = comm.rank == comm.size - 1  # rank-dependent arguments: different, or bad on one
    for values, text in (([0.1, 0.3 if last else 0.2], "every rank must pass"),
                         ([] if last else [0.1], "at least one value")):
        try:
            q.scan("haldane", "mass", values, model=BASE, comm=comm, **SETTINGS)
            ok, msg = False, f"no error for rank-dependent {values}"
        except Exception as exc:
            ok, msg = (text in str(exc)) if last or "every" in text else True, str(exc)
        assert_all(comm, ok, msg)
