"""Read a result file back and summarise it for humans (``qgt-mpi info``). Serial.

``info`` prints every part by default; ``--group`` keeps some parts (provenance, bands,
geometry, transport, timing) and ``--mu/--delta/--temperature`` pick the transport rows
(nearest sweep points; default: every μ and δ at the lowest, middle and highest T).
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from qgt_mpi.geometry.chern import GROUP_MAX
from qgt_mpi.io.selection import Selection, delta_entries, nearest
from qgt_mpi.run.diagnostics import describe_indices

PARTS = ("provenance", "bands", "geometry", "transport", "timing")

MAX_GROUP_LINES = 24  # touching groups printed one per line; the rest are counted

_SHOWN = ("sigma_xx", "sigma_xx_drude", "sigma_xy", "seebeck", "kappa_xx", "lorenz_ratio")


def file_warnings(path: str) -> list[str]:
    """Problems a reader should be told about: an incomplete or a foreign file."""
    from qgt_mpi.io.checks import InputError
    from qgt_mpi.io.input_guard import check_input

    try:
        check_input(path, "result", "FILE")
        with h5py.File(path, "r") as f:
            program, complete = f.attrs.get("program"), f.attrs.get("complete")
    except (OSError, InputError):
        return []  # unreadable: the caller reports the error itself
    if program != "qgt_mpi":
        return [f"{path} is not a qgt_mpi result file (program attribute {program!r})"]
    if not bool(complete):
        return [f"{path} is incomplete (complete = false): the run that wrote it did not "
                "finish; its numbers may be missing or wrong"]
    return []


def load(path: str) -> dict[str, Any]:
    """All reduced datasets of a result file as a nested dict (k-resolved fields skipped)."""
    from qgt_mpi.io.input_guard import check_input

    check_input(path, "result", "FILE")  # a regular file (a FIFO blocked the open forever)
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("program") != "qgt_mpi":
            raise ValueError("not a qgt_mpi result file (no program='qgt_mpi' attribute)")
        out["attrs"] = dict(f.attrs)
        for group in ("bands", "geometry", "valley", "transport", "timing", "model",
                      "bands_path"):
            if group in f:
                out[group] = {k: v[()] for k, v in f[group].items()
                              if isinstance(v, h5py.Dataset)}  # (/model/definition: a group)
                out[group + "_attrs"] = dict(f[group].attrs)
    return out


def _row(values: np.ndarray) -> str:
    """Format a short vector."""
    return " ".join(f"{v: .6g}" for v in np.ravel(values))


def _transport_lines(tr: dict, sel: Selection) -> list[str]:
    """σ, S, κ for the selected (μ, δ, T); δ entries printed as their values."""
    fixed = "mu" not in tr  # fixed-filling sweep: axis filling_target (theory §4.7)
    temps, delta = tr["temperature"], np.atleast_2d(tr["delta"])
    mus = tr["filling_target"] if fixed else tr["mu"]
    i_t = (nearest(temps, sel.temperature, log=True) if sel.temperature
           else sorted({0, temps.size // 2, temps.size - 1}))
    i_mu = nearest(mus, sel.mu) if sel.mu else range(mus.size)
    i_d = delta_entries(delta, sel.delta) if sel.delta else range(delta.shape[0])
    name = "filling" if fixed else "mu"
    lines = [f"transport: {mus.size} {name} x {delta.shape[0]} delta x {temps.size} T "
             f"(showing {len(i_mu)} x {len(i_d)} x {len(i_t)})"]
    shown = [k for k in _SHOWN if k in tr]
    lines.append(("  filling" if fixed else "  mu[meV]") + "  delta[meV]      T[K]  "
                 + "  ".join(f"{k:>14}" for k in shown))
    for im in i_mu:
        for idl in i_d:
            d_text = ",".join(f"{v:.3g}" for v in np.unique(delta[idl]))
            for it in i_t:
                vals = "  ".join(f"{tr[k][im, idl, it]:>14.6g}" for k in shown)
                lines.append(f"  {mus[im]:7.4g}  {d_text:>10} {temps[it]:9.4g}  {vals}")
    return lines


def _group_lines(g: dict) -> list[str]:
    """Touching bands (theory §5.7): which per-band numbers are undefined, and the groups'."""
    undefined = np.flatnonzero(g.get("band_undefined", np.zeros(0)))
    if not undefined.size:
        return []
    lines = [f"  touching: {describe_indices(undefined, g['band_undefined'].size)}: per-band "
             "Chern number, curvature, metric and trace condition undefined (NaN); their "
             "groups:"]
    for i, (first, last) in enumerate(g["group_bands"][:MAX_GROUP_LINES]):
        head = f"    group bands {first}-{last}:"
        if not g["group_computed"][i]:
            lines.append(f"{head} not computed (more than {GROUP_MAX} bands)")
            continue
        lines.append(f"{head} Chern {g['group_chern'][i]:.0f}; (1/2pi)int Omega "
                     f"{g['group_chern_curvature'][i]:.6g}; (1/2pi)int Tr g "
                     f"{g['group_trace_integral'][i]:.6g}; trace violation "
                     f"{g['group_trace_violation'][i]:.6g}; largest plaquette flux [pi] "
                     f"{g['group_chern_max_flux'][i]:.3g}")
    if len(g["group_bands"]) > MAX_GROUP_LINES:
        lines.append(f"    ... and {len(g['group_bands']) - MAX_GROUP_LINES} more groups "
                     "(/geometry/group_*)")
    return lines


