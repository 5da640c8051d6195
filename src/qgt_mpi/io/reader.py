"""Read a result file back and summarise it for humans (``qgt-mpi info``). Serial.

``info`` prints every part by default; ``--group`` keeps some parts (provenance, bands,
geometry, transport, timing) and ``--mu/--delta/--temperature`` pick the transport rows
(nearest sweep points; default: every μ and δ at the lowest, middle and highest T).
"""

from __future__ import annotations

import h5py
import numpy as np

from qgt_mpi.io.selection import Selection, delta_entries, nearest

PARTS = ("provenance", "bands", "geometry", "transport", "timing")

_SHOWN = ("sigma_xx", "sigma_xx_drude", "sigma_xy", "seebeck", "kappa_xx", "lorenz_ratio")


def file_warnings(path: str) -> list[str]:
    """Problems a reader should be told about: an incomplete or a foreign file."""
    try:
        with h5py.File(path, "r") as f:
            program, complete = f.attrs.get("program"), f.attrs.get("complete")
    except OSError:
        return []  # unreadable: the caller reports the error itself
    if program != "qgt_mpi":
        return [f"{path} is not a qgt_mpi result file (program attribute {program!r})"]
    if not bool(complete):
        return [f"{path} is incomplete (complete = false): the run that wrote it did not "
                "finish; its numbers may be missing or wrong"]
    return []


def load(path: str) -> dict[str, object]:
    """All reduced datasets of a result file as a nested dict (k-resolved fields skipped)."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("program") != "qgt_mpi":
            raise ValueError("not a qgt_mpi result file (no program='qgt_mpi' attribute)")
        out["attrs"] = dict(f.attrs)
        for group in ("bands", "geometry", "valley", "transport", "timing", "model"):
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
    fixed = "mu" not in tr  # fixed-filling sweep: axis filling_target (issue 11)
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


def _valley_lines(v: dict, attrs: dict) -> list[str]:
    """The /valley group: Chern numbers and fluxes per group, or why it is missing."""
    if "chern" not in v:
        return [f"valley: not computed ({attrs.get('not_computed', '?')})"]
    chern = np.round(v["chern"], 9) + 0.0  # no "-0"
    return [f"valley: Chern (valley -1, valley +1, bands, window) {_row(chern)}",
            f"  largest plaquette flux [pi] {_row(v['max_flux'])}; (1/2pi)int Tr g "
            f"(valley -1, +1, window) {_row(v['trace_integral'])}"]


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
    if "geometry" in data and "geometry" in parts:
        g = data["geometry"]
        lines.append(f"geometry: Chern {_row(g['chern'])}; (1/2pi)int Omega "
                     f"{_row(g['chern_curvature'])}")
        lines.append(f"  Omega_I [a^2] {_row(g['omega_I'])} (bound {_row(g['omega_I_bound'])});"
                     f" trace violation {_row(g['trace_violation'])}")
        if "chern_max_flux" in g:
            lines.append(f"  largest plaquette flux [pi] {_row(g['chern_max_flux'])}")
    if "valley" in data and "geometry" in parts:
        lines.extend(_valley_lines(data["valley"], data["valley_attrs"]))
    if "transport" in data and "transport" in parts:
        lines.extend(_transport_lines(data["transport"], sel or Selection()))
    if "timing" in data and "timing" in parts:
        t = data["timing"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in t["phases"]]
        lines.append("timing (max over ranks) [s]: " + ", ".join(
            f"{n} {s[2]:.3g}" for n, s in zip(names, t["seconds"], strict=True)))
    return "\n".join(lines)
