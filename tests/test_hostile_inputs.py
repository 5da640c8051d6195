"""Every file that enters a run goes through one guarded door (io/input_guard.py).

Special files (FIFO, device, directory) are refused before anything opens them for reading,
numbers in model files and Wannier90 files are range-checked, and a model file read on rank
0 reaches every rank or one error does (never an exception inside a broadcast).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import deck_text, kgrid_table, sweep_table, table
from w90_util import haldane_files

from qgt_mpi.io.checks import InputError
from qgt_mpi.io.input_guard import SIZE_CAPS, check_input, read_bytes
from qgt_mpi.models import haldane
from qgt_mpi.models.inline import tight_binding
from qgt_mpi.models.modelfile import load_model, save_model
from qgt_mpi.models.textfile import ModelFileError
from qgt_mpi.models.wannier90 import read_wannier90


def _fifo(tmp_path: Path, name: str = "fifo") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


# -- the guard itself ---------------------------------------------------------------------

def test_guard_refuses_fifo_device_directory(tmp_path):
    fifo = _fifo(tmp_path)
    for path, what in ((fifo, "FIFO"), ("/dev/zero", "device"), (tmp_path, "directory")):
        with pytest.raises(InputError, match=what):
            read_bytes(str(path), "deck")  # returns at once: never blocks on the FIFO
    with pytest.raises(InputError, match=r"cannot read file \(No such file"):
        check_input(str(tmp_path / "absent"), "hr")


def test_guard_size_cap(tmp_path, monkeypatch):
    path = tmp_path / "big.toml"
    path.write_text("x" * 100)
    monkeypatch.setitem(SIZE_CAPS, "deck", 99)
    with pytest.raises(InputError, match="more than the deck file limit of 99 bytes"):
        read_bytes(str(path), "deck")
    monkeypatch.setitem(SIZE_CAPS, "deck", 100)
    assert read_bytes(str(path), "deck") == b"x" * 100


def test_hr_file_fifo_refused(tmp_path):
    fifo = _fifo(tmp_path, "seed_hr.dat")
    with pytest.raises(ModelFileError, match="is a FIFO"):
        read_wannier90(hr=str(fifo), lattice=np.eye(3))


def test_model_file_fifo_and_device_refused(tmp_path):
    with pytest.raises(ModelFileError, match="is a FIFO"):
        load_model(str(_fifo(tmp_path, "m.h5")))
    with pytest.raises(ModelFileError, match="is a device"):
        load_model("/dev/zero")


# -- model files: shapes, types, ranges ----------------------------------------------------

def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "m.h5"
    save_model(haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1), str(path))
    return path


def test_model_file_info_json_list_is_one_error(tmp_path):
    path = _saved(tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["info_json"] = json.dumps([1, 2])
    with pytest.raises(ModelFileError, match="info_json must be a JSON object"):
        load_model(str(path))


@pytest.mark.parametrize("name, value, match", [
    ("t", lambda t: t * 1e8, "'t' has |value|"),
    ("t", lambda t: np.where(np.arange(t.size) == 0, np.nan, t), "non-finite"),
    ("R", lambda r: r + (2**62), "'R' has |value|"),
    ("a", lambda a: a + 5, "orbital index outside"),
    ("lattice", lambda x: x[:1], "shape"),
])
def test_model_file_bad_numbers_refused(tmp_path, name, value, match):
    path = _saved(tmp_path)
    with h5py.File(path, "a") as f:
        new = value(f[name][()])
        del f[name]
        f[name] = new
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_model_file_missing_dataset(tmp_path):
    path = _saved(tmp_path)
    with h5py.File(path, "a") as f:
        del f["t"]
    with pytest.raises(ModelFileError, match="dataset 't' is missing"):
        load_model(str(path))


# -- Wannier90 and inline numbers ------------------------------------------------------------

def test_wannier90_fermi_out_of_range(tmp_path):
    files = haldane_files(tmp_path)
    with pytest.raises(InputError, match=r"model.fermi = 1e\+300: must satisfy \|x\| <= 1000"):
        read_wannier90(tb=files["tb"], fermi=1e300)


def test_wannier90_huge_hoppings_refused(tmp_path):
    files = haldane_files(tmp_path)
    hr = Path(files["hr"])
    lines = hr.read_text().splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if len(f) == 7 and i > 3:  # below the header and the degeneracy line
            lines[i] = " ".join([*f[:5], *(f"{float(x) * 1e8:.6f}" for x in f[5:])])
    hr.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelFileError, match=r"meV: hoppings must satisfy \|H\| <= 1e\+06"):
        read_wannier90(hr=files["hr"], lattice=files["lattice"])


def test_wannier90_huge_cell_index_refused(tmp_path):
    files = haldane_files(tmp_path)
    hr = Path(files["hr"])
    lines = hr.read_text().splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if len(f) == 7 and i > 3 and f[:3] != ["0", "0", "0"]:
            old = f[:3]
            lines = [(" ".join([str(2**63 - 1), *g[1:]]) if j > 3 and len(g := ln.split())
                      == 7 and g[:3] == old else ln) for j, ln in enumerate(lines)]
            break
    hr.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelFileError, match=r"\|R_i\| must be <= 1000000"):
        read_wannier90(hr=files["hr"], lattice=files["lattice"])


def test_inline_cell_index_and_hopping_range():
    base = dict(lattice=[[1, 0], [0, 1]], positions=[[0, 0]])
    with pytest.raises(InputError, match=r"model.hoppings.R\[0\]\[0\] = 9223372036854775807"):
        tight_binding(**base, hoppings=[((2**63 - 1, 0), 0, 0, 1.0)])
    with pytest.raises(InputError, match=r"model.hoppings.t\[0\]"):
        tight_binding(**base, hoppings=[((1, 0), 0, 0, 1e12)])
    tight_binding(**base, hoppings=[((1, 0), 0, 0, 1.0)])  # still fine


# -- the commands ----------------------------------------------------------------------------

FLAT = table("model", kind="haldane", t1=1.0, t2=0.3, mass=0.2, phi=1.1) + \
    table("model.flatten", gap=1.0)


def _sweep() -> str:
    return kgrid_table(4) + sweep_table(delta=[0.05])


@pytest.mark.subprocess
@pytest.mark.parametrize("np_", [0, 2])
def test_saved_flattened_model_runs_on_two_ranks(tmp_path, np_):
    """A flattened model saved with `model save` and read back under mpirun: it hung
    (KeyError '<d' inside the broadcast on rank 0: the attribute's explicit byte order)."""
    from runner import qgt

    deck = tmp_path / "flat.toml"
    deck.write_text(deck_text(FLAT, _sweep()))
    saved = qgt(["model", "save", str(deck), "-o", str(tmp_path / "flat.h5")])
    assert saved.returncode == 0, saved.stderr
    use = tmp_path / "use.toml"
    use.write_text(deck_text(table("model", kind="model_file", file="flat.h5"), _sweep()))
    proc = qgt(["validate", str(use)], np=np_, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "haldane+flat" in proc.stdout


@pytest.mark.subprocess
@pytest.mark.parametrize("command", ["validate", "info", "plot"])
def test_commands_refuse_fifo_at_once(tmp_path, command):
    from runner import qgt

    fifo = _fifo(tmp_path, "x.toml")
    proc = qgt([command, str(fifo)], timeout=60)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "is a FIFO, not a regular file" in lines[0], lines


@pytest.mark.subprocess
def test_deck_with_fifo_hr_is_refused(tmp_path):
    from runner import qgt

    _fifo(tmp_path, "seed_hr.dat")
    deck = tmp_path / "w.toml"
    deck.write_text(deck_text(table("model", kind="wannier90", hr="seed_hr.dat",
                                    lattice=[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 5.0]]),
                              _sweep()))
    proc = qgt(["validate", str(deck)], np=2, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "is a FIFO" in proc.stderr




# -- restart fingerprints hash file contents -------------------------------------------------

def test_fingerprint_hashes_model_file_content(tmp_path):
    """A restart after the model file changed resumed ("10 of 16 blocks already done") and
    mixed two models: the fingerprint held the path only."""
    from qgt_mpi.io import checkpoint
    from qgt_mpi.io.deck import load_deck

    model = tmp_path / "m.h5"
    save_model(haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1), str(model))
    deck = tmp_path / "d.toml"
    deck.write_text(deck_text(table("model", kind="model_file", file="m.h5"), _sweep()))
    before = checkpoint.fingerprint(load_deck(str(deck)))
    assert "model.file.sha256" in before
    model.unlink()
    save_model(haldane(t1=1.0, t2=0.31, mass=0.2, phi=1.1), str(model))  # same name
    after = checkpoint.fingerprint(load_deck(str(deck)))
    assert checkpoint.changed_fields(before, after) == ["model.file.sha256"]


def test_fingerprint_hashes_hr_file_content(tmp_path):
    from qgt_mpi.io import checkpoint
    from qgt_mpi.io.deck import load_deck

    files = haldane_files(tmp_path)
    deck = tmp_path / "d.toml"
    deck.write_text(deck_text(table("model", kind="wannier90", tb="seed_tb.dat"), _sweep()))
    before = checkpoint.fingerprint(load_deck(str(deck)))
    tb = Path(files["tb"])
    tb.write_text(tb.read_text().replace("0.", "1.", 1))
    after = checkpoint.fingerprint(load_deck(str(deck)))
    assert checkpoint.changed_fields(before, after) == ["model.tb.sha256"]


# -- PETSc options: solver tuning only -------------------------------------------------------

@pytest.mark.parametrize("argv, match", [
    (["-qgt_eps_target", "1000"], "set solver.target in the deck"),
    (["-qgt_eps_target", "-5"], "set solver.target in the deck"),
    (["-qgt_eps_view", "ascii:/tmp/x"], "writes output"),
    (["-qgt_eps_problem_type", "nhep"], "not a solver tuning option"),
    (["-qgt_st_type", "shift"], "not a solver tuning option"),
    (["-qgt_st_pc_type", "ascii:/etc/passwd"], "plain word"),
    (["-qgt_eps_monitor"], "writes output"),
])
def test_petsc_option_refused(argv, match):
    from qgt_mpi.solvers import options

    with pytest.raises(InputError, match=match):
        options.parse(argv)


def test_petsc_tuning_options_pass(monkeypatch):
    from qgt_mpi.solvers import options

    monkeypatch.setattr(options, "_accepted", [])  # this process's record stays untouched

    argv = ["-qgt_st_mat_mumps_icntl_14", "50", "-qgt_eps_mpd", "40",
            "-qgt_eps_krylovschur_locking", "-qgt_st_pc_factor_mat_solver_type", "mumps"]
    assert options.parse(argv) == [("st_mat_mumps_icntl_14", "50"), ("eps_mpd", "40"),
                                   ("eps_krylovschur_locking", ""),
                                   ("st_pc_factor_mat_solver_type", "mumps")]
    options.check_database({"qgt_st_mat_mumps_icntl_14": "50", "other_x": "1"})
    assert options.describe() == "-qgt_st_mat_mumps_icntl_14 50"  # what the file records
    with pytest.raises(InputError, match="writes output"):
        options.check_database({"qgt_eps_view": "ascii:/tmp/x"})  # e.g. from PETSC_OPTIONS


@pytest.mark.subprocess
def test_run_refuses_petsc_viewer_with_one_line(tmp_path):
    from runner import qgt

    deck = tmp_path / "d.toml"
    deck.write_text(deck_text(FLAT, _sweep()))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    proc = qgt(["run", str(deck), "-o", str(tmp_path / "o.h5"), "-qgt_eps_view",
                f"ascii:{victim}"], np=2, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("qgt-mpi: input error: PETSc option"), lines
    assert victim.read_text() == "keep" and not (tmp_path / "o.h5").exists()


# -- the API is collective about argument errors ---------------------------------------------

_RANK_DEPENDENT = """
import sys
from mpi4py import MPI
import qgt_mpi as q
from qgt_mpi.io.checks import InputError
rank = MPI.COMM_WORLD.rank
m = q.models.haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1)
try:
    q.compute(m, (4, 4), [1.0], [0.0], [0.05], chunk=-5 if rank == 1 else 4)
except InputError as exc:
    print(f"rank {rank}: {exc}", flush=True)
    sys.exit(0)
print(f"rank {rank}: no error", flush=True)
"""


@pytest.mark.subprocess
def test_api_bad_argument_on_one_rank_does_not_hang(tmp_path):
    """chunk = -5 on rank 1 only: rank 0 went on into the k-pass and waited forever."""
    import subprocess
    import sys

    from runner import clean_env

    script = tmp_path / "s.py"
    script.write_text(_RANK_DEPENDENT)
    proc = subprocess.run(["mpirun", "--quiet", "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the two ranks print at once: their lines may share a line of the captured stdout
    found = sorted(re.findall(r"rank \d: run\.chunk = -5: must be an integer in "
                              r"\[1, 1000000\]", proc.stdout))
    assert found == [f"rank {r}: run.chunk = -5: must be an integer in [1, 1000000]"
                     for r in (0, 1)], proc.stdout


# -- one line instead of a traceback ---------------------------------------------------------

def _filling_deck(tmp_path: Path) -> Path:
    deck = tmp_path / "fill.toml"
    deck.write_text(deck_text(
        FLAT, kgrid_table(4),
        table("sweep", temperature=[1e-9], filling=[0.25], filling_bands=[0, 1], delta=[1e-9]),
        table("output", kresolved=False)))
    return deck


def test_cell_estimate_of_tiny_filling_window_is_bounded(tmp_path):
    """A fixed-filling sweep at T = δ = 1e-9: the level-0 estimate enumerated 10^10 cells
    (58 GiB inside dry-run and the run's memory check)."""
    from qgt_mpi.transport import estimate
    from qgt_mpi.transport.energy_cells import EnergyLattice

    lat = EnergyLattice(np.array([0.0]), r_min=1e-9, anywhere=True)
    sample = np.random.default_rng(0).uniform(-3.0, 3.0, size=(64, 2))
    cells = estimate._cells(lat, 0, float(sample.min()), float(sample.max()))
    assert cells.size <= estimate.MAX_CANDIDATES + 1
    total = estimate.expected_cells(lat, sample, 64 * 64)
    assert 0.5 * 64 * 64 * 2 <= total <= 64 * 64 * 2 + 1  # every energy in its own cell


@pytest.mark.subprocess
def test_dry_run_of_filling_deck_at_nanokelvin(tmp_path):
    from runner import qgt

    proc = qgt(["dry-run", str(_filling_deck(tmp_path))], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "estimate" in proc.stdout


@pytest.mark.subprocess
def test_info_and_plot_of_malformed_result_are_one_line(tmp_path):
    from runner import qgt

    deck = tmp_path / "d.toml"
    deck.write_text(deck_text(FLAT, _sweep(), table("output", kresolved=False)))
    out = tmp_path / "r.h5"
    assert qgt(["run", str(deck), "-o", str(out)]).returncode == 0
    proc = qgt(["plot", str(out), "--path", "1/0,0 G", "--dir", str(tmp_path / "f")])
    lines = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, \
        proc.stderr
    with h5py.File(out, "a") as f:
        data = f["transport/sigma_xy"][()]
        del f["transport/sigma_xy"]
        f["transport/sigma_xy"] = data.ravel()[:1]  # wrong shape
        temps = f["transport/temperature"][()]
        del f["transport/temperature"]
        f["transport/temperature"] = np.array([[temps[0]]])
    proc = qgt(["info", str(out)])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2), proc.stderr
    if proc.returncode == 2:
        assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr


# -- a size estimate before a large allocation -----------------------------------------------

@pytest.mark.parametrize("params", [{"m": 1000}, {"m": 31, "cutoff": 1000.0},
                                    {"m": 1e300}])
def test_tbg_build_estimate_refuses_before_allocating(params, monkeypatch):
    from qgt_mpi.run import memory

    monkeypatch.setattr(memory, "available_mib", lambda: 64_000.0)
    with pytest.raises(InputError, match=r"building it needs ~.* MiB .* more than the 64000"):
        memory.check_build("tbg_atomistic", params)
    memory.check_build("tbg_atomistic", {"m": 5})  # small: passes
    memory.check_build("haldane", {"t1": 1.0})


@pytest.mark.subprocess
@pytest.mark.parametrize(("extra", "why"), [({"m": 1000}, "model.m = 1000: must be"),
                                           ({"m": 31, "cutoff": 1000.0}, "model.cutoff"),
                                           ({"m": 300, "cutoff": 2.0}, "building it needs")])
def test_validate_of_huge_tbg_is_refused_at_once(tmp_path, extra, why):
    """tbg_atomistic with m = 1000 or cutoff = 1000 allocated gigabytes inside validate: the
    deck's bounds refuse those, the size estimate what is in bounds but too large."""
    from runner import qgt

    deck = tmp_path / "t.toml"
    deck.write_text(deck_text(table("model", kind="tbg_atomistic", **extra), _sweep()))
    proc = qgt(["validate", str(deck)], timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(lines) == 1 and why in lines[0], lines


def test_wannier90_mirrored_plane_is_refused(tmp_path):
    """plane = [2, 1] flipped sigma_xy and C with an identical stored lattice."""
    files = haldane_files(tmp_path)
    for plane in ([2, 1], [[0, 1, 0], [1, 0, 0]]):
        with pytest.raises(ValueError, match=r"mirrored order .* use plane = "):
            read_wannier90(tb=files["tb"], plane=plane)
    read_wannier90(tb=files["tb"], plane=[1, 2])
    read_wannier90(tb=files["tb"], plane=[[1, 0, 0], [0, 1, 0]])


# -- signals: a stop sent to the launcher reaches every rank ----------------------------------

@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_local_run_turns_term_and_int_into_a_checkpoint(tmp_path, sig):
    """TERM or Ctrl-C to the launcher: every rank checkpoints and the shell sees status 3
    (to a bare mpirun they killed the ranks ~1 s later and mpirun exited 1)."""
    import signal
    import subprocess
    import sys

    from runner import REPO, clean_env

    deck = tmp_path / "d.toml"
    deck.write_text(deck_text(table("model", kind="haldane", t1=1.0, t2=0.3, mass=0.2),
                              kgrid_table(110), sweep_table([1.0], [0.0, 0.5], [0.05]),
                              table("output", kresolved=False),
                              table("run", chunk=10, progress_percent=2)))
    out = tmp_path / "o.h5"
    env = {**clean_env(), "NP": "2", "PYTHON": sys.executable}
    proc = subprocess.Popen(["bash", str(REPO / "jobs" / "local_run.sh"), str(deck), str(out),
                             "--checkpoint-interval", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += "k-pass" in line
        if seen >= 3:
            break
    proc.send_signal(getattr(signal, sig))
    rest = proc.stdout.read()
    status = proc.wait(timeout=300)
    assert status == 3, rest[-2000:]
    assert Path(f"{out}.checkpoint.h5").exists() and not out.exists()
    assert "stopped; checkpoint" in rest


def test_root_call_sends_any_error_and_refuses_unsendable_results():
    """An exception or result that does not pickle failed inside the broadcast on rank 0
    only (the other ranks waited): it becomes one RuntimeError sent to every rank."""
    import threading

    from mpi4py import MPI

    from qgt_mpi.parallel.rootcall import root_call

    class UnpicklableError(ValueError):
        def __init__(self, lock):
            super().__init__("bad file")
            self.lock = lock

    def fail():
        raise UnpicklableError(threading.Lock())

    with pytest.raises(RuntimeError, match="UnpicklableError: bad file"):
        root_call(MPI.COMM_SELF, fail)
    with pytest.raises(TypeError, match="cannot pickle"):
        root_call(MPI.COMM_SELF, lambda: {"x": threading.Lock()})
    out = root_call(MPI.COMM_SELF, lambda: {"a": np.arange(3, dtype=">f8"), "b": 1})
    assert out["a"].dtype.isnative and out["a"].tolist() == [0.0, 1.0, 2.0] and out["b"] == 1


def test_api_load_of_fifo_is_refused(tmp_path):
    import qgt_mpi as q

    with pytest.raises(InputError, match="is a FIFO"):
        q.load(str(_fifo(tmp_path, "r.h5")))


def test_model_file_compressed_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    """A compressed dataset of 10^9 zeros is a few kB on disk: refused by its size, unread."""
    from qgt_mpi.run import memory

    path = _saved(tmp_path)
    with h5py.File(path, "a") as f:
        del f["t"]
        f.create_dataset("t", shape=(10**9,), dtype=complex, chunks=(10**6,),
                         compression="gzip")
    assert path.stat().st_size < 10**7
    monkeypatch.setattr(memory, "available_mib", lambda: 4096.0)
    with pytest.raises(ModelFileError, match="more than half the memory"):
        load_model(str(path))


_LOAD_MODEL = """
import sys
from mpi4py import MPI
import qgt_mpi as q
comm = MPI.COMM_WORLD
model = q.load_model(sys.argv[1], comm=comm)
print(f"rank {comm.rank}: {model.describe()['kind']}", flush=True)
try:
    q.load_model(sys.argv[2], comm=comm)
except ValueError as exc:
    print(f"rank {comm.rank}: refused", flush=True)
"""


@pytest.mark.subprocess
def test_api_load_model_of_flattened_file_under_mpirun(tmp_path):
    """load_model(..., comm=COMM_WORLD) of a flattened model file hung like `model save` +
    kind = "model_file"; a bad file is refused on every rank."""
    import subprocess
    import sys

    from runner import clean_env

    good = tmp_path / "flat.h5"
    save_model(build_flattened_haldane(), str(good))
    bad = tmp_path / "bad.h5"
    save_model(haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1), str(bad))
    with h5py.File(bad, "a") as f:
        f.attrs["info_json"] = "[1, 2]"
    script = tmp_path / "s.py"
    script.write_text(_LOAD_MODEL)
    proc = subprocess.run(["mpirun", "--quiet", "-n", "2", sys.executable, str(script),
                           str(good), str(bad)], capture_output=True, text=True, timeout=120,
                          env=clean_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    import re

    found = sorted(re.findall(r"rank \d: (?:haldane\+flat|refused)", proc.stdout))
    assert found == ["rank 0: haldane+flat", "rank 0: refused", "rank 1: haldane+flat",
                     "rank 1: refused"], proc.stdout


def build_flattened_haldane():
    from qgt_mpi.models.flatten import build_flattened

    return build_flattened(haldane(t1=1.0, t2=0.3, mass=0.2, phi=1.1), 1.0)


@pytest.mark.subprocess
@pytest.mark.slow
def test_restart_after_the_tb_file_changed_is_refused(tmp_path):
    """End to end: stop a run of a Wannier90 deck (checkpoint), change the tb file's content
    under the same name, rerun: it resumed ("10 of 16 blocks already done") and mixed two
    models; now one line naming model.tb.sha256, status 2."""
    import signal
    import time

    from runner import qgt, rank_pids, start

    files = haldane_files(tmp_path)
    deck = tmp_path / "w.toml"
    deck.write_text(deck_text(table("model", kind="wannier90", tb="seed_tb.dat"),
                              kgrid_table(110), sweep_table([1.0], [0.0], [0.05]),
                              table("output", kresolved=False),
                              table("run", chunk=10, progress_percent=2)))
    out = tmp_path / "o.h5"
    proc = start(["run", str(deck), "-o", str(out), "--checkpoint-interval", "0"], 2)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += "k-pass" in line
        if seen >= 3:
            break
    for pid in rank_pids(str(out)):
        os.kill(pid, signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=300) == 3
    assert Path(f"{out}.checkpoint.h5").exists()
    tb = Path(files["tb"])
    text = tb.read_text()
    time.sleep(0.01)
    tb.write_text(text.replace(" 0.300000", " 0.310000", 1) if " 0.300000" in text
                  else text + "\n")
    again = qgt(["run", str(deck), "-o", str(out)], np=2, timeout=300)
    lines = [ln for ln in again.stderr.splitlines() if ln.strip()]
    assert again.returncode == 2, again.stderr[-2000:]
    assert len(lines) == 1 and "model.tb.sha256" in lines[0], lines
