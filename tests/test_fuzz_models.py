"""Property-based fuzz of the other doors: model files, Wannier90 hr files, API arguments.

Each generated input must give either a valid result (a model whose hoppings are finite and
within the documented ranges, H(k) Hermitian; a Result with finite σ) or one one-line error
of the documented kinds (ModelFileError / InputError): never another exception, never a
silently out-of-range model. (tests/test_fuzz_decks.py fuzzes whole decks.)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from w90_util import haldane_files

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qgt_mpi.io.checks import CELL_INDEX_MAX, ENERGY_MAX_MEV, InputError  # noqa: E402
from qgt_mpi.models import haldane  # noqa: E402
from qgt_mpi.models.flatten import FlattenedModel, build_flattened  # noqa: E402
from qgt_mpi.models.modelfile import load_model, save_model  # noqa: E402
from qgt_mpi.models.textfile import ModelFileError  # noqa: E402
from qgt_mpi.models.wannier90 import read_wannier90  # noqa: E402

pytestmark = pytest.mark.slow

# QGT_FUZZ_EXAMPLES=700 gives the exploratory run of docs/validation.md (3 x 700 cases)
FUZZ = settings(max_examples=int(os.environ.get("QGT_FUZZ_EXAMPLES", "120")), deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
ODD_NUMBERS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1e300, 1e12, -1e12, 5e-324, 0.0,
               -1.0, 2.0**63, -(2.0**63), 1e7]
ODD_TOKENS = ["nan", "inf", "-inf", "1e308", "1e300", "9223372036854775807",
              "-9223372036854775808", "1e12", "0", "-1", "x", "", "1.5", "3" * 40]
MODEL = haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1)


def _accepted(model) -> None:
    """A model the reader let through obeys the documented ranges."""
    base = model.parent if isinstance(model, FlattenedModel) else model
    assert np.all(np.isfinite(base.t)) and np.all(np.abs(base.t) <= ENERGY_MAX_MEV)
    assert np.all(np.abs(base.R) <= CELL_INDEX_MAX)
    try:
        h = model.hamiltonian(np.array([[0.3, -0.2]]))[0]
    except Exception as exc:  # a flattening of a gapless parent: an input error, one line
        assert getattr(exc, "input_error", False), repr(exc)
        _one_line(exc)
        return
    herm = np.swapaxes(h, -1, -2).conj()
    assert np.all(np.isfinite(h)) and np.allclose(h, herm, atol=1e-8 * max(1, abs(h).max()))


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text, repr(text)


# -- model files --------------------------------------------------------------------------------

_MUTATIONS = st.one_of(
    st.tuples(st.just("scale"), st.sampled_from(["t", "R", "a", "b", "lattice", "positions"]),
              st.sampled_from(ODD_NUMBERS)),
    st.tuples(st.just("poke"), st.sampled_from(["t", "R", "a", "b", "lattice", "positions"]),
              st.sampled_from(ODD_NUMBERS)),
    st.tuples(st.just("shape"), st.sampled_from(["t", "R", "a", "lattice", "positions"]),
              st.sampled_from([(0,), (1,), (3, 3), (2, 2, 2), ()])),
    st.tuples(st.just("dtype"), st.sampled_from(["t", "R", "a", "lattice"]),
              st.sampled_from(["S5", "bool", "float32", "int8", "uint64"])),
    st.tuples(st.just("delete"), st.sampled_from(["t", "R", "a", "b", "lattice", "positions",
                                                  "class", "info_json", "format"]),
              st.none()),
    st.tuples(st.just("info"), st.just("info_json"),
              st.sampled_from(["[1]", "3", "null", "{", '"x"', "{}", json.dumps({"a": 1})])),
    st.tuples(st.just("class"), st.just("class"),
              st.sampled_from(["FlattenedModel", "Other", "", "TightBinding"])),
)


def _mutate(f: h5py.File, how: str, name: str, arg) -> None:
    if how == "delete":
        if name in f:
            del f[name]
        elif name in f.attrs:
            del f.attrs[name]
        return
    if how in ("info", "class"):
        f.attrs[name] = arg
        return
    if name not in f:  # deleted by an earlier mutation
        return
    data = f[name][()]
    del f[name]
    if np.asarray(data).dtype.kind not in "biufc":  # an earlier mutation made it text
        data = np.zeros(np.shape(data))
    if how == "scale":
        with np.errstate(all="ignore"):
            data = (data * arg) if data.dtype.kind in "fc" else np.full(data.shape, arg)
    elif how == "poke":
        data = np.array(data, dtype=complex if data.dtype.kind == "c" else float)
        if data.size:
            data.flat[0] = arg
    elif how == "shape":
        data = np.zeros(arg)
    elif how == "dtype":
        data = np.zeros(data.shape, dtype=arg)
    f[name] = data


@FUZZ
@given(mutations=st.lists(_MUTATIONS, min_size=1, max_size=3), flat=st.booleans())
def test_fuzz_model_files(tmp_path, mutations, flat):
    path = tmp_path / "m.h5"
    path.unlink(missing_ok=True)
    model = build_flattened(MODEL, 1.0) if flat else MODEL
    save_model(model, str(path))
    with h5py.File(path, "a") as f:
        group = f["parent"] if flat else f
        for how, name, arg in mutations:
            _mutate(group, how, name, arg)
    try:
        back = load_model(str(path))
    except ModelFileError as exc:
        _one_line(exc)
        assert str(path) in str(exc)
        return
    _accepted(back)


# -- model files of the sparse classes (continuum, carbon, bond) -------------------------------

def _sparse_models() -> dict:
    from qgt_mpi.models import build_model

    return {"continuum": build_model("bm_continuum", {"alpha": 0.586, "w0": 0.0, "shells": 1,
                                                      "valley": "both"}),
            "carbon": build_model("tbg_atomistic", {"m": 1, "mass": [3.0, 0.0]}),
            "bonds": build_model("haldane", {"t1": 1.0, "t2": 0.3}, cell={"size": (2, 1)})}


SPARSE_MODELS = _sparse_models()


def _names(f: h5py.File) -> tuple[list[str], list[str]]:
    """(dataset paths, (group, attribute) paths) of a saved model file."""
    datasets: list[str] = []
    f.visit(lambda n: datasets.append(n) if isinstance(f[n], h5py.Dataset) else None)
    attrs = [f"@{a}" for a in f.attrs]
    f.visit(lambda n: attrs.extend(f"{n}@{a}" for a in f[n].attrs))
    return sorted(datasets), sorted(attrs)


_SPARSE_HOW = st.sampled_from(["scale", "poke", "shape", "dtype", "delete", "attr"])


@FUZZ
@given(which=st.sampled_from(sorted(SPARSE_MODELS)), data=st.data(),
       steps=st.lists(st.tuples(_SPARSE_HOW, st.integers(0, 10**6),
                                st.sampled_from(ODD_NUMBERS)), min_size=1, max_size=3))
def test_fuzz_sparse_model_files(tmp_path, which, data, steps):
    """Continuum, carbon and bond-list files, damaged anywhere: a model within the documented
    ranges (finite, Hermitian H) or one ModelFileError line naming the file."""
    path = tmp_path / "m.h5"
    path.unlink(missing_ok=True)
    save_model(SPARSE_MODELS[which], str(path))
    with h5py.File(path, "a") as f:
        for how, pick, number in steps:
            datasets, attrs = _names(f)
            if how == "attr" and attrs:
                group, name = attrs[pick % len(attrs)].split("@")
                value = data.draw(st.sampled_from([number, "x", "[1]", "{}", -1, 2**40]))
                f[group or "/"].attrs[name] = value
                continue
            if not datasets:
                continue
            name = datasets[pick % len(datasets)]
            old = f[name][()]
            del f[name]
            if how == "delete":
                continue
            if how == "shape":
                new = np.zeros(data.draw(st.sampled_from([(0,), (1,), (3, 3), (2, 2, 2), ()])))
            elif how == "dtype":
                new = np.zeros(np.shape(old), data.draw(st.sampled_from(
                    ["S5", "bool", "float32", "int8", "uint64", "complex64"])))
            else:
                if np.asarray(old).dtype.kind not in "biufc":  # an earlier step made text
                    old = np.zeros(np.shape(old))
                new = np.array(old, dtype=complex if np.iscomplexobj(old) else float)
                with np.errstate(all="ignore"):
                    if how == "scale":
                        new = new * number
                    elif new.size:
                        new.flat[pick % new.size] = number
            f[name] = new
    try:
        back = load_model(str(path))
    except ModelFileError as exc:
        _one_line(exc)
        assert str(path) in str(exc)
        return
    k = np.array([[0.03, -0.02]])
    h = back.hamiltonian(k, derivatives=False)[0][0]
    assert np.all(np.isfinite(h)) and np.allclose(h, h.conj().T,
                                                  atol=1e-8 * max(1, abs(h).max()))


# -- Wannier90 hr files -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def hr_files(tmp_path_factory):
    return haldane_files(tmp_path_factory.mktemp("w90"))


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 6),
                                st.sampled_from(ODD_TOKENS)), min_size=1, max_size=4),
       fermi=st.sampled_from([0.0, 1.0, -3.0, 1e300, math.nan, math.inf, 1e4]))
def test_fuzz_hr_files(tmp_path, hr_files, edits, fermi):
    lines = Path(hr_files["hr"]).read_text().splitlines()
    for line_no, field, token in edits:
        i = line_no % len(lines)
        fields = lines[i].split()
        if fields:
            fields[field % len(fields)] = token
        lines[i] = " ".join(fields)
    hr = tmp_path / "x_hr.dat"
    hr.write_text("\n".join(lines) + "\n")
    try:
        model = read_wannier90(hr=str(hr), lattice=hr_files["lattice"], fermi=fermi)
    except (ModelFileError, InputError) as exc:
        _one_line(exc)
        return
    except ValueError as exc:  # the documented plain errors of the reader (plane, lattice)
        _one_line(exc)
        return
    _accepted(model)


# -- API arguments ----------------------------------------------------------------------------

API_ODD = [math.nan, math.inf, -1.0, 0, 0.0, 1e300, -5, 1.5, True, "1", None, [], [1.0, "a"],
           [[0.1]], {"start": 1.0}, 2**63]


@FUZZ
@given(arg=st.sampled_from(["temperature", "mu", "delta", "degeneracy", "chunk", "kgrid",
                            "pools", "solver", "title"]),
       value=st.sampled_from(API_ODD))
def test_fuzz_api_arguments(arg, value):
    from mpi4py import MPI

    import qgt_mpi as q

    kwargs = {"kgrid": (4, 4), "temperature": [1.0], "mu": [0.0], "delta": [0.05],
              "comm": MPI.COMM_SELF}
    if arg == "kgrid" and isinstance(value, int) and not isinstance(value, bool) and value > 64:
        value = [value, 1]  # a huge grid is refused by the range check, not run
    kwargs[arg] = value
    try:
        res = q.compute(MODEL, **kwargs)
    except InputError as exc:
        _one_line(exc)
        return
    assert np.all(np.isfinite(res.sigma_xy.values if hasattr(res.sigma_xy, "values")
                              else np.asarray(res.sigma_xy)))