def _valley_lines(v: dict, attrs: dict) -> list[str]:
    """The /valley group: Chern numbers and fluxes per group, or why it is missing."""
    if "chern" not in v:
        return [f"valley: not computed ({attrs.get('not_computed', '?')})"]
    chern = np.round(v["chern"], 9) + 0.0  # no "-0"
    return [f"valley: Chern (valley -1, valley +1, bands, window) {_row(chern)}",
            f"  largest plaquette flux [pi] {_row(v['max_flux'])}; (1/2pi)int Tr g "
            f"(valley -1, +1, window) {_row(v['trace_integral'])}"]


def _path_line(p: dict, attrs: dict) -> str:
    """The /bands_path group in one line: path, points, bands, energy range, window edges."""
    labels = " ".join(s.decode() if isinstance(s, bytes) else str(s) for s in p["labels"])
    e = p["energies"]
    text = (f"bands_path: {labels}, {e.shape[0]} points x {e.shape[1]} bands "
            f"(solver {attrs.get('solver', '?')}), energies {e.min():.6g}..{e.max():.6g} meV")
    if "window_edges" in p:
        below, above = p["window_edges"][:, 0], p["window_edges"][:, 1]
        low = f"{np.nanmax(below):.6g}" if np.isfinite(below).any() else "none"
        high = f"{np.nanmin(above):.6g}" if np.isfinite(above).any() else "none"
        text += f"; window edges: highest below {low}, lowest above {high} meV"
    return text


def summarize(path: str, parts: list[str] | None = None,
              sel: Selection | None = None) -> str:
    """Multi-line human summary of a result file (``parts`` of PARTS; default all).

    Raises ValueError for an unknown part name.
    """
    parts = list(parts or PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"--group {unknown}: choose from {', '.join(PARTS)}")
    data = load(path)
    a = data["attrs"]
    lines = [f"{path}: {a.get('title', '')}"]
    if "provenance" in parts:
        lines += [f"  qgt_mpi {a.get('version')}  created {a.get('created')} on "
                  f"{a.get('host')}  ranks {a.get('n_ranks')}  complete "
                  f"{bool(a.get('complete'))}", f"  input {a.get('input_file')}"]
    if "bands" in data and "bands" in parts:
        b = data["bands"]
        lines.append(f"bands: bandwidth [meV] {_row(b['bandwidth'])}; min gap {_row(b['min_gap'])}")
    if "bands_path" in data and "bands" in parts:
        lines.append(_path_line(data["bands_path"], data["bands_path_attrs"]))
    if "geometry" in data and "geometry" in parts:
        g = data["geometry"]
        lines.append(f"geometry: Chern {_row(g['chern'])}; (1/2pi)int Omega "
                     f"{_row(g['chern_curvature'])}")
        lines.append(f"  Omega_I [a^2] {_row(g['omega_I'])} (bound {_row(g['omega_I_bound'])});"
                     f" trace violation {_row(g['trace_violation'])}")
        if "chern_max_flux" in g:
            lines.append(f"  largest plaquette flux [pi] {_row(g['chern_max_flux'])}")
        lines.extend(_group_lines(g))
    if "valley" in data and "geometry" in parts:
        lines.extend(_valley_lines(data["valley"], data["valley_attrs"]))
    if "transport" in data and "transport" in parts:
        lines.extend(_transport_lines(data["transport"], sel or Selection()))
    if "timing" in data and "timing" in parts:
        t = data["timing"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in t["phases"]]
        lines.append("timing (max over ranks) [s]: " + ", ".join(
            f"{n} {s[2]:.3g}" for n, s in zip(names, t["seconds"], strict=True)))
        if "rank0_peak_memory" in t:  # rank 0 against the other ranks (timing.py)
            lines.append("peak memory at phase end, rank 0 / max over the others [MiB]: "
                         + ", ".join(f"{n} {m[0]:.0f}/{m[1]:.0f}" for n, m in
                                     zip(names, t["rank0_peak_memory"], strict=True)
                                     if np.isfinite(m[0])))
    return "\n".join(lines)
