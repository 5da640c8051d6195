"""Wannier90 models as 2D :class:`TightBinding` models (``kind = "wannier90"``, theory §1, §2.1).

Reads ``_hr.dat`` (or ``_tb.dat``) with the degeneracy weights, takes orbital centres from
``_centres.xyz`` or ``_tb.dat``, checks and symmetrises Hermiticity, converts eV → meV and
Å → lattice constants (|a_i| of the first in-plane vector), and keeps the two lattice
vectors of ``plane``. Hoppings along the third vector are summed at k_3 = 0 or refused.

Collective when given a communicator: rank 0 reads the files and the arrays are broadcast
once (:func:`qgt_mpi.parallel.rootcall.root_call`), so every rank holds one hopping table.
"""

from __future__ import annotations

import logging

import numpy as np

from qgt_mpi.io.checks import CELL_INDEX_MAX, ENERGY_MAX_MEV, LENGTH_MAX, bounded_array, magnitude
from qgt_mpi.models import hermitian
from qgt_mpi.models.lattice import TightBinding
from qgt_mpi.models.textfile import ModelFileError
from qgt_mpi.models.w90files import Hoppings, read_centres, read_hr, read_tb

EV_TO_MEV = 1000.0
# hr.dat prints 6 decimals: partners may differ by rounding, then they are averaged.
_HERMITIAN_ATOL_EV, _HERMITIAN_RTOL = 2e-6, 1e-6
NO_CENTRES_WARNING = (
    "no orbital centres given (centres or tb): every orbital is placed at the cell origin "
    "(tau = 0). sigma_xy and Chern numbers do not depend on this, but the quantum metric and "
    "sigma_xx do (for the Haldane model the metric turns anisotropic); give centres = "
    "\"seedname_centres.xyz\" or tb = \"seedname_tb.dat\"")


def _symmetrise(h: Hoppings) -> np.ndarray:
    """t averaged with its partner's conjugate; a missing or unequal partner is refused."""
    partner = hermitian.partner_index(h.R, h.a, h.b)
    missing = partner < 0
    if np.any(missing):
        i = int(np.argmax(missing))
        raise ModelFileError(h.path, int(h.lines[i]), f"hopping R = {h.R[i].tolist()}, m = "
                             f"{h.a[i] + 1}, n = {h.b[i] + 1} has no Hermitian partner at "
                             f"R = {(-h.R[i]).tolist()}, m = {h.b[i] + 1}, n = {h.a[i] + 1}")
    bad = hermitian.mismatch(h.t, partner, _HERMITIAN_RTOL, _HERMITIAN_ATOL_EV)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ModelFileError(h.path, int(h.lines[i]), f"hoppings are not Hermitian: H_mn(R) = "
                             f"{complex(h.t[i]):.6g} but conj(H_nm(-R)) = "
                             f"{complex(h.t[partner[i]].conj()):.6g} (line "
                             f"{int(h.lines[partner[i]])})")
    return 0.5 * (h.t + h.t[partner].conj())


def _plane(plane) -> np.ndarray:
    """Unimodular integer M (3, 3): rows 0, 1 span the plane, row 2 completes the basis.

    ``plane`` is [i, j] (1-based lattice-vector indices) or two integer vectors
    [[n1, n2, n3], [m1, m2, m3]] (in-plane vectors as combinations of a1, a2, a3).
    """
    p = np.asarray(plane)
    if p.shape == (2,):
        idx = [int(x) for x in p]
        if idx[0] == idx[1] or not set(idx) <= {1, 2, 3}:
            raise ValueError(f"plane = {list(plane)}: must be two different lattice vector "
                             "indices out of 1, 2, 3 (e.g. [1, 2]) or two integer vectors")
        rows = [idx[0] - 1, idx[1] - 1, ({1, 2, 3} - set(idx)).pop() - 1]
        return np.eye(3, dtype=np.int64)[rows]
    if p.shape != (2, 3) or np.any(p != np.round(p)):
        raise ValueError(f"plane = {np.asarray(plane).tolist()}: must be [i, j] or two integer "
                         "3-vectors [[n1, n2, n3], [m1, m2, m3]]")
    return _complete_basis(p.astype(np.int64))


def _complete_basis(p: np.ndarray) -> np.ndarray:
    """Third integer row making det = ±1 (shortest first), or ValueError if none exists."""
    for reach in (1, 2, 3):
        cand = np.array(np.meshgrid(*[np.arange(-reach, reach + 1)] * 3)).reshape(3, -1).T
        cand = cand[np.argsort(np.abs(cand).sum(axis=1), kind="stable")]
        dets = np.rint(np.linalg.det(np.stack([np.broadcast_to(p, (len(cand), 2, 3))[:, 0],
                                               np.broadcast_to(p, (len(cand), 2, 3))[:, 1],
                                               cand], axis=1)))
        hit = np.nonzero(np.abs(dets) == 1)[0]
        if hit.size:
            return np.vstack([p, cand[hit[0]]])
    raise ValueError(f"plane = {p.tolist()}: the two vectors do not span a primitive 2D "
                     "sublattice (no integer third vector completes a unimodular basis)")


