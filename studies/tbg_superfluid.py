"""Superfluid weight and T_BKT of a TBG flat band at the magic angle (issue 8 item 5; theory §6).

Why: the geometric superfluid weight of a flat band is set by its quantum metric; this gives
the TBG number quoted in docs/validation.md and README.md and checks the engine's metric
against an independent dense calculation. A physics study, not a benchmark.

Continuum (BM) model at θ = 1.08°, the narrowest flat bands of the realistic coupling
w0/w1 = 0.8, w1 = 110 meV (docs/validation.md, "Twisted bilayer graphene flat bands through the
engine"); the chiral magic angle at this w1 is 1.0626° and the paper quotes 1.05°. A sublattice
mass (hBN alignment, default 10 meV) separates the two flat bands of a valley (C = ±1), so that
the lower one is the isolated band the flat-band formula (paper Eq. 21) needs; without it they
touch at the Dirac points and the per-band metric diverges logarithmically there.

1. ``qgt-mpi run`` (2 ranks, 2 pools) of a deck with a SLEPc window of the two flat bands and
   ``[superfluid]`` on window band 0 (ordinary metric including the out-of-window part, which is
   all the engine allows on a window), ν = 1/2 per spin, N_orb = 1, so that ``U`` is the
   effective attraction U/N_orb of the flat-band formula: Δ_0 = U/2, k_BT_c = U/4.
2. Independent check, serial and dense (all 148 plane waves): the same band's metric integral
   G_ij = (1/(N_k A_c)) Σ_k Σ_{m≠n} Re[A^i_nm A^j_mn], A^i_mn = <m|∂_i n>, and its minimum over
   shifts δ_c of the four (layer, sublattice) components of the basis (theory §6, minimal
   metric; u_a → e^{−ik·δ_c} u_a, so A^i_mn → A^i_mn − i Σ_c δ^i_c <m|Π_c|n>, exactly quadratic
   in δ; solved in closed form). C3 maps each component to itself, so the gradient at δ = 0 is
   a C3-invariant vector, i.e. 0: the minimal metric is the ordinary one (up to the C3
   breaking of the plane-wave cutoff).
3. Flavours: the formula is for one band with two spin species paired. In TBG the valley +1
   band pairs with its time-reversal partner (valley −1, same metric): (K↑, K'↓) and
   (K↓, K'↑) are two such copies, so D_s(total) = 2 D_s(formula); T_BKT of the total is solved
   here from the file's D_s(T) on its temperature grid.
Run:  .venv/bin/python studies/tbg_superfluid.py [--mass 10] [--U 2] [--grid 24]   (≈ 30 s)
"""

from __future__ import annotations

import qgt_mpi  # noqa: F401  (environment before numpy/petsc4py)

# isort: split
import argparse
import subprocess
import tempfile
from pathlib import Path

import h5py
import numpy as np
from _common import QGT, mpi_env

from qgt_mpi.models.bm_continuum import bm_continuum
from qgt_mpi.models.lattice import kgrid_points

DECK = """title = "TBG flat band superfluid weight at the magic angle"
degeneracy = 2
[model]
kind = "bm_continuum"
theta = {theta}
w0 = 88.0
w1 = 110.0
shells = 3
mass = {mass}
[solver]
kind = "slepc"
nev = 2
target = 0.0
chern_below = 0
[kgrid]
size = [{grid}, {grid}]
[sweep]
temperature = [1.0]
mu = [0.0]
delta = [0.1]
[superfluid]
U = {U}
filling = 0.5
n_orb = 1
band = 0
minimal_metric = false
temperature = {{ start = 0.05, stop = 20.0, num = 400, spacing = "log" }}
[output]
file = "{out}"
kresolved = false
"""


def engine_run(theta: float, mass: float, u: float, grid: int, work: Path) -> dict:
    """Run the deck on 2 ranks; return the /superfluid datasets and attributes."""
    out = work / "sf.h5"
    deck = work / "sf.toml"
    deck.write_text(DECK.format(theta=theta, mass=mass, grid=grid, U=u, out=out))
    proc = subprocess.run(["mpirun", "-n", "2", str(QGT), "run", str(deck), "--overwrite",
                           "--pools", "2"], env=mpi_env(), capture_output=True, text=True)
    print("\n".join(ln for ln in (proc.stdout + proc.stderr).splitlines()
                    if "superfluid" in ln or "warning" in ln))
    proc.check_returncode()
    with h5py.File(out, "r") as f:
        sf = {k: v[()] for k, v in f["superfluid"].items()}
        sf.update(dict(f["superfluid"].attrs))
    return sf


