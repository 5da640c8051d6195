"""Exactly flattened bands as a solver decorator (solvers/flat.py, theory §2.3).

Independent check: flattening the dense Haldane solve to ±Δ/2 must reproduce the exactly
flattened model H_flat(k) = U diag(E) U† of models/flatten.py, which builds and diagonalises
a different Hamiltonian.
"""

from __future__ import annotations

import numpy as np
import pytest
from decks import HALDANE_T, deck_text, kgrid_table, sweep_table, table
from mpi4py import MPI

from qgt_mpi.io.deck import InputError, parse_deck
from qgt_mpi.models import build_model, haldane
from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.run.driver import compute
from qgt_mpi.solvers import DenseSolver
from qgt_mpi.solvers.flat import FlatBands
from qgt_mpi.solvers.slepc import SlepcSolver, WindowOptions

GAP = 0.5
PARAMS = {"t1": 1.0, "t2": 0.3, "mass": 0.2, "phi": 1.3}


def _run(model, solver=None, nb=2, window=None):
    return compute(MPI.COMM_SELF, model, (12, 12), np.array([0.5, 3.0]),
                   np.linspace(-0.4, 0.4, 5), np.full((1, nb), 0.01), solver=solver,
                   window=window)[1:]


def test_flat_decorator_equals_the_exactly_flattened_model():
    tr_ref, geo_ref = _run(build_model("haldane", PARAMS, {"gap": GAP, "range": np.inf,
                                                           "nfine": 24}))
    tr, geo = _run(haldane(**PARAMS), FlatBands(DenseSolver(), [-GAP / 2, GAP / 2]))
    for key in ("sigma_xx", "sigma_xx_geometric", "sigma_xy", "seebeck", "kappa_xx"):
        scale = np.max(np.abs(tr_ref[key]))
        assert np.max(np.abs(tr[key] - tr_ref[key])) < 1e-9 * scale, key
    assert np.max(np.abs(tr["sigma_xx_drude"])) < 1e-25  # flat bands: no Drude term
    assert np.array_equal(geo["chern_groups"], geo_ref["chern_groups"])
    assert np.max(np.abs(geo["metric_integral"] - geo_ref["metric_integral"])) < 1e-12


def test_flattened_window_keeps_the_geometry_of_the_bm_flat_bands():
    """TBG's flat bands made exactly flat: geometry (incl. out of window) unchanged, no Drude."""
    model = bm_continuum(theta=1.05, w0=88.0, w1=110.0, shells=3, valley=1, mass=10.0)
    window = {"delta_out": np.array([0.01]), "chern_below": 0}
    opts = WindowOptions(nev=2, target=0.0)
    geo_d = _run(model, SlepcSolver(opts, MPI.COMM_SELF), window=window)[1]
    tr, geo = _run(model, FlatBands(SlepcSolver(opts, MPI.COMM_SELF), [-1.0, 1.0]),
                   window=window)
    assert np.max(np.abs(geo["metric_integral"] - geo_d["metric_integral"])) < 1e-12
    assert np.array_equal(geo["chern_groups"], geo_d["chern_groups"])
    assert np.max(np.abs(tr["sigma_xx_drude"])) < 1e-25
    assert np.all(geo["bandwidth"] == 0.0)


def test_flatten_needs_one_energy_per_band():
    deck = deck_text(HALDANE_T, kgrid_table(4), sweep_table())
    assert parse_deck(deck + table("solver", flatten=[-0.25, 0.25])).solver.flatten == (
        -0.25, 0.25)
    with pytest.raises(InputError) as err:
        parse_deck(deck + table("solver", flatten=0.5))
    assert err.value.key == "solver.flatten"
    with pytest.raises(ValueError, match="needs 2 energies"):
        FlatBands(DenseSolver(), [0.0]).check(haldane(**PARAMS))