def _check_handedness(plane, lat3: np.ndarray, basis: np.ndarray) -> None:
    """Refuse an in-plane pair whose normal a'_1 × a'_2 points against the crystal's
    out-of-plane vector (the remaining a_k of [i, j]; for integer vectors, the original vector
    most out of the plane). The 2D model puts a'_1 along x and a'_2 in the upper half-plane,
    so such a pair gives the mirror image: sigma_xy and the Chern numbers flip sign with an
    identical stored lattice (plane = [2, 1] did exactly that)."""
    a1, a2 = basis[0] @ lat3, basis[1] @ lat3
    normal = np.cross(a1, a2)
    p = np.asarray(plane)
    if p.shape == (2,):
        up = lat3[({1, 2, 3} - {int(x) for x in p}).pop() - 1]
    else:
        unit = normal / np.linalg.norm(normal)
        up = lat3[int(np.argmax(np.abs(lat3 @ unit) / np.linalg.norm(lat3, axis=1)))]
    if normal @ up < 0:
        swapped = p[::-1].tolist()
        raise ValueError(f"plane = {p.tolist()}: the in-plane vectors are in mirrored order "
                         f"(a'1 x a'2 points against the out-of-plane lattice vector), which "
                         f"would flip sigma_xy and the Chern numbers; use plane = {swapped}")


def _in_plane_lattice(lattice3: np.ndarray, i: int, j: int) -> tuple[np.ndarray, float]:
    """2D lattice rows (a_i, a_j) in a frame with a_i along x, in units of |a_i|; and |a_i| Å."""
    ai, aj = lattice3[i], lattice3[j]
    unit = float(np.linalg.norm(ai))
    e1 = ai / unit
    perp = aj - (aj @ e1) * e1
    e2 = perp / np.linalg.norm(perp)
    return np.array([[unit, 0.0], [aj @ e1, aj @ e2]]) / unit, unit


def _out_of_plane(h: Hoppings, t: np.ndarray, third: int, policy: str) -> None:
    """Refuse hoppings along the third lattice vector unless ``policy`` is "sum"."""
    out = (h.R[:, third] != 0) & (t != 0)
    if policy == "sum" or not np.any(out):
        return
    i = int(np.argmax(np.where(out, np.abs(t), -1.0)))
    raise ModelFileError(h.path, int(h.lines[i]), f"{np.count_nonzero(out)} hoppings leave the "
                         f"plane (R{third + 1} != 0; largest |t| = {abs(t[i]) * EV_TO_MEV:.4g} "
                         "meV): not a 2D model; set out_of_plane = \"sum\" to sum them at "
                         "k_z = 0, or choose another plane")


def _files(hr, tb, centres, lattice) -> tuple[np.ndarray, Hoppings, np.ndarray | None, str]:
    """Lattice (Å), hoppings, centres (Å) or None, and where the centres came from."""
    tb_lattice, tb_hops, tb_centres = read_tb(tb) if tb is not None else (None, None, None)
    hops = read_hr(hr) if hr is not None else tb_hops
    if hops is None:  # neither file given
        raise ValueError("a Wannier90 model needs hr = \"seedname_hr.dat\" or tb = "
                         "\"seedname_tb.dat\"")
    if lattice is None and tb_lattice is None:
        raise ValueError("hr needs the lattice: give lattice = [[x, y, z], [...], [...]] (Å) "
                         "or tb = \"seedname_tb.dat\"")
    lat = np.asarray(lattice if lattice is not None else tb_lattice, dtype=float).reshape(3, 3)
    if abs(np.linalg.det(lat)) < 1e-12:
        raise ValueError(f"lattice vectors {lat.tolist()} are linearly dependent")
    if centres is not None:
        return lat, hops, read_centres(centres, hops.num_wann), str(centres)
    if tb_centres is not None:
        if tb_centres.shape[0] != hops.num_wann:
            raise ModelFileError(tb, None, f"{tb_centres.shape[0]} centres for "
                                 f"{hops.num_wann} orbitals of {hops.path}")
        return lat, hops, tb_centres, f"{tb} (position matrix)"
    return lat, hops, None, "none: all orbitals at the cell origin"


