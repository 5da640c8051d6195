"""Regenerate the tables of docs/performance.md from one JSON file of bench/run.py.

Every generated table sits between the markers ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` in the document; this script replaces what is between them (and only
that: the prose around the markers is kept) with a line naming the run (file, suite, commit,
dirty tree, source measured, machine, date, load) and a Markdown table built by the renderer
``NAME`` of :data:`RENDERERS`. A marker whose benchmark is missing from the JSON (``--only``,
or a failed benchmark) gets a line saying so instead of a table. Nothing else in the file is
touched, so running it twice gives the same file.

Why: the numbers in the docs must say which commit and machine they come from and be
reproducible with one command (``make bench``), instead of pasted output.

Usage::

    .venv/bin/python bench/report.py bench/results/latest.json [--doc docs/performance.md]
                                     [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MARKER = re.compile(r"(<!-- bench:([a-z0-9_]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """Markdown table (pipes) of already formatted cells.

    Parameters
    ----------
    header : list of str
        Column titles.
    rows : list of list of str
        Cells.

    Returns
    -------
    str
        Header, rule and one line per row.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _g(value: float | None, fmt: str = ".3g") -> str:
    """Number or "–" for None/NaN."""
    if value is None or value != value:
        return "–"
    return format(value, fmt)


def _cases(run: dict, name: str) -> list[dict]:
    """The case records of one benchmark (empty if it did not run or wrote nothing)."""
    bench = run["benchmarks"].get(name) or {}
    return (bench.get("record") or {}).get("cases", [])


def _record(run: dict, name: str) -> dict:
    """The whole record of one benchmark ({} if missing)."""
    return (run["benchmarks"].get(name) or {}).get("record") or {}


def _wall(case: dict) -> tuple[str, str]:
    """(min, median) wall time of a case, formatted."""
    w = case.get("wall_s") or {}
    return _g(w.get("min"), ".2f"), _g(w.get("median"), ".2f")


def _failed(cases: list[dict]) -> list[str]:
    """Lines naming failed cases (their last error line)."""
    out = []
    for c in cases:
        err = c.get("derived", {}).get("error")
        if err:
            last = [x for x in err.strip().splitlines() if x.strip(" -")][-1:] or ["?"]
            out.append(f"* case `{c['label']}` FAILED: `{last[0][:160]}`")
    return out


def render_run(run: dict) -> str:
    """Summary of the run: what ran, how long each benchmark took."""
    rows = []
    for name, b in run["benchmarks"].items():
        status = "ok" if b["returncode"] == 0 else f"failed ({b['returncode']})"
        ncases = len((b.get("record") or {}).get("cases", []))
        rows.append([f"`{name}`", f"`{b['command']}`", str(ncases), f"{b['seconds']:.0f}",
                     status])
    text = md_table(["benchmark", "command", "cases", "seconds", "status"], rows)
    return text + f"\n\nWhole suite: {run['seconds']:.0f} s."


def render_qgt(run: dict) -> str:
    """§1: end-to-end runs."""
    rows = []
    for c in _cases(run, "qgt"):
        p, d = c["parameters"], c["derived"]
        if "error" in d:
            continue
        rows.append([p["model"], f"{p['grid']}²", p["sweep"], str(p["np"]), f"{p['N_k']:,}",
                     f"{d['kpts_per_s_per_rank']:,.0f}", str(d["sweep_points"]),
                     str(d["cells"]), f"{d['eval_min_s']:.2f}", *_wall(c),
                     _g(c["peak_mib"], ".0f")])
    head = ["model", "grid", "sweep", "np", "N_k", "kpts/s/rank", "pts", "cells", "eval [s]",
            "wall min [s]", "wall median [s]", "peak MiB/rank"]
    return "\n".join([md_table(head, rows), *_failed(_cases(run, "qgt"))])


