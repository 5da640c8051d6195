"""Continuum moiré models: one builder, presets as data (theory §2.5, §2.5a).

:mod:`.spec` says what a model is (layers, kinetic terms, harmonics), :mod:`.builder` turns
a spec into a sparse, k-polynomial model, :mod:`.moire` writes the physical models (BM TBG,
twisted TMDs) as specs and :mod:`.presets` holds the published parameter sets.
"""

from __future__ import annotations

from qgt_mpi.models.continuum.builder import ContinuumModel
from qgt_mpi.models.continuum.moire import bm_spec, helical_spec, strained_spec, tmd_spec
from qgt_mpi.models.continuum.presets import BM_SETS, TMD_SETS, TMD_SOURCES
from qgt_mpi.models.continuum.spec import ContinuumSpec, Harmonic, Layer

__all__ = ["TMD_SETS", "ContinuumModel", "ContinuumSpec", "Harmonic", "Layer", "bm_spec",
           "helical_spec", "htg_continuum", "strained_spec", "tbg_continuum", "tmd_continuum",
           "tmd_spec", "valley_key"]


def valley_key(valley: object) -> int:
    """1, −1 or 0 (both) from a deck value 1, −1 or "both"; ValueError otherwise."""
    if valley == "both":
        return 0
    if isinstance(valley, (int, float)) and valley in (1, -1):
        return int(valley)
    raise ValueError(f"valley must be 1, -1 or 'both', got {valley!r}")


def tmd_continuum(theta: float, params: str = "wang2024", a: float | None = None,
                  mstar: float | None = None, V: float | None = None,
                  w: float | None = None, psi: float | None = None,
                  layer_potential: float = 0.0, shells: float = 3,
                  valley: object = 1) -> ContinuumModel:
    """Builder of ``kind = "tmd_continuum"``: the set ``params``, overridden by given keys.

    Raises
    ------
    ValueError for an unknown set or out-of-range parameters.
    """
    if params not in TMD_SETS:
        raise ValueError(f"params must be one of {sorted(TMD_SETS)}, got {params!r}")
    given = {"a": a, "mstar": mstar, "V": V, "w": w, "psi": psi}
    p = {**TMD_SETS[params], **{k: float(v) for k, v in given.items() if v is not None}}
    if not 0.0 < float(theta) < 180.0:
        raise ValueError(f"theta must be in (0, 180) degrees, got {theta}")
    if not (p["a"] > 0 and p["mstar"] > 0):
        raise ValueError(f"a and mstar must be > 0, got a = {p['a']}, mstar = {p['mstar']}")
    if float(shells) != int(shells) or int(shells) < 1:
        raise ValueError(f"shells must be an integer >= 1, got {shells}")
    info = {"kind": "tmd_continuum", "params": params, "source": TMD_SOURCES[params],
            "theta": float(theta), **p, "layer_potential": float(layer_potential),
            "shells": int(shells)}
    spec = tmd_spec(float(theta), p["a"], p["mstar"], p["V"], p["w"], p["psi"],
                    float(layer_potential), int(shells), valley_key(valley), info)
    return ContinuumModel(spec)


def htg_continuum(theta: float, w0: float = 77.0, w1: float = 110.0, hbar_v: float = 594.4,
                  shells: float = 3, valley: object = 1, mass: float = 0.0,
                  domain: float = 1) -> ContinuumModel:
    """Builder of ``kind = "htg_continuum"``: helical trilayer graphene (theory §2.5a).

    Raises
    ------
    ValueError for out-of-range parameters.
    """
    if not 0.0 < float(theta) < 30.0:
        raise ValueError(f"theta must be in (0, 30) degrees, got {theta}")
    if domain not in (1, -1):
        raise ValueError(f"domain must be 1 or -1, got {domain}")
    if float(shells) != int(shells) or int(shells) < 1 or not float(hbar_v) > 0:
        raise ValueError(f"shells must be an integer >= 1 and hbar_v > 0, got {shells}, {hbar_v}")
    info = {"kind": "htg_continuum", "theta": float(theta), "w0": float(w0), "w1": float(w1),
            "hbar_v": float(hbar_v), "shells": int(shells), "mass": float(mass),
            "domain": int(domain)}
    return ContinuumModel(helical_spec(float(theta), float(w0), float(w1), float(hbar_v),
                                       int(shells), valley_key(valley), float(mass),
                                       int(domain), info))


def tbg_continuum(theta: float, params: str = "bm2011", w0: float | None = None,
                  w1: float | None = None, hbar_v: float | None = None, shells: float = 3,
                  valley: object = 1, mass: float = 0.0, rotate_cones: str = "no",
                  strain: float = 0.0, strain_angle: float = 0.0, poisson: float = 0.16,
                  beta: float = 3.14) -> ContinuumModel:
    """Builder of ``kind = "tbg_continuum"``: TBG with a coupling set, cone rotation and
    uniaxial heterostrain (theory §2.5a); the defaults are ``bm_continuum`` exactly.

    Raises
    ------
    ValueError for an unknown set or out-of-range parameters.
    """
    if params not in BM_SETS:
        raise ValueError(f"params must be one of {sorted(BM_SETS)}, got {params!r}")
    given = {"w0": w0, "w1": w1, "hbar_v": hbar_v}
    p = {**BM_SETS[params], **{k: float(v) for k, v in given.items() if v is not None}}
    if not 0.0 < float(theta) < 30.0 or not p["hbar_v"] > 0:
        raise ValueError(f"theta must be in (0, 30) degrees and hbar_v > 0, got {theta}, "
                         f"{p['hbar_v']}")
    if float(shells) != int(shells) or int(shells) < 1 or not abs(float(strain)) < 0.1:
        raise ValueError(f"shells must be an integer >= 1 and |strain| < 0.1, got {shells}, "
                         f"{strain}")
    info = {"kind": "tbg_continuum", "params": params, "theta": float(theta), **p,
            "shells": int(shells), "mass": float(mass), "rotate_cones": rotate_cones,
            "strain": float(strain), "strain_angle": float(strain_angle),
            "poisson": float(poisson), "beta": float(beta)}
    spec = strained_spec(float(theta), p["w0"], p["w1"], p["hbar_v"], int(shells),
                         valley_key(valley), float(mass), float(strain), float(strain_angle),
                         float(poisson), float(beta), rotate_cones == "yes", info=info)
    return ContinuumModel(spec)
