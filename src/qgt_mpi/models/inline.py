"""Small tight-binding models written out by hand (``kind = "tight_binding"``, theory §1, §2.1).

Lattice rows a1, a2 (lattice constants), orbital positions in reduced coordinates of a1, a2,
on-site energies and a hopping list t_ab(R) (meV): hopping from orbital b in cell R to
orbital a in cell 0, H_ab(k) = Σ_R t_ab(R) e^{ik·(R·A + τ_b − τ_a)}. The list may give each
bond once (``partners = "add"`` adds t_ba(−R) = t_ab(R)*) or both directions
(``partners = "refuse"`` then refuses a missing one); a listed partner must be the conjugate.
"""

from __future__ import annotations

import numpy as np

from qgt_mpi.io.checks import CELL_INDEX_MAX, ENERGY_MAX_MEV, LENGTH_MAX, bounded_array
from qgt_mpi.models import hermitian
from qgt_mpi.models.lattice import TightBinding


def hopping_arrays(hoppings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(R (nh, 2) int, a, b, t complex) from a dict of arrays or rows (R, a, b, t).

    Every number is range-checked first (InputError naming ``model.hoppings``): R integers
    with |R_i| <= CELL_INDEX_MAX (an R of 2^63 - 1 overflowed the phases silently), t finite
    with |t| <= ENERGY_MAX_MEV.
    """
    if isinstance(hoppings, dict):
        R, a, b, t = (hoppings[k] for k in ("R", "a", "b", "t"))
    else:
        rows = list(hoppings)
        R = [r[0] for r in rows]
        a, b, t = ([r[i] for r in rows] for i in (1, 2, 3))
    bounded_array("model.hoppings.R", R, CELL_INDEX_MAX, "cells", integral=True)
    bounded_array("model.hoppings.t", t, ENERGY_MAX_MEV, "meV")
    for name, idx in (("a", a), ("b", b)):
        bounded_array(f"model.hoppings.{name}", idx, 2**31, "", integral=True)
    R = np.asarray(R, dtype=np.int64).reshape(-1, 2)
    return (R, np.asarray(a, dtype=np.int64).ravel(), np.asarray(b, dtype=np.int64).ravel(),
            np.asarray(t, dtype=complex).ravel())


def _check_orbitals(a: np.ndarray, b: np.ndarray, norb: int) -> None:
    bad = (a < 0) | (a >= norb) | (b < 0) | (b >= norb)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"hoppings[{i}]: orbital index (a, b) = ({a[i]}, {b[i]}) outside "
                         f"0..{norb - 1} (the model has {norb} orbitals)")


def tight_binding(lattice, positions, hoppings=(), onsite=None, partners: str = "add",
                  name: str = "tight_binding") -> TightBinding:
    """Build a tight-binding model from its lattice, orbitals and hopping list.

    Parameters
    ----------
    lattice : (2, 2) rows a1, a2 (lattice constants).
    positions : (norb, 2) orbital positions in reduced coordinates of a1, a2.
    hoppings : rows (R, a, b, t) or a dict of arrays R (nh, 2), a, b, t (meV, complex).
    onsite : (norb,) real on-site energies (meV), or None for zeros.
    partners : "add" (each bond may be listed once; the Hermitian partner is added) or
        "refuse" (the list must contain both directions of every bond).
    name : reported as the model kind.

    Raises
    ------
    ValueError for orbital indices out of range, repeated hoppings, a listed partner that is
    not the complex conjugate, or (partners = "refuse") a missing partner.
    """
    if partners not in ("add", "refuse"):
        raise ValueError(f"partners = {partners!r}: must be \"add\" or \"refuse\"")
    bounded_array("model.lattice", lattice, LENGTH_MAX, "a")
    bounded_array("model.positions", positions, LENGTH_MAX, "(reduced)")
    if onsite is not None:
        bounded_array("model.onsite", onsite, ENERGY_MAX_MEV, "meV")
    lattice = np.asarray(lattice, dtype=float).reshape(2, 2)
    if abs(np.linalg.det(lattice)) < 1e-12:
        raise ValueError(f"lattice {lattice.tolist()}: a1 and a2 are linearly dependent")
    reduced = np.asarray(positions, dtype=float).reshape(-1, 2)
    norb = reduced.shape[0]
    R, a, b, t = hopping_arrays(hoppings)
    _check_orbitals(a, b, norb)
    dup = hermitian.duplicate_index(R, a, b)
    if dup is not None:
        raise ValueError(f"hoppings[{dup[1]}] repeats hoppings[{dup[0]}] (same R, a, b)")
    R, a, b, t = hermitian.complete(R, a, b, t, partners == "add", lambda i: f"hoppings[{i}]")
    energies = np.zeros(norb) if onsite is None else np.asarray(onsite, dtype=float).ravel()
    if energies.size != norb:
        raise ValueError(f"onsite has {energies.size} values for {norb} orbitals")
    diag = np.arange(norb)
    info = {"kind": name, "partners": partners}
    return TightBinding(lattice, reduced @ lattice,
                        np.concatenate([R, np.zeros((norb, 2), np.int64)]),
                        np.concatenate([a, diag]), np.concatenate([b, diag]),
                        np.concatenate([t, energies.astype(complex)]), info)
