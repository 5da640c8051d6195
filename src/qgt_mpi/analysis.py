"""Small analysis helpers for validating runs against the paper (theory §7).

Slope and power-law fits, peak location on a sampled curve, and the resonant-limit
(δ ≪ k_BT, theory §3) closed forms of σ_xx and the Seebeck coefficient for two exactly flat
bands. None of these is used by a run; ``docs/validation.md`` and
``tests/test_paper_claims.py`` use them.
"""

from __future__ import annotations

import math

import numpy as np

from qgt_mpi.constants import K_B_MEV_PER_K, K_B_OVER_E_UV_PER_K

__all__ = [
    "fit_power_law",
    "fit_slope",
    "minus_fermi_derivative",
    "peak",
    "seebeck_resonant",
    "sigma_xx_resonant",
]


def fit_slope(x, y) -> tuple[float, float]:
    """Least-squares straight line through (x, y).

    Parameters
    ----------
    x, y : array_like
        Abscissae and ordinates (same length, at least two points).

    Returns
    -------
    slope, intercept : float
    """
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(slope), float(intercept)


def fit_power_law(x, y) -> float:
    """Exponent p of a least-squares fit y ∝ x**p in log–log coordinates.

    Parameters
    ----------
    x, y : array_like
        Positive abscissae and ordinates.

    Returns
    -------
    float
        The fitted exponent.
    """
    return fit_slope(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)))[0]


def peak(x, y, *, log_x: bool = True) -> tuple[float, float]:
    """Location and height of the largest |y| on a sampled curve, refined by a parabola.

    The parabola goes through the largest sample and its two neighbours, in ln x when
    ``log_x`` (for log-spaced temperature sweeps), otherwise in x.

    Parameters
    ----------
    x : array_like
        Increasing abscissae (positive when ``log_x``).
    y : array_like
        Ordinates; the extremum of |y| is located, and y (with its sign) is returned there.
    log_x : bool
        Interpolate in ln x rather than x.

    Returns
    -------
    x_peak, y_peak : float

    Raises
    ------
    ValueError
        If the largest |y| sits at either end of the sample (no interior peak).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    i = int(np.argmax(np.abs(y)))
    if i == 0 or i == len(y) - 1:
        raise ValueError("the largest |y| is at an end of the sample: widen the range")
    u = np.log(x[i - 1:i + 2]) if log_x else x[i - 1:i + 2]
    a, b, c = np.polyfit(u - u[1], y[i - 1:i + 2], 2)
    du = -b / (2 * a)
    u_peak = u[1] + du
    return float(math.exp(u_peak) if log_x else u_peak), float(c + b * du + a * du * du)


def minus_fermi_derivative(energy, temperature_K):
    """−∂f/∂ε at ε − μ = ``energy`` [meV] and temperature [K]; result in 1/meV.

    Parameters
    ----------
    energy : array_like
        ε − μ [meV].
    temperature_K : float or array_like
        Temperature [K], > 0.

    Returns
    -------
    numpy.ndarray
        β / (4 cosh²(β(ε − μ)/2)).
    """
    beta = 1.0 / (K_B_MEV_PER_K * np.asarray(temperature_K, float))
    return beta / (4.0 * np.cosh(0.5 * beta * np.asarray(energy, float)) ** 2)


def sigma_xx_resonant(eps, delta, mu, temperature_K, metric_xx):
    """Resonant-limit σ_xx [e²/h] of two flat bands (theory §3, §4; δ_n ≪ k_BT, δ_n ≪ gap).

    σ_xx = 2π · 2 · W^(0)_12 · Δ² · G_xx with Δ² W^(0)_12 = δ_2 (−f'(ε_1)) + δ_1 (−f'(ε_2)),
    where G_xx = ∫ g_xx d²k/(2π)² of either band (|v^x_12|² = Δ² G^12_xx for flat bands).

    Parameters
    ----------
    eps : (float, float)
        Band energies ε_1 < ε_2 [meV].
    delta : (float, float)
        Broadenings δ_1, δ_2 [meV].
    mu : float
        Chemical potential [meV].
    temperature_K : float or array_like
        Temperature(s) [K].
    metric_xx : float
        ∫ g_xx d²k/(2π)² (``geometry["metric_integral"][0, 0]``).

    Returns
    -------
    numpy.ndarray
        σ_xx in e²/h, one flavour.
    """
    w = (delta[1] * minus_fermi_derivative(eps[0] - mu, temperature_K)
         + delta[0] * minus_fermi_derivative(eps[1] - mu, temperature_K))
    return 4.0 * math.pi * metric_xx * w


def seebeck_resonant(eps, delta, mu, temperature_K):
    """Resonant-limit Seebeck coefficient [μV/K] of two flat bands (theory §3, §4).

    S = −(k_B/e) Σ_n w_n β(ε_n − μ) / Σ_n w_n, w_1 = δ_2 (−f'(ε_1)), w_2 = δ_1 (−f'(ε_2)):
    a weighted mean of β(ε_n − μ); the geometry cancels. Carrier charge −e (theory §1).

    Parameters
    ----------
    eps : (float, float)
        Band energies ε_1 < ε_2 [meV].
    delta : (float, float)
        Broadenings δ_1, δ_2 [meV].
    mu : float or array_like
        Chemical potential(s) [meV].
    temperature_K : float or array_like
        Temperature(s) [K] (broadcast against ``mu``).

    Returns
    -------
    numpy.ndarray
        S in μV/K.
    """
    beta = 1.0 / (K_B_MEV_PER_K * np.asarray(temperature_K, float))
    mu = np.asarray(mu, float)
    w1 = delta[1] * minus_fermi_derivative(eps[0] - mu, temperature_K)
    w2 = delta[0] * minus_fermi_derivative(eps[1] - mu, temperature_K)
    mean = (w1 * (eps[0] - mu) + w2 * (eps[1] - mu)) / (w1 + w2)
    return -K_B_OVER_E_UV_PER_K * beta * mean
