"""Publication figures from a result file: ``qgt-mpi plot OUTPUT [-d DIR]``.

:func:`plot_file` opens one HDF5 result file and draws every figure its contents support
(PNG and PDF, Agg backend), each module deciding from the data:

- ``transport``: the paper's Fig. 2 (σ_xx vs δ at T ≈ Δ/k_B, σ_xx vs T with Drude and
  geometric parts, 1/σ_xx slopes at low and high T) and σ_xy vs μ with its plateau;
- ``thermal``: the paper's Fig. 3 (Seebeck vs δ and vs T with the peak (T*, S*) and
  (k_B/e) ln 2), κ_xx/T and the Lorenz ratio;
- ``geometry``: BZ maps of Ω_n, Tr g_n and Tr g_n − |Ω_n| (needs /kgrid);
- ``bands``: bands along Γ–K–M–Γ and W(R_c) of the truncated flat-band model, rebuilt from
  the deck text stored in the file;
- ``superfluid`` (optional module): drawn when the file has a /superfluid group.

Serial: the CLI calls it on rank 0 only.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import h5py

from qgt_mpi.plot import bands, geometry, thermal, transport
from qgt_mpi.plot.style import Transport

__all__ = ["default_outdir", "plot_file"]

_TRANSPORT_FIGURES: tuple[Callable[[Transport, str], list[str]], ...] = (
    transport.plot_sigma_vs_delta,
    transport.plot_sigma_vs_temperature,
    transport.plot_inverse_sigma,
    transport.plot_hall_vs_mu,
    thermal.plot_seebeck_vs_delta,
    thermal.plot_seebeck_vs_temperature,
    thermal.plot_kappa_lorenz,
)
_FILE_FIGURES: tuple[Callable[[h5py.File, str], list[str]], ...] = (
    geometry.plot_geometry_maps,
    bands.plot_band_path,
    bands.plot_truncation_bandwidth,
)


def default_outdir(path: str) -> str:
    """``<directory of path>/<stem>_figures``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(path)), f"{stem}_figures")


def _superfluid(f: h5py.File, outdir: str) -> list[str]:
    """Figures of the /superfluid group when it exists and its plot module imports."""
    if "superfluid" not in f:
        return []
    try:
        module = importlib.import_module("qgt_mpi.plot.superfluid")
    except ImportError:
        return []
    return list(module.plot_superfluid(f, outdir))


def plot_file(path: str, outdir: str | None = None) -> list[str]:
    """Draw every figure the result file ``path`` supports; return the written file paths.

    Parameters
    ----------
    path : a qgt_mpi HDF5 result file.
    outdir : figure directory, created if needed; default :func:`default_outdir`.

    Raises
    ------
    OSError if the file cannot be opened; ValueError if it is not a qgt_mpi result file;
    KeyError if a required group or dataset is missing.
    """
    outdir = outdir or default_outdir(path)
    written: list[str] = []
    with h5py.File(path, "r") as f:
        if f.attrs.get("program") != "qgt_mpi":
            raise ValueError("not a qgt_mpi result file (no program='qgt_mpi' attribute)")
        if "transport" in f:
            tr = Transport.read(f)
            for figure in _TRANSPORT_FIGURES:
                written += figure(tr, outdir)
        for figure in _FILE_FIGURES:
            written += figure(f, outdir)
        written += _superfluid(f, outdir)
    return written