def dense_metric(theta: float, mass: float, grid: int, band: int = 0) -> tuple:
    """(ordinary G, minimal Tr G, optimal shifts [nm] of the 4 components, width [meV]) of
    flat band ``band`` (0 = lower flat band) by dense diagonalisation."""
    model = bm_continuum(theta=theta, w0=88.0, w1=110.0, shells=3, mass=mass)
    k = kgrid_points(model.reciprocal, grid, grid, 0, grid * grid)
    h, dh = model.hamiltonian(k)
    e, v = np.linalg.eigh(h)
    n = model.norb // 2 - 1 + band
    ng = model.norb // 4
    idx = np.arange(model.norb)
    comp = 2 * (idx // (2 * ng)) + idx % 2  # (layer, sublattice) of basis state 2(ℓ ng + g) + s
    vn = v[:, :, n]
    a = []  # A^i_mn for m ≠ n, shape (2, nk, norb)
    for d in (dh[0, 0], dh[1, 0]):  # ∂H/∂k does not depend on k
        num = np.einsum("kam,ab,kb->km", v.conj(), d, vn)
        den = e[:, n, None] - e
        den[:, n] = np.inf
        a.append(num / den)
    a = np.array(a)
    pi = np.stack([np.einsum("kam,ka->km", v.conj(), vn * (comp == c)) for c in range(4)])
    pi[:, :, n] = 0.0  # (1 − P): only m ≠ n
    norm = grid * grid * model.cell_area
    g_ord = np.array([[np.sum((a[i].conj() * a[j]).real) for j in (0, 1)] for i in (0, 1)]) / norm
    # Tr G(δ) = Σ_i Σ_m |A^i − i Σ_c δ^i_c Π_c|² = c0 + 2 b_i·δ^i + δ^i·M δ^i, components 1..3
    quad = np.einsum("ckm,dkm->cd", pi.conj(), pi).real[1:, 1:] / norm
    shifts = np.zeros((4, 2))
    for i in (0, 1):
        lin = np.einsum("km,ckm->c", a[i].conj(), -1j * pi).real[1:] / norm
        shifts[1:, i] = -np.linalg.solve(quad, lin)
    tr_min = np.trace(g_ord)
    for i in (0, 1):
        lin = np.einsum("km,ckm->c", a[i].conj(), -1j * pi).real[1:] / norm
        tr_min += 2 * lin @ shifts[1:, i] + shifts[1:, i] @ quad @ shifts[1:, i]
    return g_ord, tr_min, shifts, e[:, n].max() - e[:, n].min()


def bkt_of_total(sf: dict, copies: int = 2) -> float:
    """T_BKT [K] of copies × D_s: where copies √det D_s(T) meets 8k_BT/π (log interpolation)."""
    t, excess = sf["temperature"], copies * sf["D_s_sqrt_det"] - sf["bkt_line"]
    i = np.nonzero((excess[:-1] > 0) & (excess[1:] <= 0))[0]
    if not i.size:
        return float("nan")
    j = int(i[0])
    x = excess[j] / (excess[j] - excess[j + 1])
    return float(np.exp(np.log(t[j]) + x * (np.log(t[j + 1]) - np.log(t[j]))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--theta", type=float, default=1.08)
    p.add_argument("--mass", type=float, default=10.0)
    p.add_argument("--U", type=float, default=2.0, help="U/N_orb [meV]")
    p.add_argument("--grid", type=int, default=24)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sf = engine_run(a.theta, a.mass, a.U, a.grid, Path(tmp))
    g_ord, tr_min, shifts, width = dense_metric(a.theta, a.mass, a.grid)
    g_eng = sf["metric_integral_ordinary"]
    print(f"\nθ = {a.theta}°, mass {a.mass} meV, {a.grid}×{a.grid}, lower flat band "
          f"(C = {sf['chern']}, width {sf['bandwidth_meV']:.3f} meV, gap to the other bands "
          f"{sf['gap_to_other_bands_meV']:.3f} meV); U/N_orb = {a.U} meV")
    print(f"G engine (window + Sternheimer) = {np.round(g_eng, 6).tolist()}; dense "
          f"{np.round(g_ord, 6).tolist()} (max diff {np.max(np.abs(g_eng - g_ord)):.1e}); "
          f"dense width {width:.3f} meV")
    print(f"minimal over (layer, sublattice) shifts: Tr G {tr_min:.6f} vs ordinary "
          f"{np.trace(g_ord):.6f}; largest shift {np.abs(shifts).max():.2e} nm "
          f"(moiré length {np.linalg.norm(bm_continuum(theta=a.theta).lattice[0]):.2f} nm)")
    print(f"bounds: Tr G ≥ |C|/2π = {sf['trace_bound']:.6f}, √det G = "
          f"{np.sqrt(np.linalg.det(g_ord)):.6f} ≥ |C|/4π = {sf['sqrt_det_bound']:.6f}")
    one = bkt_of_total(sf, 1)
    print(f"Δ_0 = {sf['Delta_0_meV']:.4g} meV, T_c(MF) = {sf['T_c_mean_field_K']:.4g} K, "
          f"D_s(0) = {np.round(sf['D_s'][0], 5).tolist()} e²/ħ²·meV per copy; "
          f"T_BKT one copy {sf['T_BKT_K']:.4g} K (interpolated: {one:.4g} K), "
          f"two copies (K↑K'↓ + K↓K'↑) {bkt_of_total(sf, 2):.4g} K; "
          f"T_BKT/T_c = {bkt_of_total(sf, 2) / sf['T_c_mean_field_K']:.4f}")


if __name__ == "__main__":
    main()
