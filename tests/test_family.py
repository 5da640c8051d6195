"""kernels/family.py: ψ^(n), R_1 and E of one shared recurrence against 30-digit mpmath."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from qgt_mpi.kernels.family import R_FAMILY, family, radius


def _points(seed: int, n: int) -> np.ndarray:
    """Re c ≥ 1/2 over the recurrence region and beyond, plus the edge |c| = R_FAMILY."""
    rng = np.random.default_rng(seed)
    c = 0.5 + rng.random(n) * 16 + 1j * (rng.random(n) - 0.5) * 36
    edge = R_FAMILY * np.exp(1j * np.array([0.0, 0.7, -1.3])) + 1e-9
    return np.concatenate([c, [0.5 + 0.0j, 0.5 - 11.4j, 0.6 + 10.4j], edge])


def _e_reference(c: complex) -> complex:
    """E(c) = B(c) + ψ(c)/12 − const (kernels.hall_moments), ψ^(−2) by quadrature of ln Γ;
    the constant from E → 0 (its asymptotic series at c = 400)."""
    L = mp.log(2 * mp.pi)

    def b(z):
        u = z - mp.mpf(1) / 2
        psi2 = L / 2 + mp.quad(mp.loggamma, [1, (1 + z) / 2, z])
        return -u**2 / 2 + u**2 * mp.digamma(z) - 2 * u * mp.loggamma(z) + 2 * psi2

    z0 = mp.mpf(400)
    series = sum(mp.bernoulli(2 * j + 2) / (2 * j + 1) * z0 ** (-(2 * j + 1))
                 - (mp.bernoulli(2 * j) / (6 * j) + mp.bernoulli(2 * j + 2) / (2 * j))
                 * z0 ** (-2 * j) for j in range(1, 20))
    const = b(z0) + mp.digamma(z0) / 12 - series
    z = mp.mpc(c.real, c.imag)
    return complex(b(z) + mp.digamma(z) / 12 - const)


@pytest.mark.parametrize("nmax", [0, 2, 3, 7, 12])
def test_polygamma_orders_against_mpmath(nmax) -> None:
    """ψ^(n)(c), n ≤ nmax, to 1e-14 relative, with and without the Hall remainders."""
    mp.mp.dps = 30
    c = _points(nmax, 25)
    for hall in (False, True):
        got = family(c, nmax, hall).psi
        for n in range(nmax + 1):
            ref = np.array([complex(mp.psi(n, mp.mpc(z.real, z.imag))) for z in c])
            assert np.max(np.abs(got[n] - ref) / np.abs(ref)) < 1e-14, (n, hall)
    assert radius(nmax) >= R_FAMILY


def test_hall_remainders_against_mpmath() -> None:
    """R_1 to 1e-13 relative; E to 3e-14 absolute (|E| ≤ 0.05) and 1e-10 relative, the
    latter where E is smallest (Re c = 1/2, |c| just below the radius; 1e-9 before)."""
    mp.mp.dps = 30
    c = _points(7, 12)
    fam = family(c, 1, True)
    r1 = np.array([complex((mp.mpc(z.real, z.imag) - 0.5) * (mp.digamma(mp.mpc(z.real, z.imag))
                                                             - 1)
                           - mp.loggamma(mp.mpc(z.real, z.imag)) + 0.5 * mp.log(2 * mp.pi))
                   for z in c])
    assert np.max(np.abs(fam.r1 - r1) / np.abs(r1)) < 1e-13
    e = np.array([_e_reference(z) for z in c])
    assert np.max(np.abs(fam.e - e)) < 3e-14
    assert np.max(np.abs(fam.e - e) / np.abs(e)) < 1e-10


def test_recurrence_and_series_join() -> None:
    """Across |c| = radius the recurrence hands over to the series without a step."""
    for nmax in (2, 8):
        r = radius(nmax)
        c0 = r * np.exp(1j * np.array([0.2, 1.1, -1.4]))
        c0 = np.where(c0.real < 0.5, 0.5 + 1j * c0.imag, c0)
        pair = np.concatenate([c0 * (1 - 1e-12), c0 * (1 + 1e-12)])
        fam = family(pair, nmax, True)
        for v in (*fam.psi, fam.r1, fam.e):
            lo, hi = v[:3], v[3:]
            assert np.all(np.abs(hi - lo) <= 1e-10 * np.abs(lo) + 1e-18)


def test_rejects_the_left_half_plane() -> None:
    with pytest.raises(ValueError, match="real part"):
        family(np.array([0.3 + 1j]), 1, False)
    assert math.isfinite(abs(family(np.array([0.5 + 0j]), 1, True).e[0]))


def test_blocks_give_the_same_values() -> None:
    """Arguments are processed in blocks; each value depends on its own argument only (to
    rounding: the series' matrix product may vectorise differently)."""
    from qgt_mpi.kernels import family as fam_mod

    c = _points(3, 2 * fam_mod._BLOCK + 17)
    whole = family(c, 2, True)
    one = [family(c[i : i + 1], 2, True) for i in (0, fam_mod._BLOCK, c.size - 1)]
    for j, i in enumerate((0, fam_mod._BLOCK, c.size - 1)):
        for got, ref in ((whole.psi[:, i], one[j].psi[:, 0]), (whole.e[i], one[j].e[0]),
                         (whole.r1[i], one[j].r1[0])):
            assert np.all(np.abs(got - ref) <= 1e-14 * np.abs(ref))