def render_kernels(run: dict) -> str:
    """§2: kernel throughput."""
    rows = []
    for c in _cases(run, "kernels"):
        d = c["derived"]
        if d.get("part") != "throughput":
            continue
        rows.append([c["label"], f"{c['parameters']['points']:,}",
                     f"{c['wall_s']['min'] * 1e3:.1f}", f"{c['wall_s']['median'] * 1e3:.1f}",
                     f"{d['evals_per_s']:.3e}", f"{d['values_per_s']:.3e}"])
    rec = _record(run, "kernels").get("parameters", {})
    return (md_table(["kernel", "points", "time min [ms]", "median [ms]", "evals/s",
                      "values/s"], rows)
            + f"\n\nkT = {rec.get('kT_meV')} meV, ζ and ε in [−1, 1] meV, δ in [0.005, 0.1] "
              f"meV, {rec.get('repeat')} repetitions; evals/s from the fastest; values/s "
              "counts every derivative order (and a = 0, 1, 2 for k_series).")


def render_kernels_quad(run: dict) -> str:
    """§2: closed forms against quadrature."""
    rows = []
    for c in _cases(run, "kernels"):
        d = c["derived"]
        if d.get("part") != "quadrature":
            continue
        rows.append([c["label"], str(c["parameters"]["pairs"]), f"{d['closed_scalar_us']:.1f}",
                     f"{d['closed_vec_us']:.2f}", f"{d['quad_us']:.0f}",
                     f"{d['quad_over_scalar']:.0f}", f"{d['quad_over_vec']:.0f}",
                     f"{d['max_rel_diff']:.1e}", f"{d['median_rel_diff']:.1e}"])
    head = ["kernel", "pairs", "closed 1-by-1 [µs]", "closed vec [µs]", "quad [µs]",
            "quad / 1-by-1", "quad / vec", "max rel diff", "median rel diff"]
    return md_table(head, rows) + "\n\nquad: `scipy.integrate.quad`, epsrel = 1e-10, epsabs = 0."


def render_scaling(run: dict) -> str:
    """§4: strong and weak scaling."""
    rows = []
    for c in _cases(run, "scaling"):
        p, d = c["parameters"], c["derived"]
        ph, im = d["phases_mean_s"], d["imbalance"]
        rows.append([("weak: " if p["weak"] else "strong: ") + p["case"], str(p["np"]),
                     f"{p['grid']}²", *_wall(c),
                     *(f"{ph[k]:.3f}" for k in ("setup", "solve", "geometry", "deposit",
                                                "reduce+evaluate")),
                     f"{d['kpass_max_s']:.3f}", f"{d['e_wall']:.2f}", f"{d['e_kpass']:.2f}",
                     *(f"{im[k]:.2f}" for k in ("solve", "geometry", "deposit")),
                     f"{d['kpts_per_s_per_rank']:,.0f}",
                     "oversubscribed" if p["oversubscribed"] else ""])
    head = ["case", "np", "grid", "wall min [s]", "wall median [s]", "setup [s]", "solve [s]",
            "geometry [s]", "deposit [s]", "reduce+evaluate [s]", "k-pass max [s]", "E wall",
            "E k-pass", "imbal solve", "imbal geom", "imbal deposit", "kpts/s/rank", "note"]
    rec = _record(run, "scaling").get("parameters", {})
    return (md_table(head, rows) + f"\n\n{rec.get('repeat')} runs per point; phases (mean over"
            " ranks) of the fastest; E from the fastest wall times.")


def _sparse(run: dict, part: int) -> list[dict]:
    """Sparse-benchmark cases of one part."""
    return [c for c in _cases(run, "sparse") if c["parameters"].get("part") == part]