def _check_ranges(h: Hoppings, lattice: np.ndarray, tau: np.ndarray | None) -> None:
    """Refuse numbers outside the ranges every model obeys (docs/input.md, io/checks.py):
    |H| <= ENERGY_MAX_MEV (a file scaled by 1e8 gave sigma_xy = 0 silently), |R_i| <=
    CELL_INDEX_MAX, lengths <= LENGTH_MAX Å. One ModelFileError at the first bad line."""
    t_mev = np.abs(h.t) * EV_TO_MEV
    big = ~(t_mev <= ENERGY_MAX_MEV)
    if np.any(big):
        i = int(np.argmax(big))
        raise ModelFileError(h.path, int(h.lines[i]), f"|H| = {t_mev[i]:.6g} meV: hoppings "
                             f"must satisfy |H| <= {ENERGY_MAX_MEV:g} meV "
                             f"({ENERGY_MAX_MEV / EV_TO_MEV:g} eV)")
    far = np.any(np.abs(h.R) > CELL_INDEX_MAX, axis=1)
    if np.any(far):
        i = int(np.argmax(far))
        raise ModelFileError(h.path, int(h.lines[i]), f"cell R = {h.R[i].tolist()}: "
                             f"|R_i| must be <= {CELL_INDEX_MAX}")
    for name, arr in (("lattice", lattice), ("centres", tau)):
        if arr is not None and not np.all(np.abs(arr) <= LENGTH_MAX):
            raise ModelFileError(h.path, None, f"{name} hold a length beyond "
                                 f"{LENGTH_MAX:g} Å (or a non-finite one)")


def wannier90_arrays(hr=None, tb=None, centres=None, lattice=None, plane=(1, 2),
                     out_of_plane: str = "refuse", fermi: float = 0.0) -> dict:
    """Arrays and facts of the 2D model (serial): what :class:`TightBinding` takes."""
    if out_of_plane not in ("refuse", "sum"):
        raise ValueError(f"out_of_plane = {out_of_plane!r}: must be \"refuse\" or \"sum\"")
    magnitude("model.fermi", fermi, ENERGY_MAX_MEV / EV_TO_MEV, "eV",
              "the energy range of every model, docs/input.md")
    if lattice is not None:
        bounded_array("model.lattice", lattice, LENGTH_MAX, "Å")
    basis = _plane(plane)
    lat3, hops, tau, centres_from = _files(hr, tb, centres, lattice)
    _check_ranges(hops, lat3, tau)
    t = _symmetrise(hops)
    original = lat3
    lat3 = basis @ lat3  # a'_k = Σ_l M_kl a_l: in-plane vectors first
    cells = hops.R @ np.rint(np.linalg.inv(basis)).astype(np.int64)  # R·A = R'·A'
    hops = Hoppings(hops.num_wann, cells, hops.a, hops.b, hops.t, hops.lines, hops.path)
    i, j, third = 0, 1, 2
    _out_of_plane(hops, t, third, out_of_plane)
    _check_handedness(plane, original, basis)
    lattice2, unit = _in_plane_lattice(lat3, i, j)
    if tau is None:
        logging.getLogger("qgt_mpi").warning("%s: %s", hops.path, NO_CENTRES_WARNING)
        tau = np.zeros((hops.num_wann, 3))
    reduced = tau @ np.linalg.inv(lat3)  # centres in units of a1, a2, a3
    onsite = np.all(hops.R == 0, axis=1) & (hops.a == hops.b)
    t_mev = (t - np.where(onsite, fermi, 0.0)) * EV_TO_MEV
    info = {"kind": "wannier90", "source": hops.path, "centres": centres_from,
            "plane": str(np.asarray(plane).tolist()), "out_of_plane": out_of_plane,
            "length_unit_angstrom": unit, "fermi_eV": float(fermi)}
    return {"lattice": lattice2, "positions": reduced[:, [i, j]] @ lattice2,
            "R": hops.R[:, [i, j]], "a": hops.a, "b": hops.b, "t": t_mev, "info": info}


def read_wannier90(hr=None, tb=None, centres=None, lattice=None, plane=(1, 2),
                   out_of_plane: str = "refuse", fermi: float = 0.0, comm=None) -> TightBinding:
    """2D tight-binding model from Wannier90 files.

    Parameters
    ----------
    hr : path of ``seedname_hr.dat`` (hoppings; needs ``lattice`` or ``tb``).
    tb : path of ``seedname_tb.dat`` (lattice, hoppings, position matrix → centres).
    centres : path of ``seedname_centres.xyz``; without centres or tb the orbitals sit at
        the cell origin and a warning says that the metric and σ_xx depend on it.
    lattice : (3, 3) lattice vectors in Å (rows), when only ``hr`` is given.
    plane : 1-based indices of the two in-plane lattice vectors (default (1, 2)), or two
        integer vectors [[n1, n2, n3], [m1, m2, m3]] (combinations of a1, a2, a3) spanning
        a primitive 2D sublattice.
    out_of_plane : "refuse" (default) or "sum": hoppings with R along the third vector are
        summed at k_3 = 0.
    fermi : energy zero in eV, subtracted from the on-site energies.
    comm : mpi4py communicator or None. When given, collective: rank 0 reads the files and
        broadcasts the arrays; an error is raised on every rank.

    Returns
    -------
    TightBinding in meV and lattice constants (|a_plane[0]| = 1; ``info`` keeps the Å unit).
    """
    def read() -> dict:
        return wannier90_arrays(hr, tb, centres, lattice, plane, out_of_plane, fermi)

    if comm is None:
        arrays = read()
    else:
        from qgt_mpi.parallel.rootcall import root_call

        arrays = root_call(comm, read)
    return TightBinding(**arrays)
