"""Superfluid weight D_s(T) of a flat band with the BKT line and T_BKT (theory §6).

Reads the ``/superfluid`` group: D_s,xx(T) and √det D_s(T) (minimal metric, and √det with the
ordinary metric for comparison), the BKT criterion 8 k_B T/π (D_s in e²/ħ² × meV), and T_BKT
where √det D_s crosses it. Serial; Agg backend; PNG + PDF.
"""

from __future__ import annotations

import math

import h5py
import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K
from qgt_mpi.plot.style import new_figure, save, skip

_NAME = "superfluid_weight"


def _sqrt_det(d_s: np.ndarray) -> np.ndarray:
    """√det of a stack of 2×2 tensors (negative determinants clipped to 0)."""
    return np.sqrt(np.clip(np.linalg.det(d_s), 0.0, None))


def _read(f: h5py.File) -> dict[str, np.ndarray | float]:
    """Arrays and scalars the figure needs from /superfluid."""
    g = f["superfluid"]
    return {"T": g["temperature"][()], "D": g["D_s"][()], "D_ord": g["D_s_ordinary_metric"][()],
            "line": g["bkt_line"][()], "T_bkt": float(g["T_BKT"][()]),
            "T_c": float(g.attrs.get("T_c_mean_field_K", math.nan)),
            "U": float(g.attrs.get("U_meV", math.nan)),
            "nu": float(g.attrs.get("filling", math.nan))}


def _draw(ax, d: dict) -> None:
    """Curves, the BKT line and the T_BKT marker on one axes."""
    temps = d["T"]
    ax.plot(temps, d["D"][:, 0, 0], label=r"$D_{s,xx}$ (minimal metric)")
    ax.plot(temps, _sqrt_det(d["D"]), "--", label=r"$\sqrt{\det D_s}$ (minimal metric)")
    ax.plot(temps, _sqrt_det(d["D_ord"]), ":", color="0.4",
            label=r"$\sqrt{\det D_s}$ (ordinary metric)")
    ax.plot(temps, d["line"], color="k", lw=1, label=r"$8 k_B T/\pi$ (BKT)")
    if math.isfinite(d["T_bkt"]):
        y = 8.0 * K_B_MEV_PER_K * d["T_bkt"] / math.pi  # on the BKT line (theory §6)
        ax.plot([d["T_bkt"]], [y], "o", color="C3",
                label=rf"$T_{{BKT}}$ = {d['T_bkt']:.4g} K")
        ax.axvline(d["T_bkt"], color="C3", lw=0.8, alpha=0.6)
    if math.isfinite(d["T_c"]):
        ax.axvline(d["T_c"], color="0.5", lw=0.8, ls="-.",
                   label=rf"$T_c^{{MF}}$ = {d['T_c']:.4g} K")
    top = 1.15 * max(float(np.max(d["D"][:, 0, 0], initial=0.0)),
                     float(np.max(_sqrt_det(d["D_ord"]), initial=0.0)), 1e-30)
    ax.set_ylim(0.0, top)
    ax.set_xscale("log" if temps.min() > 0 and temps.max() / temps.min() > 20 else "linear")
    ax.set_xlabel("T  [K]")
    ax.set_ylabel(r"$D_s$  [$e^2/\hbar^2$ meV]")
    ax.set_title(rf"flat-band superfluid weight, U = {d['U']:.3g} meV, $\nu$ = {d['nu']:.3g}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))


def plot_superfluid(h5file: h5py.File, outdir: str) -> list[str]:
    """Draw D_s(T) with the BKT line and T_BKT; return the written PNG and PDF paths.

    Parameters
    ----------
    h5file : an open qgt_mpi result file with a ``/superfluid`` group (else nothing drawn).
    outdir : figure directory (created if needed).
    """
    if "superfluid" not in h5file:
        return skip(_NAME, "the file has no /superfluid group (deck without [superfluid])")
    fig, axes = new_figure(width=6.8, height=3.8)
    _draw(axes[0, 0], _read(h5file))
    return save(fig, outdir, _NAME)
