"""Wannier90 test files made from a known model (the Haldane model, theory §2.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from decks import HALDANE_PARAMS

from qgt_mpi.models import haldane
from qgt_mpi.models.w90write import embed, hr_text, tb_text, xyz_text

SCALE = 2.5  # Å per lattice constant in the written files


def haldane_files(directory: Path, plane=(1, 2)) -> dict:
    """Write seed_hr.dat, seed_centres.xyz and seed_tb.dat of the Haldane model."""
    model = haldane(**HALDANE_PARAMS)
    lat, centres, R3 = embed(model, plane=plane, scale=SCALE)
    files = {"hr": directory / "seed_hr.dat", "centres": directory / "seed_centres.xyz",
             "tb": directory / "seed_tb.dat"}
    files["hr"].write_text(hr_text(model, R3))
    files["centres"].write_text(xyz_text(centres))
    files["tb"].write_text(tb_text(model, lat, centres, R3))
    return {"model": model, "lattice": lat, **{k: str(v) for k, v in files.items()}}


def sample_k(n: int = 16, seed: int = 3) -> np.ndarray:
    """Random Cartesian k-points (1/a) spanning several Brillouin zones."""
    return np.random.default_rng(seed).uniform(-7.0, 7.0, size=(n, 2))
