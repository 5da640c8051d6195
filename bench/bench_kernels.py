"""Throughput of the closed-form kernels (theory §3) and their cost against adaptive quadrature.

Part 1: evaluations per second of ``k_series`` and ``lambda_series`` (qmax = 9, 17),
``w_pair`` (a = 0, 1, 2) and ``y_pair`` per pair, and ``polygamma(20, z)``, on 1e5 random
points (best of ``--repeat`` runs).

Part 2: time per evaluation of ``w_pair(0, ...)`` and ``y_pair`` (called one pair at a time,
and vectorised) against ``scipy.integrate.quad`` of their defining integrals,

    W^(0)_nm = (1/π) ∫ dω (−f'(ω−μ)) L_n(ω) L_m(ω),
    Y_nm     = −(2/π) ∫ dω f(ω−μ) L_n(ω) Re[(ω − ε_m + iδ_m)^(−2)],

with L_n(ω) = −δ_n / ((ω−ε_n)² + δ_n²), at a requested relative accuracy of 1e-10 (the
closed forms are accurate to ~1e-13); the agreement is printed too.

Why: every sweep point of a run costs these kernels (the cells of the energy tree and the
point masses are evaluated with them), so their throughput bounds the evaluation phase; the
comparison with quadrature shows what the closed forms of theory §3 buy and that they agree.
docs/performance.md §2 quotes both tables.

Suite presets (bench/run.py): ``quick`` = 10⁵ points, 100 quadrature pairs; ``full`` =
10⁵ points, 200 pairs (the sizes of the tables in the docs); 3 repetitions each.

Usage::

    .venv/bin/python bench/bench_kernels.py [--n 100000] [--nquad 200] [--repeat 3]
                                            [--suite quick|full] [--json FILE]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from _common import add_suite_options, case_record, format_table, write_record
from scipy.integrate import quad

from qgt_mpi.kernels.closed import (
    fermi,
    k_series,
    lambda_series,
    minus_fermi_prime,
    w_pair,
    y_pair,
)
from qgt_mpi.kernels.polygamma import polygamma

QUAD_EPSREL = 1e-10
KT = 0.05  # meV (≈ 0.58 K)


def _parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="points per throughput test")
    p.add_argument("--nquad", type=int, default=200, help="pairs for the quadrature test")
    p.add_argument("--repeat", type=int, default=3, help="repetitions (best is kept)")
    p.add_argument("--seed", type=int, default=1)
    add_suite_options(p)
    return p


SUITE_SIZES = {"quick": {"n": 100_000, "nquad": 100, "repeat": 3},
               "full": {"n": 100_000, "nquad": 200, "repeat": 3}}


def wall_times(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times of ``repeat`` calls of ``fn`` (s)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def random_pairs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Random band energies in [−1, 1] meV and broadenings in [0.005, 0.1] meV.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source.
    n : int
        Number of pairs.

    Returns
    -------
    dict
        ``eps_n``, ``eps_m``, ``delta_n``, ``delta_m`` arrays of length n.
    """
    return {
        "eps_n": rng.uniform(-1.0, 1.0, n),
        "eps_m": rng.uniform(-1.0, 1.0, n),
        "delta_n": rng.uniform(0.005, 0.1, n),
        "delta_m": rng.uniform(0.005, 0.1, n),
    }


def throughput_rows(n: int, repeat: int, rng: np.random.Generator,
                    records: list[dict] | None = None) -> list[list[str]]:
    """Evaluations per second of each kernel on ``n`` points.

    Parameters
    ----------
    n : int
        Points (or pairs).
    repeat : int
        Repetitions; the best time is used.
    rng : numpy.random.Generator
        Random source.
    records : list, optional
        Where to append one :func:`_common.case_record` per kernel.

    Returns
    -------
    list of list of str
        Rows: kernel, points, time, evaluations/s, derivative values/s.
    """
    zeta = rng.uniform(-1.0, 1.0, n) - 1j * rng.uniform(0.005, 0.1, n)
    z = 0.5 + rng.uniform(0.0, 50.0, n) + 1j * rng.uniform(-50.0, 50.0, n)
    pr = random_pairs(rng, n)
    tests = [
        ("k_series qmax=9", lambda: k_series(zeta, KT, 9), 3 * 10),
        ("k_series qmax=17", lambda: k_series(zeta, KT, 17), 3 * 18),
        ("lambda_series qmax=9", lambda: lambda_series(zeta, KT, 9), 10),
        ("lambda_series qmax=17", lambda: lambda_series(zeta, KT, 17), 18),
        ("polygamma(20, z)", lambda: polygamma(20, z), 21),
        *[(f"w_pair a={a} (per pair)", lambda a=a: w_pair(a, **pr, mu=0.0, kT=KT), 1)
          for a in (0, 1, 2)],
        ("y_pair (per pair)", lambda: y_pair(**pr, mu=0.0, kT=KT), 1),
    ]
    rows = []
    for name, fn, values in tests:
        times = wall_times(fn, repeat)
        t = min(times)
        rows.append([name, f"{n:,}", f"{t * 1e3:.1f}", f"{n / t:.3e}", f"{n * values / t:.3e}"])
        if records is not None:
            records.append(case_record(name, {"points": n, "values_per_point": values}, times,
                                       evals_per_s=n / t, values_per_s=n * values / t,
                                       part="throughput"))
    return rows


