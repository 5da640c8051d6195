"""The pip-only route: an h5py without MPI (the serial PyPI wheel; docs/install.md, "pip only").

The product's one detection, ``qgt_mpi._deps.parallel_h5py`` (``h5py.get_config().mpi``), is
handed h5py's answer for a serial build in-process (``serial_h5py``); everything after it is
the code a serial h5py runs. On one rank ``qgt-mpi run`` (streamed sweep, checkpoint slabs,
final write) and ``Result.save`` write with serial HDF5 — no file is ever opened with
``driver="mpio"`` (recorded) — and their files equal the parallel-HDF5 ones; on more ranks
``run`` prints one line on rank 0 and exits 2 on every rank, and ``Result.save`` raises the
same SerialH5pyError on every rank, before any file is made. The real pip venv (PyPI h5py and
mpi4py wheels) is checked by hand: docs/install.md, "pip only".
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from decks import PAPER, deck_text, kgrid_table, span, sweep_table, table
from mpi_util import assert_all

import qgt_mpi as q
from qgt_mpi import _deps
from qgt_mpi.cli.main import main


def serial_h5py(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    """Make h5py report a serial build (``get_config().mpi`` False, as the PyPI wheel does)
    and record every file opened: (name, mode, driver)."""
    real_config, real_file = h5py.get_config(), h5py.File

    class SerialConfig:
        mpi = False  # the rest as h5py says

        def __getattr__(self, name: str) -> object:
            return getattr(real_config, name)

    config = SerialConfig()
    opened: list[tuple[str, str, str | None]] = []

    class RecordingFile(real_file):  # type: ignore[misc, valid-type]
        def __init__(self, name, mode="r", driver=None, **kwargs):
            opened.append((str(name), mode, driver))
            super().__init__(name, mode, driver=driver, **kwargs)

    monkeypatch.setattr(h5py, "get_config", lambda: config)
    monkeypatch.setattr(h5py, "File", RecordingFile)
    assert not _deps.parallel_h5py()
    return opened


def _deck(path: Path) -> Path:
    """The paper's flat Haldane bands on a 9 × 8 grid in blocks of 10: several checkpoints."""
    path.write_text(deck_text(
        PAPER, kgrid_table(9, 8), sweep_table(span(0.2, 20.0, 4, "log"), [-0.25, 0.0], [0.01]),
        table("output", kresolved=True), table("run", chunk=10), title="serial h5py"))
    return path


