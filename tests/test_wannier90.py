"""kind = "wannier90": hr/tb/centres readers, units, planes, slabs and malformed files.

The reference is the Haldane model (theory §2.2) written as Wannier90 files
(models/w90write.py): reading them back must give its H(k) and ∂H/∂k.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpi4py import MPI
from mpi_util import assert_all
from w90_util import SCALE, haldane_files, sample_k

from qgt_mpi.models import ModelFileError, TightBinding, read_wannier90
from qgt_mpi.models.w90write import hr_text

RTOL = 1e-12


def _same_h(model, reference, k=None) -> float:
    """Largest |ΔH| and |Δ∂H| relative to the largest |H|."""
    k = sample_k() if k is None else k
    h, dh = model.hamiltonian(k)
    h0, dh0 = reference.hamiltonian(k)
    return max(np.abs(h - h0).max(), np.abs(dh - dh0).max()) / np.abs(h0).max()


def test_hr_with_centres_reproduces_the_model(tmp_path):
    f = haldane_files(tmp_path)
    model = read_wannier90(hr=f["hr"], centres=f["centres"], lattice=f["lattice"])
    assert _same_h(model, f["model"]) < RTOL
    assert model.describe()["length_unit_angstrom"] == pytest.approx(SCALE)
    assert model.check_hermitian()


def test_tb_gives_lattice_hoppings_and_centres(tmp_path):
    f = haldane_files(tmp_path)
    model = read_wannier90(tb=f["tb"])
    assert _same_h(model, f["model"]) < RTOL
    np.testing.assert_allclose(model.positions, f["model"].positions, atol=1e-15)


def test_ev_are_converted_to_mev(tmp_path):
    """The files hold eV (1 meV = 0.001 eV); the model is back in meV."""
    f = haldane_files(tmp_path)
    text = open(f["hr"]).read()
    assert "0.001 0" in text  # t1 = 1 meV written as 0.001 eV
    model = read_wannier90(hr=f["hr"], centres=f["centres"], lattice=f["lattice"], fermi=0.001)
    onsite = np.all(model.R == 0, axis=1) & (model.a == model.b)
    ref = f["model"]
    ref_onsite = np.all(ref.R == 0, axis=1) & (ref.a == ref.b)
    np.testing.assert_allclose(np.sort(model.t[onsite].real),
                               np.sort(ref.t[ref_onsite].real) - 1.0, atol=1e-12)


def test_degeneracy_weights_are_honoured(tmp_path):
    """Cells written with weight N_R hold N_R·H(R); the reader divides (Σ 1/N_R integral)."""
    f = haldane_files(tmp_path)
    model = f["model"]
    from qgt_mpi.models.w90write import cell_blocks, embed

    _, _, R3 = embed(model, scale=SCALE)
    cells, _ = cell_blocks(model, R3)
    deg = np.ones(len(cells), dtype=int)
    pair = [i for i, c in enumerate(cells) if tuple(c) in ((1, 0, 0), (-1, 0, 0))]
    deg[pair] = 2  # two cells of weight 1/2: Σ 1/N_R stays an integer
    path = tmp_path / "weighted_hr.dat"
    path.write_text(hr_text(model, R3, deg))
    back = read_wannier90(hr=str(path), centres=f["centres"], lattice=f["lattice"])
    assert _same_h(back, model) < RTOL


def test_plane_choice(tmp_path):
    """The same model embedded in the (a1, a3) plane is read back with plane = [1, 3]."""
    f = haldane_files(tmp_path, plane=(1, 3))
    model = read_wannier90(tb=f["tb"], plane=[1, 3])
    assert _same_h(model, f["model"]) < RTOL
    with pytest.raises(ModelFileError, match="leave the plane"):
        read_wannier90(tb=f["tb"], plane=[1, 2])


def test_plane_as_integer_vectors(tmp_path):
    """plane = two integer vectors: (a1, a3) as vectors, and the sheared basis (a1, a1 + a2)."""
    f = haldane_files(tmp_path, plane=(1, 3))
    as_vectors = read_wannier90(tb=f["tb"], plane=[[1, 0, 0], [0, 0, 1]])
    assert _same_h(as_vectors, f["model"]) < RTOL
    (tmp_path / "sheared").mkdir()
    g = haldane_files(tmp_path / "sheared", plane=(1, 2))
    sheared = read_wannier90(tb=g["tb"], plane=[[1, 0, 0], [1, 1, 0]])
    np.testing.assert_allclose(sheared.lattice[1], g["model"].lattice.sum(axis=0), atol=1e-15)
    assert _same_h(sheared, g["model"]) < RTOL  # same physics in another cell basis
    with pytest.raises(ValueError, match="primitive"):
        read_wannier90(tb=g["tb"], plane=[[2, 0, 0], [0, 1, 0]])


def _slab_files(tmp_path, tz: float):
    """Haldane layer plus an on-site-orbital hop tz (meV) to the next layer along a3."""
    f = haldane_files(tmp_path)
    m = f["model"]
    R3 = np.column_stack([m.R, np.zeros(len(m.R), int)])
    extra_R = np.array([[0, 0, 1], [0, 0, -1]])
    slab = TightBinding(m.lattice, m.positions, np.concatenate([m.R, [[0, 0], [0, 0]]]),
                        np.concatenate([m.a, [0, 0]]), np.concatenate([m.b, [0, 0]]),
                        np.concatenate([m.t, [tz, tz]]))
    path = tmp_path / "slab_hr.dat"
    path.write_text(hr_text(slab, np.concatenate([R3, extra_R])))
    return f, str(path)


def test_out_of_plane_hoppings_refused_or_summed_at_kz0(tmp_path):
    tz = 0.05
    f, path = _slab_files(tmp_path, tz)
    with pytest.raises(ModelFileError) as err:
        read_wannier90(hr=path, centres=f["centres"], lattice=f["lattice"])
    assert err.value.line is not None and 'out_of_plane = "sum"' in str(err.value)
    summed = read_wannier90(hr=path, centres=f["centres"], lattice=f["lattice"],
                            out_of_plane="sum")
    k = sample_k()
    h, _ = summed.hamiltonian(k, derivatives=False)
    h0, _ = f["model"].hamiltonian(k, derivatives=False)
    # At k_z = 0 the hops to R3 = ±1 add tz e^{0} + tz e^{0} = 2 tz to H_00.
    h0[:, 0, 0] += 2 * tz
    assert np.abs(h - h0).max() < 1e-12


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage()


def test_missing_centres_warn_and_use_the_origin(tmp_path):
    f = haldane_files(tmp_path)
    log, records = logging.getLogger("qgt_mpi"), _Records()
    log.addHandler(records)  # (the CLI's logging set-up may stop propagation to caplog)
    try:
        model = read_wannier90(hr=f["hr"], lattice=f["lattice"])
    finally:
        log.removeHandler(records)
    assert "quantum metric" in records.text and "cell origin" in records.text
    assert np.all(model.positions == 0.0)
    # H differs from the centred model by the gauge D(k) = diag(e^{ik·τ}) only: same bands.
    k = sample_k()
    e = np.linalg.eigvalsh(model.hamiltonian(k, False)[0])
    e0 = np.linalg.eigvalsh(f["model"].hamiltonian(k, False)[0])
    np.testing.assert_allclose(e, e0, atol=1e-12)
    # ... but not the same metric: isotropic with the centres, anisotropic without (C3 lost).
    from qgt_mpi.api import compute

    g = [compute(m, (16, 16), [1.0], [0.0], [0.1], comm=MPI.COMM_SELF).geometry[
        "metric_integral"][0] for m in (f["model"], model)]
    assert abs(g[0][0] - g[0][1]) < 1e-10 and abs(g[0][2]) < 1e-10
    assert abs(g[1][0] - g[1][1]) > 1e-2 and abs(g[1][2]) > 1e-2


# --- malformed files: one error naming the file and the line ------------------------------

def _lines(tmp_path):
    f = haldane_files(tmp_path)
    return f, open(f["hr"]).read().splitlines()


def _read(tmp_path, lines, f, name="bad_hr.dat"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return read_wannier90(hr=str(path), centres=f["centres"], lattice=f["lattice"])


@pytest.mark.parametrize("edit, line, text", [
    (lambda ls: ls[:-3], 30, "file ends early"),                       # truncated
    (lambda ls: [*ls[:1], "3", *ls[2:]], 33, "expected 63 line(s)"),      # wrong num_wann
    (lambda ls: [*ls[:2], "8", *ls[3:]], 4, "degeneracy line must hold 8"),  # wrong nrpts
    (lambda ls: [*ls[:6], ls[6].replace("0.001 0", "abc 0"), *ls[7:]], 7, "non-numeric"),
    (lambda ls: [*ls[:6], ls[6].replace("0.001 0", "nan 0"), *ls[7:]], 7, "non-finite"),
    (lambda ls: [*ls[:3], "   1    1    1    1    1    1    2", *ls[4:]], 4,
     "degeneracy weights are inconsistent"),
    (lambda ls: [*ls[:6], ls[6].replace("0.001 0", "0.002 0"), *ls[7:]], 7, "not Hermitian"),
    (lambda ls: [*ls, "1 2 3"], 33, "unexpected extra data"),
])
def test_malformed_hr_names_file_and_line(tmp_path, edit, line, text):
    f, lines = _lines(tmp_path)
    with pytest.raises(ModelFileError) as err:
        _read(tmp_path, edit(lines), f)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "bad_hr.dat"))
    assert text in msg, msg
    assert err.value.line == line, msg


def test_bad_centres_file(tmp_path):
    f = haldane_files(tmp_path)
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\ncomment\nX 0 0 0\nX 1 1 x\nC 0 0 0\n")
    with pytest.raises(ModelFileError, match=r"bad.xyz:4: non-numeric"):
        read_wannier90(hr=f["hr"], centres=str(bad), lattice=f["lattice"])


_MUTATIONS = st.sampled_from(["delete", "duplicate", "token", "truncate", "blank"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=_MUTATIONS, where=st.integers(0, 10_000), junk=st.sampled_from(
    ["x", "nan", "inf", "-1", "0", "1e400", "1.5", "", "99999", "#"]), which=st.sampled_from(
    ["hr", "tb", "centres"]))
def test_broken_files_never_traceback(tmp_path, kind, where, junk, which):
    """Randomly broken hr/tb/xyz files give a ModelFileError/ValueError or a valid model."""
    f = haldane_files(tmp_path)
    lines = open(f[which]).read().splitlines()
    i = where % len(lines)
    if kind == "delete":
        lines = lines[:i] + lines[i + 1:]
    elif kind == "duplicate":
        lines = lines[:i + 1] + lines[i:]
    elif kind == "truncate":
        lines = lines[:i]
    elif kind == "blank":
        lines[i] = ""
    else:
        fields = lines[i].split() or [""]
        fields[where % len(fields)] = junk
        lines[i] = " ".join(fields)
    broken = tmp_path / f"broken_{which}"
    broken.write_text("\n".join(lines) + "\n")
    args = {"hr": f["hr"], "centres": f["centres"], "lattice": f["lattice"]}
    args = {"tb": str(broken)} if which == "tb" else {**args, which: str(broken)}
    try:
        model = read_wannier90(**args)
    except ValueError as exc:  # ModelFileError is a ValueError
        assert "\n" not in str(exc)
        return
    assert model.check_hermitian(atol=1e-9)


@pytest.mark.mpi
def test_rank0_reads_and_broadcasts(comm, tmp_path_shared):
    """Every rank gets the same table; an error on rank 0's read is raised on every rank."""
    from mpi_util import on_root

    f = on_root(comm, lambda: haldane_files(tmp_path_shared))
    model = read_wannier90(tb=f["tb"], comm=comm)
    gathered = comm.allgather(model.t.tobytes())
    assert_all(comm, all(g == gathered[0] for g in gathered), "tables differ across ranks")
    assert_all(comm, _same_h(model, f["model"]) < RTOL, "wrong model")
    try:
        read_wannier90(hr=str(tmp_path_shared / "missing_hr.dat"), lattice=f["lattice"],
                       comm=comm)
        raised = ""
    except ModelFileError as exc:
        raised = str(exc)
    assert_all(comm, "cannot read file" in raised, f"rank {comm.rank}: {raised!r}")