def render_sparse_dense_slepc(run: dict) -> str:
    """§5.1: dense against SLEPc per k-point."""
    cases = _sparse(run, 1)
    rows = []
    for norb in sorted({c["parameters"]["norb"] for c in cases}):
        def pick(engine: str, oow: bool | None, norb: int = norb) -> dict | None:
            return next((c for c in cases if c["parameters"]["norb"] == norb
                         and c["parameters"]["engine"] == engine
                         and (oow is None or bool(c["parameters"]["oow"]) is oow)), None)

        d, s0, s1 = pick("dense", None), pick("slepc", False), pick("slepc", True)

        def cells(c: dict | None, its: str | None) -> list[str]:
            if c is None:
                return ["–"] * (4 if its else 3)
            out = [_g(c["derived"]["cpu_per_k_s"], ".4g"),
                   _g(c["derived"]["wall_per_k_s"], ".4g"),
                   _g(c["peak_mib"], ".0f")]
            return out + ([_g(c["derived"].get(its), ".1f")] if its else [])

        nnz = next(c for c in cases if c["parameters"]["norb"] == norb)["parameters"]["nnz"]
        rows.append([str(norb), str(nnz), *cells(d, None), *cells(s0, "eps_its"),
                     *cells(s1, "cg_its")])
    head = ["N", "nnz", "dense cpu/k [s]", "wall/k [s]", "MiB", "slepc cpu/k [s]",
            "wall/k [s]", "MiB", "EPS its", "+oow cpu/k [s]", "wall/k [s]", "MiB", "CG its"]
    rec = _record(run, "sparse")
    return (md_table(head, rows) + "\n\nEPS its: Krylov–Schur restarts per k-point (block "
            "Lanczos blocks from 2000 orbitals, `solvers/block_lanczos.py`); CG its: lockstep CG "
            "iterations of the Sternheimer solve per k-point.\nCrossover (CPU per k-point, "
            f"SLEPc + out-of-window = dense): N = {_g(rec.get('crossover_oow'), '.0f')}; "
            f"without out-of-window geometry: N = {_g(rec.get('crossover'), '.0f')}. "
            f"Per k-point: fastest of {rec.get('parameters', {}).get('repeat')} repetitions."
            + "".join("\n" + x for x in _failed(_cases(run, "sparse"))))


def render_sparse_proxy(run: dict) -> str:
    """§5.2: the bilayer proxy, SLEPc against SciPy and dense."""
    rows = []
    for c in _sparse(run, 2):
        p, d = c["parameters"], c["derived"]
        engine = ("scipy splu+eigsh" if p["engine"] == "scipy"
                  else "slepc" + (" +oow" if p["oow"] else ""))
        rows.append([str(p["norb"]), str(p["nnz"]), engine, f"{d['cpu_per_k_s']:.3f}",
                     f"{d['wall_per_k_s']:.3f}", _g(c["peak_mib"], ".0f"),
                     _g(d.get("eps_its"), ".0f"), _g(d.get("cg_its"), ".0f")])
    fit = _record(run, "sparse").get("part2") or {}
    if fit:
        rows.append([str(fit["norb"]), "–",
                     f"dense (extrapolated, N^{fit['dense_exponent']:.2f})",
                     f"{fit['dense_extrapolated_cpu_s']:.0f}", "–",
                     f"{fit['dense_3_matrices_mib']:.0f} (3 N² matrices)", "–", "–"])
    text = md_table(["N", "nnz", "engine", "cpu/k [s]", "wall/k [s]", "peak MiB", "EPS its",
                     "CG its"], rows)
    text += ("\n\nEPS its: block-Lanczos blocks per k-point (these sizes are above the 2000 "
             "orbitals from which block Lanczos replaces Krylov–Schur; the tables recorded at "
             "commit 80004c7 counted Krylov–Schur restarts).")
    if fit:
        text += (f"\n\nAt N = {fit['norb']}: SciPy/SLEPc = "
                 f"{fit['scipy_over_slepc_cpu']:.1f}× (CPU), {fit['scipy_over_slepc_wall']:.1f}×"
                 f" (wall); with out-of-window geometry {fit['scipy_over_slepc_oow_cpu']:.1f}× "
                 f"(CPU); dense/SLEPc = {fit['dense_over_slepc_cpu']:.0f}× (CPU, "
                 f"{fit['dense_over_slepc_oow_cpu']:.0f}× with out-of-window geometry); SLEPc "
                 f"CPU ∝ N^{_g(fit['slepc_exponent'], '.2f')} "
                 f"(N^{_g(fit['slepc_oow_exponent'], '.2f')} with it); "
                 f"max |ε(SciPy) − ε(SLEPc)| = {fit['max_eigenvalue_diff_meV']:.1e} meV.")
    return text


