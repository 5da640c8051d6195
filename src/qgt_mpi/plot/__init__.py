"""Figures from a result file: ``qgt-mpi plot OUTPUT [-d DIR] [options]``.

:func:`plot_file` opens one HDF5 result file and draws every figure its contents support
(PNG at 300 dpi and PDF with Type 42 fonts, Agg backend, journal column widths), each
module deciding from the data:

- ``sweep``: every transport quantity against each sweep axis (T, μ, δ) with the other axes
  fixed by ``--mu/--delta/--temperature`` (nearest point, stated in the legend);
- ``transport``: the paper's Fig. 2 (σ_xx vs δ at T ≈ Δ/k_B, σ_xx vs T with Drude and
  geometric parts, 1/σ_xx slopes at low and high T) and σ_xy vs μ with its plateau;
- ``thermal``: the paper's Fig. 3 (Seebeck vs δ and vs T with the peak (T*, S*) and
  (k_B/e) ln 2), κ_xx/T and the Lorenz ratio;
- ``geometry``: BZ maps of Ω_n, Tr g_n and Tr g_n − |Ω_n|, and of any k-resolved field
  (``--map``; needs /kgrid);
- ``bands``: the file's ``/bands_path`` (a ``[bands]`` run or ``qgt-mpi bands``; window
  bands and their edges, or the bands around the Fermi level: plot/bandpath.py), else
  bands along Γ–K–M–Γ or ``--path`` rebuilt from the deck text stored in the file; W(R_c)
  of the truncated flat-band model for truncated decks (``--bandwidth`` for any flattened
  deck: it costs seconds per R_c and does not depend on the run);
- ``superfluid`` (optional module): drawn when the file has a /superfluid group.

``--bands`` chooses the bands of the path figure and of the maps (default: the window, or
a few bands around the Fermi level). A figure that cannot be drawn prints one line on
stderr saying why (plot.style.skip); none is skipped silently.

Serial: the CLI calls it on rank 0 only.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import h5py

from qgt_mpi.plot import bandpath, bands, geometry, sweep, thermal, transport
from qgt_mpi.plot.style import Transport, skip

__all__ = ["PlotOptions", "default_outdir", "plot_file"]


@dataclass
class PlotOptions:
    """What ``qgt-mpi plot`` draws beyond the defaults (see the module docstring).

    ``only``: restrict to these figure families ("sweep", "paper", "maps", "bands").
    """

    x: list[str] | None = None
    select: sweep.Selection = field(default_factory=sweep.Selection)
    quantities: list[str] | None = None
    path: str | None = None
    maps: list[str] = field(default_factory=list)
    bandwidth: bool = False
    only: list[str] | None = None
    layout: str = "single"
    bands: list[int] | str | None = None  # --bands: indices, or "all"; None = the default rule

    def wants(self, family: str) -> bool:
        """Whether the figure family is drawn."""
        return self.only is None or family in self.only

_TRANSPORT_FIGURES: tuple[Callable[[Transport, str], list[str]], ...] = (
    transport.plot_sigma_vs_delta,
    transport.plot_sigma_vs_temperature,
    transport.plot_inverse_sigma,
    transport.plot_hall_vs_mu,
    thermal.plot_seebeck_vs_delta,
    thermal.plot_seebeck_vs_temperature,
    thermal.plot_kappa_lorenz,
)


def default_outdir(path: str) -> str:
    """``<directory of path>/<stem>_figures``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(path)), f"{stem}_figures")


def _superfluid(f: h5py.File, outdir: str) -> list[str]:
    """Figures of the /superfluid group when it exists and its plot module imports."""
    if "superfluid" not in f:
        return skip("superfluid_weight", "the file has no /superfluid group (deck without "
                    "[superfluid])")
    try:
        module = importlib.import_module("qgt_mpi.plot.superfluid")
    except ImportError as exc:
        return skip("superfluid_weight", f"its plot module does not import ({exc})")
    return list(module.plot_superfluid(f, outdir))


def plot_file(path: str, outdir: str | None = None,
              options: PlotOptions | None = None) -> list[str]:
    """Draw every figure the result file ``path`` supports; return the written file paths.

    Parameters
    ----------
    path : a qgt_mpi HDF5 result file.
    outdir : figure directory, created if needed; default :func:`default_outdir`.
    options : selections, band path, extra maps (:class:`PlotOptions`).

    Raises
    ------
    OSError if the file cannot be opened; ValueError if it is not a qgt_mpi result file or
    an option is malformed; KeyError if a requested group, quantity or field is missing.
    """
    outdir = outdir or default_outdir(path)
    opt = options or PlotOptions()
    from qgt_mpi.io.input_guard import check_input

    check_input(path, "result", "FILE")  # a regular file, never a FIFO or device
    written: list[str] = []
    with h5py.File(path, "r") as f:
        if f.attrs.get("program") != "qgt_mpi":
            raise ValueError("not a qgt_mpi result file (no program='qgt_mpi' attribute)")
        if "transport" in f:
            tr = Transport.read(f)
            if opt.wants("sweep"):
                written += sweep.plot_sweeps(tr, outdir, opt.x, opt.select, opt.quantities,
                                             opt.layout)
            if opt.wants("paper"):
                for figure in _TRANSPORT_FIGURES:
                    written += figure(tr, outdir)
        elif opt.wants("sweep") or opt.wants("paper"):
            skip("transport figures", "the file has no /transport group (a qgt-mpi bands "
                 "file, or a run that did not finish)")
        if opt.wants("maps"):
            written += geometry.plot_geometry_maps(f, outdir, opt.bands)
            for name in opt.maps:
                written += geometry.plot_kfield_map(f, outdir, name, opt.bands)
        if opt.wants("bands"):
            if "bands_path" in f and not opt.path:  # the run's own path and solver
                written += bandpath.plot_path_file(f, outdir, opt.bands)
            else:
                written += bands.plot_band_path(f, outdir, opt.path, opt.bands)
            written += bands.plot_truncation_bandwidth(f, outdir, opt.bandwidth)
        if opt.wants("paper"):
            written += _superfluid(f, outdir)
    return written