def lorentzian(w: float, eps: float, delta: float) -> float:
    """L(ω) = −δ / ((ω − ε)² + δ²)."""
    return -delta / ((w - eps) ** 2 + delta**2)


def quad_w0(en: float, em: float, dn: float, dm: float, mu: float, kT: float) -> float:
    """W^(0)_nm by adaptive quadrature of its defining integral (theory §3)."""

    def integrand(w: float) -> float:
        return minus_fermi_prime(w - mu, kT) * lorentzian(w, en, dn) * lorentzian(w, em, dm)

    pts = sorted({en, em, mu})
    lo, hi = min(pts[0] - 1.0, mu - 60 * kT), max(pts[-1] + 1.0, mu + 60 * kT)
    val = quad(integrand, lo, hi, points=pts, limit=500, epsabs=0.0, epsrel=QUAD_EPSREL)[0]
    return val / np.pi


def quad_y(en: float, em: float, dn: float, dm: float, mu: float, kT: float) -> float:
    """Y_nm by adaptive quadrature of its defining integral (theory §3)."""

    def integrand(w: float) -> float:
        resolvent = (1.0 / (w - em + 1j * dm) ** 2).real
        return float(fermi(w - mu, kT)) * lorentzian(w, en, dn) * resolvent

    pts = sorted({en, em, mu})
    split, top = pts[0] - 20.0, max(pts[-1], mu) + 60 * kT
    opts = {"limit": 500, "epsabs": 0.0, "epsrel": QUAD_EPSREL}
    tail = quad(integrand, -np.inf, split, **opts)[0]
    body = quad(integrand, split, top, points=pts, **opts)[0]
    return -2.0 / np.pi * (tail + body)


def compare_row(name: str, closed: Callable, reference: Callable, pr: dict,
                records: list[dict] | None = None) -> list[str]:
    """Per-evaluation times of a closed form (scalar and vectorised) and of quadrature.

    Parameters
    ----------
    name : str
        Row label.
    closed : callable
        ``closed(eps_n, eps_m, delta_n, delta_m, mu, kT)``, vectorised.
    reference : callable
        Scalar quadrature of the same quantity.
    pr : dict
        Pairs from :func:`random_pairs`.
    records : list, optional
        Where to append the row as a :func:`_common.case_record`.

    Returns
    -------
    list of str
        Row cells: times per evaluation, speed-up ratios and agreement.
    """
    args = list(zip(pr["eps_n"], pr["eps_m"], pr["delta_n"], pr["delta_m"], strict=True))
    n = len(args)
    t0 = time.perf_counter()
    scalar = np.array([closed(*a, 0.0, KT) for a in args], dtype=float).ravel()
    t_scalar = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    closed(pr["eps_n"], pr["eps_m"], pr["delta_n"], pr["delta_m"], 0.0, KT)
    t_vec = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    ref = np.array([reference(*a, 0.0, KT) for a in args])
    t_quad = (time.perf_counter() - t0) / n
    err = np.abs(scalar - ref) / np.maximum(np.abs(ref), 1e-300)
    if records is not None:
        records.append(case_record(
            name, {"pairs": n, "quad_epsrel": QUAD_EPSREL}, [t_vec * n],
            closed_scalar_us=t_scalar * 1e6, closed_vec_us=t_vec * 1e6, quad_us=t_quad * 1e6,
            quad_over_scalar=t_quad / t_scalar, quad_over_vec=t_quad / t_vec,
            max_rel_diff=float(np.max(err)), median_rel_diff=float(np.median(err)),
            part="quadrature"))
    return [name, str(n), f"{t_scalar * 1e6:.1f}", f"{t_vec * 1e6:.2f}", f"{t_quad * 1e6:.0f}",
            f"{t_quad / t_scalar:.0f}", f"{t_quad / t_vec:.0f}",
            f"{np.max(err):.1e}", f"{np.median(err):.1e}"]


def main() -> None:
    """Run both parts and print their tables."""
    args = _parser().parse_args()
    for key, value in SUITE_SIZES.get(args.suite, {}).items():
        setattr(args, key, value)
    rng = np.random.default_rng(args.seed)
    records: list[dict] = []
    print(f"kT = {KT} meV, zeta/eps in [-1, 1] meV, delta in [0.005, 0.1] meV\n")
    rows = throughput_rows(args.n, args.repeat, rng, records)
    print(format_table(["kernel", "points", "time [ms]", "evals/s", "values/s"], rows))
    print("values/s counts every derivative order (and a = 0, 1, 2 for k_series).\n")
    pr = random_pairs(rng, args.nquad)
    rows = [
        compare_row("W^(0) w_pair(0)", lambda *a: w_pair(0, *a), quad_w0, pr, records),
        compare_row("Y y_pair", y_pair, quad_y, pr, records),
    ]
    header = ["kernel", "pairs", "closed 1-by-1 [us]", "closed vec [us]", "quad [us]",
              "quad/closed 1-by-1", "quad/closed vec", "max rel diff", "median rel diff"]
    print(format_table(header, rows))
    print(f"quad: scipy.integrate.quad, epsrel = {QUAD_EPSREL:g}, epsabs = 0.")
    write_record(args.json, "kernels", args.suite,
                 {"kT_meV": KT, "n": args.n, "nquad": args.nquad, "repeat": args.repeat,
                  "seed": args.seed}, records)


if __name__ == "__main__":
    main()