def render_sparse_pools(run: dict) -> str:
    """§5.3: pools against ranks under mpirun -n 2."""
    rows = []
    for c in _sparse(run, 3):
        p, d = c["parameters"], c["derived"]
        rows.append([p["model"], str(p["norb"]), str(p["pools"]), str(2 // p["pools"]),
                     f"{c['wall_s']['min']:.3f}",
                     " ".join(f"{w:.2f}" for w in c["wall_s"]["runs"]),
                     "/".join(f"{m:.0f}" for m in d["rss_peak"]), _g(d.get("cg_its"), ".0f"),
                     _g(d.get("max_energy_diff_meV"), ".1e")])
    rec = _record(run, "sparse").get("parameters", {})
    mode = ("`mpi_yield_when_idle = 1` (ranks yield when idle)" if rec.get("yield_idle")
            else "OpenMPI's default busy polling")
    return (md_table(["model", "N", "pools", "ranks/pool", "wall/k [s]", "all repeats",
                      "peak MiB per rank", "CG its", "max Δε [meV]"], rows)
            + f"\n\n`mpirun -n 2`, {mode}; SLEPc with out-of-window geometry.")


def render_wannier(run: dict) -> str:
    """§6: large Wannier90 models."""
    cases = {c["label"]: c for c in _cases(run, "wannier")}
    if not cases:
        return "(no data)"
    read, h, dh, comp = (cases[k] for k in ("read + check", "H(k)", "H(k) + dH/dk",
                                             "compute()"))
    p = read["parameters"]
    rows = [["orbitals, hoppings", f"{p['norb']}, {p['hoppings']:,}"],
            ["`_hr.dat` size", f"{p['hr_mib']:.1f} MiB"],
            ["read + check the files (parse, weights, Hermiticity, 2D slice)",
             f"{read['wall_s']['min']:.2f} s (median {read['wall_s']['median']:.2f})"],
            ["hopping table (R, a, b, t) per rank", f"{read['derived']['table_mib']:.1f} MiB"],
            [f"H(k), batch of {h['parameters']['batch']} k-points",
             f"{h['derived']['kpts_per_s']:.0f} k-points/s"],
            ["H(k) and ∂H/∂k", f"{dh['derived']['kpts_per_s']:.0f} k-points/s"],
            [f"`qgt_mpi.compute`, {comp['parameters']['grid']} × {comp['parameters']['grid']}"
             " grid, one sweep point", f"{comp['derived']['kpts_per_s']:.1f} k-points/s"],
            ["peak RSS of the process", f"{comp['peak_mib']:.0f} MiB"]]
    return md_table(["quantity", "value"], rows)


def render_tbg_build(run: dict) -> str:
    """§7: atomistic TBG model builds."""
    rows, extra = [], []
    relaxed = []
    for c in _cases(run, "tbg_build"):
        p, d = c["parameters"], c["derived"]
        label = c["label"]
        if label.startswith(("relax ", "file ", "solve ")):
            kind = label.split()[0]
            if kind == "relax":
                note = (f"grid {p['grid']}, {d['iterations']} Newton steps, "
                        f"max |u| = {d['max_displacement_nm']:.4f} nm")
            elif kind == "file":
                note = "POSCAR read with ASE, bonds, neutrality (MUMPS)"
            else:
                note = f"12 eigenvalues at K, MUMPS; nnz {d['nnz']:,}"
            relaxed.append([label, f"{c['wall_s']['min']:.3f}", note])
            continue
        if label.startswith("neutrality"):
            extra.append(f"`neutrality_energy` at m = {p['m']}: {c['wall_s']['min']:.1f} s "
                         f"(E_CN = {d['e_cn_meV']:.2f} meV).")
            continue
        rows.append([str(p["m"]), f"{p['theta_deg']:.4f}", f"{p['norb']:,}", f"{p['bonds']:,}",
                     f"{d['bonds_per_orbital']:.1f}", *_wall(c), f"{d['values_min_s']:.3f}"])
    tables = [md_table(["m", "θ [°]", "N", "bonds", "bonds/N", "build min [s]",
                        "build median [s]", "`values(k)` [s]"], rows), *extra]
    if relaxed:
        tables.append(md_table(["relaxed cells (issue 19)", "min [s]", "note"], relaxed))
    return "\n\n".join(tables)


def render_atomistic_perf(run: dict) -> str:
    """§8.1: atomistic TBG per k-point."""
    rows = []
    for c in _cases(run, "atomistic"):
        p, d = c["parameters"], c["derived"]
        if p.get("part") != "perf":
            continue
        method = {"auto": "auto (block Lanczos from 2000 orbitals)",
                  "krylovschur": "SLEPc Krylov–Schur"}.get(p["method"], p["method"])
        rows.append([f"m = {p['m']} (N = {p['norb']:,}), {p['layout']}",
                     method, f"{d['cpu_per_k_s']:.2f}", f"{c['wall_s']['median']:.2f}",
                     f"{c['wall_s']['min']:.2f}", str(p["timed_k"]),
                     "/".join(f"{m:.0f}" for m in d["peak_mib_per_rank"]), f"{d['load']:.1f}"])
    return "\n".join([md_table(["run", "method", "CPU s per k-point (per rank)",
                                "wall s per k (median)", "wall min", "k timed",
                                "peak RSS per rank [MiB]", "load"], rows),
                      *_failed(_cases(run, "atomistic"))])


def render_atomistic_grid(run: dict) -> str:
    """§8.3: the flat bands on an n×n grid on 2 ranks."""
    rows = []
    for c in _cases(run, "atomistic"):
        p, d = c["parameters"], c["derived"]
        if p.get("part") != "grid":
            continue
        rows.append([f"m = {p['m']} (N = {p['norb']:,}), {p['grid']} × {p['grid']}, "
                     f"{p['np']} ranks, chunk {p['chunk']}", f"{c['wall_s']['min']:.1f} s",
                     " / ".join(f"{x:.0f}" for x in d["cpu_per_rank_s"]) + " s",
                     f"{d['cpu_per_k_s']:.2f} s", str(d["corner_solves"]),
                     " / ".join(f"{m:.0f}" for m in d["peak_mib_per_rank"]) + " MiB",
                     f"{d['sigma_xx']:.2f}", f"{d['load']:.1f}"])
    return md_table(["run", "wall", "CPU per rank", "CPU per k-point", "corner solves",
                     "peak RSS per rank", "σ_xx [e²/h]", "load"], rows)


SCALE_LABELS = {"table": "issue 9 table", "1": "**1.** eV bands", "1'": "1'. meV bands",
                "2": "**2.** many bands", "3": "**3.** huge sweep", "4": "**4.** WannierBerri deck"}


def render_scale(run: dict) -> str:
    """§10: materials scale (issue 9 cases)."""
    rows = []
    for c in _cases(run, "scale"):
        p, d = c["parameters"], c["derived"]
        if "error" in d:
            continue
        wmin, wmed = _wall(c)

        def rel(est: float | None, ref: float | None, fmt: str) -> str:
            if est is None or not ref:
                return _g(est, fmt)
            return f"{est:{fmt}} ({(est / ref - 1) * 100:+.0f} %)".replace("-", "−")

        model = f"random {p['norb']} bands" if p["model"] == "model_file" else c["label"]
        rows.append([SCALE_LABELS.get(p["case"], p["case"]), model, f"{p['grid']}²", p["sweep"],
                     f"{d['cells']:,}", f"{d['eval_min_s']:.2f}", wmin, wmed,
                     f"{d['cpu_min_s']:.1f}", _g(c["peak_mib"], ".0f"),
                     rel(d["dry_run_s"], c["wall_s"]["min"], ".1f"),
                     rel(d["dry_run_mib"], c["peak_mib"], ".0f")])
    head = ["case", "deck", "grid", "sweep", "cells", "eval [s]", "wall min [s]",
            "wall median [s]", "cpu [s]", "peak MiB/rank", "dry-run s (vs wall min)",
            "dry-run MiB (vs peak)"]
    return "\n".join([md_table(head, rows), *_failed(_cases(run, "scale"))])


RENDERERS: dict[str, tuple[str | None, Callable[[dict], str]]] = {
    "run": (None, render_run),
    "qgt": ("qgt", render_qgt),
    "kernels": ("kernels", render_kernels),
    "kernels_quad": ("kernels", render_kernels_quad),
    "scaling": ("scaling", render_scaling),
    "sparse_dense_slepc": ("sparse", render_sparse_dense_slepc),
    "sparse_proxy": ("sparse", render_sparse_proxy),
    "sparse_pools": ("sparse", render_sparse_pools),
    "wannier": ("wannier", render_wannier),
    "tbg_build": ("tbg_build", render_tbg_build),
    "atomistic_perf": ("atomistic", render_atomistic_perf),
    "atomistic_grid": ("atomistic", render_atomistic_grid),
    "scale": ("scale", render_scale),
}


def provenance(run: dict, source_file: str) -> str:
    """One line naming the run a table comes from."""
    g, m = run["git"], run["machine"]
    dirty = ", tree dirty" if g["dirty"] else ""
    src = run.get("source", {}).get("mode", "?")
    src_text = {"head": "the committed HEAD", "worktree": "the working tree"}.get(src, src)
    lb, la = run["load_average_before"][0], run["load_average_after"][0]
    return (f"*Generated by `bench/report.py` from `{source_file}` ({run['suite']} suite, "
            f"{run['date']}): commit `{g['short']}`{dirty}, measured {src_text}; "
            f"{m['hostname']}, {m['cpu_model']}, {m['cores']} cores, "
            f"{_g(m.get('memory_gib'), '.0f')} GiB, Python {m.get('python')}, NumPy "
            f"{m.get('numpy')}, PETSc {m.get('petsc')}, {m.get('openmpi')}; load average "
            f"{lb:.1f} before, {la:.1f} after. Do not edit: rerun `make bench`.*")


def render(name: str, run: dict, source_file: str) -> str:
    """Text between the markers of ``name``."""
    if name not in RENDERERS:
        return f"*No renderer `{name}` in bench/report.py.*\n"
    bench, func = RENDERERS[name]
    head = provenance(run, source_file)
    if bench is not None:
        b = run["benchmarks"].get(bench)
        if b is None:
            return head + f"\n\n*Benchmark `{bench}` was not part of this run.*\n"
        if not (b.get("record") or {}).get("cases"):
            return head + (f"\n\n*Benchmark `{bench}` failed in this run (exit status "
                           f"{b['returncode']}); no table.*\n")
    return head + "\n\n" + func(run).rstrip() + "\n"


def rewrite(doc: str, run: dict, source_file: str) -> tuple[str, list[str]]:
    """``doc`` with every marked block regenerated; the names of the blocks.

    Parameters
    ----------
    doc : str
        Text of the document.
    run : dict
        JSON of bench/run.py.
    source_file : str
        How the JSON is named in the provenance line.

    Returns
    -------
    tuple
        New text and the marker names found, in order.
    """
    names: list[str] = []

    def sub(match: re.Match) -> str:
        names.append(match.group(2))
        return match.group(1) + render(match.group(2), run, source_file) + match.group(4)

    return MARKER.sub(sub, doc), names


def main() -> int:
    """Rewrite the document (or, with ``--check``, report whether it is up to date)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", type=Path, help="a JSON file of bench/run.py (e.g. latest.json)")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "performance.md")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if the document differs from what this would write")
    args = p.parse_args()
    run = json.loads(args.json.read_text())
    path = args.json.resolve()
    if path.name == "latest.json":  # name the dated file latest.json copies, when present
        stem = (f"{run['date'][:19].replace('-', '').replace(':', '').replace('T', '-')}-"
                f"{run['git']['short'] or 'nogit'}{'-dirty' if run['git']['dirty'] else ''}"
                f"-{run['suite']}.json")
        path = path.with_name(stem) if path.with_name(stem).exists() else path
    try:
        source_file = str(path.relative_to(REPO))
    except ValueError:
        source_file = path.name
    doc = args.doc.read_text()
    new, names = rewrite(doc, run, source_file)
    if args.check:
        print("up to date" if new == doc else "out of date", f"({len(names)} blocks)")
        return int(new != doc)
    args.doc.write_text(new)
    print(f"{args.doc}: regenerated {len(names)} blocks ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
