"""Hermitian partners of a hopping list: t_ab(R) must equal t_ba(−R)* (theory §1, §2.1).

Shared by the Wannier90 reader (which checks and symmetrises) and the inline tight-binding
deck model (which adds a missing partner or refuses it, as the user chooses). Vectorised:
partners are found by one ``numpy.unique`` over the keys (R, a, b).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _keys(R: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.column_stack([np.asarray(R, np.int64), a, b])


def duplicate_index(R: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(first, repeat) indices of two hoppings with the same (R, a, b), or None."""
    keys = _keys(R, a, b)
    _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    repeat = np.nonzero(first[inv] != np.arange(len(keys)))[0]
    if repeat.size == 0:
        return None
    i = int(repeat[0])
    return int(first[inv[i]]), i


def partner_index(R: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Index of the hopping (−R, b, a) for every hopping (R, a, b); −1 where it is absent.

    Keys must be distinct (see :func:`duplicate_index`).
    """
    keys = _keys(R, a, b)
    mirror = _keys(-np.asarray(R), b, a)
    uniq, inv = np.unique(np.concatenate([keys, mirror]), axis=0, return_inverse=True)
    inv = inv.ravel()
    n = len(keys)
    where = np.full(len(uniq), -1, dtype=np.int64)
    where[inv[:n]] = np.arange(n)
    return where[inv[n:]]


def mismatch(t: np.ndarray, partner: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Mask of present partners with |t − t_partner*| > atol + rtol |t|."""
    have = partner >= 0
    other = np.where(have, t[np.where(have, partner, 0)].conj(), t)
    return have & (np.abs(t - other) > atol + rtol * np.abs(t))


def complete(R: np.ndarray, a: np.ndarray, b: np.ndarray, t: np.ndarray, add: bool,
             name: Callable[[int], str], rtol: float = 1e-12, atol: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hermitian hopping list from a possibly half list.

    Parameters
    ----------
    R, a, b, t : hopping keys and amplitudes (distinct keys).
    add : True adds the missing partner t_ba(−R) = t_ab(R)* of every hopping that has
        none; False refuses a missing partner.
    name : index -> how to name hopping i in a message (e.g. ``"model.hoppings[3]"``).
    rtol, atol : tolerance for a partner that is present but not the complex conjugate.

    Raises
    ------
    ValueError naming the first offending hopping.
    """
    partner = partner_index(R, a, b)
    bad = mismatch(t, partner, rtol, atol)
    if np.any(bad):
        i = int(np.argmax(bad))
        j = int(partner[i])
        raise ValueError(f"{name(i)} and {name(j)} are not Hermitian partners: "
                         f"t = {complex(t[i])!r} and {complex(t[j])!r} (need complex conjugates)")
    missing = partner < 0
    if np.any(missing) and not add:
        i = int(np.argmax(missing))
        raise ValueError(f"{name(i)} (R = {np.asarray(R[i]).tolist()}, a = {int(a[i])}, "
                         f"b = {int(b[i])}) has no Hermitian partner (R = "
                         f"{(-np.asarray(R[i])).tolist()}, a = {int(b[i])}, b = {int(a[i])}); "
                         "list it, or let the partner be added (partners = \"add\")")
    return (np.concatenate([R, -np.asarray(R)[missing]]), np.concatenate([a, b[missing]]),
            np.concatenate([b, a[missing]]), np.concatenate([t, t[missing].conj()]))
