"""TBG flat bands with relaxed couplings and with heterostrain (tbg_continuum, theory §2.5a).

Why: issue 20 asks for the relaxed-coupling TBG of Koshino et al. (2018) against the
unrelaxed Bistritzer–MacDonald table of docs/validation.md, and for the effect of uniaxial
heterostrain. Flat-band width W (both flat bands of valley +1 together) and the smaller gap
to the remote bands on an N×N moiré grid, 3 shells, dense eigenvalues only. Prints markdown
tables (docs/validation.md). Run:
    .venv/bin/python studies/tbg_relaxed.py [N]        (N = 24 by default; about a minute)
"""

from __future__ import annotations

import qgt_mpi  # noqa: F401  (environment before numpy/petsc4py)

# isort: split
import sys

import numpy as np

from qgt_mpi.models import build_model
from qgt_mpi.models.lattice import kgrid_points

ANGLES = np.round(np.arange(0.96, 1.2401, 0.02), 2)
STRAINS = (0.0, 0.001, 0.002, 0.003)


def flat_band_stats(params: dict, n: int) -> tuple[float, float]:
    """(W, smaller gap to the remote bands) [meV] of the two flat bands of valley +1."""
    model = build_model("tbg_continuum", params)
    k = kgrid_points(model.reciprocal, n, n, 0, n * n)
    mid = model.norb // 2
    e = np.linalg.eigvalsh(model.hamiltonian(k, derivatives=False)[0])[:, mid - 2:mid + 2]
    width = e[:, 1:3].max() - e[:, 1:3].min()
    return float(width), float(min(e[:, 1].min() - e[:, 0].max(),
                                   e[:, 3].min() - e[:, 2].max()))


def main(n: int) -> None:
    print(f"flat bands of valley +1, 3 shells, {n}x{n} grid (meV)\n")
    print("| θ (°) | W, bm2011 | gap, bm2011 | W, koshino2018 | gap, koshino2018 |")
    print("|---|---|---|---|---|")
    for theta in ANGLES:
        bm = flat_band_stats({"theta": float(theta)}, n)
        ko = flat_band_stats({"theta": float(theta), "params": "koshino2018"}, n)
        print(f"| {theta:.2f} | {bm[0]:.2f} | {bm[1]:.2f} | {ko[0]:.2f} | {ko[1]:.2f} |")
    print("\nheterostrain at 1.05° (bm2011, strain along x):\n")
    print("| ε | W | gap |")
    print("|---|---|---|")
    for eps in STRAINS:
        w, gap = flat_band_stats({"theta": 1.05, "strain": eps}, n)
        print(f"| {eps:.3f} | {w:.2f} | {gap:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 24)