def _numeric(path: Path) -> dict[str, np.ndarray]:
    """Every numeric dataset of a result file except /timing (wall clock)."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            if (isinstance(obj, h5py.Dataset) and not name.startswith("timing")
                    and obj.dtype.kind in "fciub"):
                out[name] = obj[()]
        f.visititems(visit)
        assert f.attrs["complete"]
    return out


def _assert_same_file(a: Path, b: Path) -> None:
    """Same datasets, equal to 1e-12 of each dataset's largest value (runs repeat only to
    round-off: a mid-gap alpha_xx of 3e-17 next to 5e-3 differs between two runs)."""
    ref, other = _numeric(a), _numeric(b)
    assert sorted(ref) == sorted(other)
    for key, value in ref.items():
        finite = np.abs(value[np.isfinite(value)]) if value.size else np.zeros(1)
        scale = float(finite.max()) if finite.size else 0.0
        np.testing.assert_allclose(other[key], value, rtol=1e-12, atol=1e-12 * scale,
                                   equal_nan=True, err_msg=key)


def test_run_on_one_rank_writes_with_serial_hdf5(tmp_path, monkeypatch, comm):
    """``qgt-mpi run`` with a serial h5py on one rank: the streamed sweep, every checkpoint's
    k-slabs and the final file are written without MPI-IO, and equal the parallel run."""
    deck = _deck(tmp_path / "deck.toml")
    parallel, serial = tmp_path / "parallel.h5", tmp_path / "serial.h5"
    assert main(["run", str(deck), "-o", str(parallel)]) == 0
    opened = serial_h5py(monkeypatch)
    assert main(["run", str(deck), "-o", str(serial), "--checkpoint-interval", "0"]) == 0
    written = {Path(name).name: driver for name, mode, driver in opened if mode != "r"}
    assert {"serial.h5.partial", "serial.h5.checkpoint.kgrid.h5"} <= set(written), written
    assert "mpio" not in {driver for _n, _m, driver in opened}, opened
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deck.toml", "parallel.h5",
                                                          "serial.h5"]
    _assert_same_file(parallel, serial)


def test_result_save_on_one_rank_writes_with_serial_hdf5(tmp_path, monkeypatch, comm):
    """``Result.save`` with a serial h5py on one rank: the same file as with parallel HDF5."""
    model = q.models.build_flattened(q.models.haldane(t1=1.0, t2=0.3, mass=0.0, phi=np.pi / 2),
                                     gap=0.5)
    res = q.compute(model, kgrid=(8, 8), temperature=[0.5, 2.0], mu=[-0.25, 0.0],
                    delta=[0.01], kresolved=True)
    res.save(tmp_path / "parallel.h5")
    opened = serial_h5py(monkeypatch)
    res.save(tmp_path / "serial.h5")
    assert "mpio" not in {driver for _n, _m, driver in opened}, opened
    _assert_same_file(tmp_path / "parallel.h5", tmp_path / "serial.h5")
    np.testing.assert_array_equal(np.asarray(q.load(str(tmp_path / "serial.h5")).sigma_xy),
                                  np.asarray(res.sigma_xy))


def test_switch_forces_the_serial_path(monkeypatch):
    """``QGT_MPI_SERIAL_HDF5=1``: serial HDF5 with the MPI build too; the line says why."""
    monkeypatch.setenv(_deps.SERIAL_HDF5_ENV, "1")
    assert not _deps.parallel_h5py()
    line = _deps.serial_h5py_message(2)
    assert "QGT_MPI_SERIAL_HDF5=1" in line and "unset" in line and "\n" not in line
    monkeypatch.setenv(_deps.SERIAL_HDF5_ENV, "0")
    assert _deps.parallel_h5py() == bool(h5py.get_config().mpi)


@pytest.mark.mpi
def test_more_ranks_with_serial_h5py_stop_with_one_line(tmp_path_shared, monkeypatch, comm,
                                                        capsys):
    """Several ranks, serial h5py: ``run`` exits 2 on every rank, rank 0 prints one line
    naming the problem and the fix, no file is made; ``Result.save`` raises SerialH5pyError
    on every rank before any file is made."""
    if comm.size == 1:
        pytest.skip("needs more than one rank")
    deck = tmp_path_shared / "deck.toml"
    if comm.rank == 0:
        _deck(deck)
    comm.Barrier()
    model = q.models.build_flattened(q.models.haldane(t1=1.0, t2=0.3, mass=0.0, phi=np.pi / 2),
                                     gap=0.5)
    res = q.compute(model, kgrid=(6, 6), temperature=[1.0], mu=[0.0], delta=[0.01])
    serial_h5py(monkeypatch)
    capsys.readouterr()
    status = main(["run", str(deck), "-o", str(tmp_path_shared / "out.h5")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    expected = [f"qgt-mpi: input error: {_deps.serial_h5py_message(comm.size)}"]
    assert_all(comm, status == 2, f"exit status {status}, not 2")
    assert_all(comm, err == (expected if comm.rank == 0 else []), f"stderr: {err}")
    assert "no MPI support" in expected[0] and "one rank" in expected[0]
    with pytest.raises(_deps.SerialH5pyError, match="one rank only"):
        res.save(str(tmp_path_shared / "api.h5"))
    comm.Barrier()
    left = sorted(p.name for p in tmp_path_shared.iterdir())
    assert_all(comm, left == ["deck.toml"], f"files left: {left}")
