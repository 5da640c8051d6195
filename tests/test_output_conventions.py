"""The result file read as netCDF: every group through xarray (h5netcdf engine).

A real 2-rank run (k-resolved fields and the superfluid group included) is opened group by
group; every variable must carry long_name and units (labels excepted), every dimension
must be a coordinate variable (no phony dimensions), and the dims must be those of the
table in qgt_mpi.io.conventions. A default-file trap is built in: n_mu equals
n_bands, which made xarray label delta as (delta_index, mu) before the band axis existed.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from decks import HALDANE, deck_text, kgrid_table, sweep_table, table
from runner import qgt

from qgt_mpi.io import conventions
from qgt_mpi.io.writer import grid_pieces

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

DECK = deck_text(HALDANE, table("model.flatten", gap=0.5), kgrid_table(7, 5),
                 sweep_table([1.0, 2.0, 4.0], [-0.25, 0.0],
                             [[0.01, 0.02], [0.03, 0.03], [0.05, 0.01]]),
                 table("superfluid", U=0.1, filling=0.5, band=0, temperature=[0.01, 0.1]),
                 table("output", file="conv.h5", kresolved=True), table("run", chunk=4),
                 title="conventions")
# Units a UDUNITS-2 parser accepts (checked by hand against its grammar: SI prefixes,
# products with spaces, powers as integers, a numeric scale factor in front).
UDUNITS = {"1", "K", "meV", "s", "uV/K", conventions.E2_OVER_H, conventions.KAPPA_OVER_T,
           conventions.DS_UNIT, conventions.ALPHA_UNIT}


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("conv")
    deck = tmp / "conv.toml"
    deck.write_text(DECK)
    out = tmp / "conv.h5"
    run = qgt(["run", str(deck), "-o", str(out)], np=2)
    assert run.returncode == 0, run.stderr
    return str(out)


def _groups(path: str) -> list[str]:
    with h5py.File(path, "r") as f:
        return [name for name in f if isinstance(f[name], h5py.Group)]


@pytest.mark.subprocess
def test_every_group_opens_with_named_dims_and_metadata(result):
    groups = _groups(result)
    assert {"transport", "kgrid", "geometry", "bands", "timing", "superfluid"} <= set(groups)
    for group in groups:
        ds = xr.open_dataset(result, engine="h5netcdf", group=group)
        for name, var in ds.variables.items():
            where = f"/{group}/{name}"
            assert not any(d.startswith("phony_dim") for d in var.dims), where
            assert all(d in ds.coords for d in var.dims), where
            assert var.attrs.get("long_name"), where
            if var.dtype.kind not in "SUO":
                assert var.attrs.get("units") in UDUNITS, (where, var.attrs.get("units"))
            entry = conventions.VARIABLES.get(f"{group}/{name}")
            if entry is not None:
                assert var.dims == entry.dims, where
            else:  # a created coordinate variable
                assert var.dims == (name,), where
        ds.close()


@pytest.mark.subprocess
def test_axes_carry_their_values(result):
    tr = xr.open_dataset(result, engine="h5netcdf", group="transport")
    assert tr["delta"].dims == ("delta_index", "band")
    assert tr.sizes["mu"] == tr.sizes["band"] == 2  # the case xarray used to mislabel
    np.testing.assert_allclose(tr["delta"].values, [[0.01, 0.02], [0.03, 0.03], [0.05, 0.01]])
    np.testing.assert_allclose(tr["mu"].values, [-0.25, 0.0])
    np.testing.assert_allclose(tr["temperature"].values, [1.0, 2.0, 4.0])
    assert tr["sigma_xy"].dims == ("mu", "delta_index", "temperature")
    assert "sign_convention" in tr["sigma_xy"].attrs
    # selection by value picks the same numbers as positional indexing of the raw file
    picked = tr["sigma_xy"].sel(mu=0.0, temperature=2.0).values
    with h5py.File(result, "r") as f:
        np.testing.assert_array_equal(picked, f["transport/sigma_xy"][1, :, 1])
    kg = xr.open_dataset(result, engine="h5netcdf", group="kgrid")
    assert kg["energies"].dims == ("k1", "k2", "band") and kg["energies"].shape == (7, 5, 2)
    frac = kg["k_frac"].values
    np.testing.assert_allclose(frac[..., 0], kg["k1"].values[:, None] + 0 * frac[..., 1])
    np.testing.assert_allclose(frac[..., 1], kg["k2"].values[None, :] + 0 * frac[..., 0])
    assert kg["berry_curvature"].attrs["units"] == "1"  # lattice units: spelt out instead
    assert "a^2" in kg["berry_curvature"].attrs["long_name"]
    tr.close()
    kg.close()


@pytest.mark.parametrize("n2, start, stop", [(5, 0, 35), (5, 3, 4), (5, 3, 17), (5, 10, 20),
                                              (1, 2, 6), (7, 6, 8), (4, 5, 5)])
def test_grid_pieces_cover_a_flat_range_once(n2, start, stop):
    seen = np.zeros(40, dtype=int)
    flat = np.arange(40).reshape(-1, n2) if 40 % n2 == 0 else np.arange(35).reshape(-1, n2)
    for (rows, cols), lo, hi in grid_pieces(n2, start, stop):
        block = flat[rows, cols].ravel()
        np.testing.assert_array_equal(block, np.arange(lo, hi))
        seen[block] += 1
    assert len(grid_pieces(n2, start, stop)) <= 3
    np.testing.assert_array_equal(seen[start:stop], 1)
    assert seen.sum() == stop - start


def test_length_unit_of_a_moire_model_is_udunits():
    assert conventions.resolve_units("L2", "Omega", "nm") == ("nm2", "Omega")
    assert conventions.resolve_units("L-1", "k", "nm") == ("nm-1", "k")
    units, name = conventions.resolve_units("L2", "Omega", "a")
    assert units == "1" and "a^2" in name


def test_a_misfit_table_entry_does_not_fail_the_write(tmp_path):
    """A dataset whose shape does not fit its table dims is written without scales."""
    from mpi4py import MPI

    from qgt_mpi.io import writer

    result = writer.ResultFile(
        attrs={"program": "qgt_mpi"},
        groups={"bands": {"bandwidth": (np.ones((2, 3)), {}), "min": (np.zeros(2), {})}})
    path = str(tmp_path / "misfit.h5")
    writer.write(MPI.COMM_SELF, path, result)
    with h5py.File(path, "r") as f:
        assert f["bands/bandwidth"].attrs["units"] == "meV"  # metadata still set
        assert len(f["bands/bandwidth"].dims[0]) == 0  # no scale on the misfit axis
        assert f["bands/min"].dims[0][0].name == "/bands/band"
