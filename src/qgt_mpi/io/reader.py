"""Read a result file back and summarise it for humans (``qgt-mpi info``). Serial."""

from __future__ import annotations

import h5py
import numpy as np

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
        for group in ("bands", "geometry", "transport", "timing", "model"):
            if group in f:
                out[group] = {k: f[group][k][()] for k in f[group]}
                out[group + "_attrs"] = dict(f[group].attrs)
    return out


def _row(values: np.ndarray) -> str:
    """Format a short vector."""
    return " ".join(f"{v: .6g}" for v in np.ravel(values))


def _transport_lines(tr: dict) -> list[str]:
    """σ, S, κ at the lowest, middle and highest temperature for each μ and δ."""
    temps, mus = tr["temperature"], tr["mu"]
    picks = sorted({0, temps.size // 2, temps.size - 1})
    lines = [f"transport: {mus.size} mu x {tr['delta'].shape[0]} delta x {temps.size} T"]
    header = "  mu[meV] delta#   T[K]  " + "  ".join(f"{k:>14}" for k in _SHOWN)
    lines.append(header)
    for i_mu, mu in enumerate(mus):
        for i_d in range(tr["delta"].shape[0]):
            for i_t in picks:
                vals = "  ".join(f"{tr[k][i_mu, i_d, i_t]:>14.6g}" for k in _SHOWN)
                lines.append(f"  {mu:7.4g} {i_d:6d} {temps[i_t]:6.3g}  {vals}")
    return lines


def summarize(path: str) -> str:
    """Multi-line human summary of a result file."""
    data = load(path)
    a = data["attrs"]
    lines = [
        f"{path}: {a.get('title', '')}",
        f"  qgt_mpi {a.get('version')}  created {a.get('created')} on {a.get('host')}"
        f"  ranks {a.get('n_ranks')}  complete {bool(a.get('complete'))}",
        f"  input {a.get('input_file')}",
    ]
    if "bands" in data:
        b = data["bands"]
        lines.append(f"bands: bandwidth [meV] {_row(b['bandwidth'])}; min gap {_row(b['min_gap'])}")
    if "geometry" in data:
        g = data["geometry"]
        lines.append(f"geometry: Chern {_row(g['chern'])}; (1/2pi)int Omega "
                     f"{_row(g['chern_curvature'])}")
        lines.append(f"  Omega_I [a^2] {_row(g['omega_I'])} (bound {_row(g['omega_I_bound'])});"
                     f" trace violation {_row(g['trace_violation'])}")
    if "transport" in data:
        lines.extend(_transport_lines(data["transport"]))
    if "timing" in data:
        t = data["timing"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in t["phases"]]
        lines.append("timing (max over ranks) [s]: " + ", ".join(
            f"{n} {s[2]:.3g}" for n, s in zip(names, t["seconds"], strict=True)))
    return "\n".join(lines)
