"""The one table of model kinds: kind → builder + parameter spec (docs/input.md "[model]").

The deck reader (:mod:`qgt_mpi.io.deck_models`) checks a ``[model]`` section against the
``params`` spec of its kind; :func:`qgt_mpi.models.build_model` fills defaults and calls the
builder. Adding a model kind is one entry here (and its builder module). A builder marked
``collective`` reads files: it takes ``comm`` (rank 0 reads, the arrays are broadcast once).

Parameter types (checked by the deck reader): ``number`` (finite float, ``unit``),
``path`` (string; relative to the deck's directory), ``choice`` (one of ``choices``),
``plane`` (two different integers out of 1, 2, 3), ``matrix`` (list of equal-length lists
of numbers; ``shape`` with None for any length), ``vector`` (list of numbers),
``hoppings`` (a list of tables {R, a, b, t} or of rows [R1, R2, a, b, Re t, Im t]),
``integer``, ``per_layer`` (a number, or a list with one number per layer), ``table`` (a
sub-table checked against ``schema``, e.g. ``[model.relax]``) and ``valley`` (1, -1 or
"both": a continuum model's valley, or both side by side). ``bounds`` = (low, high) limits a
number or an integer (inclusive): sizes are checked before anything is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from qgt_mpi.models.carbon import DEFAULTS as SK
from qgt_mpi.models.continuum.presets import BM_SETS, TMD_SETS
from qgt_mpi.models.relax import RELAX_DEFAULTS as RELAX

REQUIRED = object()  # sentinel: the parameter has no default


@dataclass(frozen=True)
class Param:
    """One builder parameter: its type, default (REQUIRED or a value; None = absent)."""

    type: str
    default: object = REQUIRED
    unit: str = ""
    choices: tuple = ()
    shape: tuple = ()
    doc: str = ""
    bounds: tuple[float, float] | None = None
    schema: dict[str, Param] | None = None


@dataclass(frozen=True)
class Kind:
    """A model kind: builder(**params[, comm]) -> BlochModel, and its parameter spec."""

    builder: Callable
    params: dict[str, Param] = field(default_factory=dict)
    collective: bool = False
    doc: str = ""


def _haldane(t1, t2, mass, phi):
    from qgt_mpi.models.haldane import haldane

    return haldane(float(t1), float(t2), float(mass), float(phi))


def _wannier90(comm=None, **params):
    from qgt_mpi.models.wannier90 import read_wannier90

    return read_wannier90(comm=comm, **params)


def _tight_binding(**params):
    from qgt_mpi.models.inline import tight_binding

    return tight_binding(**params)


def _model_file(file, comm=None):
    from qgt_mpi.models.modelfile import load_model

    return load_model(file, comm)


def _bm_continuum(**params):
    from qgt_mpi.models.bm_continuum import bm_continuum

    return bm_continuum(**{k: v if k == "valley" else float(v) for k, v in params.items()})


def _tmd_continuum(**params):
    from qgt_mpi.models.continuum import tmd_continuum

    return tmd_continuum(**params)


def _htg_continuum(**params):
    from qgt_mpi.models.continuum import htg_continuum

    return htg_continuum(**params)


def _tbg_continuum(**params):
    from qgt_mpi.models.continuum import tbg_continuum

    return tbg_continuum(**params)


def _tbg_atomistic(comm=None, **params):
    """Atomistic TBG, relaxed on request; energies from charge neutrality by default."""
    from qgt_mpi.models.atomistic import build_tbg

    return build_tbg(comm=comm, **params)


def _atomistic(comm=None, **params):
    """Carbon p_z model of a structure file (ASE formats); rank 0 reads and relaxes."""
    from qgt_mpi.models.atomistic import build_structure

    return build_structure(comm=comm, **params)


# Slater–Koster keys shared by the carbon kinds (theory §2.6); the defaults are
# models/carbon.py DEFAULTS and models/relax.py RELAX_DEFAULTS (one home each).
_SLATER_KOSTER = {
    "a": Param("number", SK["a"], "nm", doc="graphene lattice constant (a0 = a/sqrt 3)",
               bounds=(0.1, 1.0)),
    "d0": Param("number", SK["d0"], "nm", doc="interlayer distance of V_pp_sigma0",
                bounds=(0.1, 1.0)),
    "vpp_pi0": Param("number", SK["vpp_pi0"], "meV", doc="V_pp_pi at a0"),
    "vpp_sigma0": Param("number", SK["vpp_sigma0"], "meV", doc="V_pp_sigma at d0"),
    "delta0": Param("number", SK["delta0"], "nm", doc="decay length", bounds=(1e-3, 1.0)),
    "cutoff": Param("number", SK["cutoff"], "nm", doc="hopping distance cutoff",
                    bounds=(0.1, 2.0)),
    "mass": Param("per_layer", 0.0, "meV",
                  doc="sublattice mass +-M/2 on A/B: one number (all layers) or one per layer"),
    "energy_zero": Param("choice", "neutrality", choices=("neutrality", "absolute"),
                         doc="energies (target, mu) relative to charge neutrality"),
}
# [model.relax]: continuum relaxation of a twisted bilayer (theory §2.6a, models/relax.py).
_RELAX = {
    "method": Param("choice", "continuum", choices=("continuum",),
                    doc="Nam-Koshino continuum elastic model + corrugation"),
    "lame_lambda": Param("number", RELAX["lame_lambda"], "meV/nm^2",
                         doc="Lame lambda (3.25 eV/A^2)", bounds=(1.0, 1e8)),
    "lame_mu": Param("number", RELAX["lame_mu"], "meV/nm^2", doc="Lame mu (9.57 eV/A^2)",
                     bounds=(1.0, 1e8)),
    "gsfe_v0": Param("number", RELAX["gsfe_v0"], "meV/nm^2",
                     doc="stacking energy V0 (AA - AB = 9 V0)", bounds=(0.0, 1e7)),
    "d_aa": Param("number", RELAX["d_aa"], "nm", doc="interlayer distance at AA",
                  bounds=(0.1, 1.0)),
    "d_ab": Param("number", RELAX["d_ab"], "nm", doc="interlayer distance at AB/BA",
                  bounds=(0.1, 1.0)),
    "grid": Param("integer", int(RELAX["grid"]), "",
                  doc="FFT grid per moire direction (0 = automatic)", bounds=(0, 512)),
    "tol": Param("number", RELAX["tol"], "", doc="relative force tolerance",
                 bounds=(1e-14, 1e-2)),
    "max_iter": Param("integer", int(RELAX["max_iter"]), "", doc="Newton steps",
                      bounds=(1, 1000)),
}
_RELAX_PARAM = Param("table", None, schema=_RELAX, doc="relaxation ([model.relax] method ...)")


KINDS: dict[str, Kind] = {
    "haldane": Kind(_haldane, {
        "t1": Param("number", unit="meV", doc="nearest-neighbour hopping"),
        "t2": Param("number", unit="meV", doc="next-nearest-neighbour hopping magnitude"),
        "mass": Param("number", 0.0, "meV", doc="sublattice mass M"),
        "phi": Param("number", math.pi / 2, "radians", doc="NNN phase"),
    }, doc="Haldane model on the honeycomb lattice (theory §2.2)"),
    "wannier90": Kind(_wannier90, {
        "hr": Param("path", None, doc="seedname_hr.dat"),
        "tb": Param("path", None, doc="seedname_tb.dat (lattice, hoppings, positions)"),
        "centres": Param("path", None, doc="seedname_centres.xyz"),
        "lattice": Param("matrix", None, "Å", shape=(3, 3), doc="lattice vectors (rows)"),
        "plane": Param("plane", [1, 2], doc="1-based indices of the in-plane vectors"),
        "out_of_plane": Param("choice", "refuse", choices=("refuse", "sum")),
        "fermi": Param("number", 0.0, "eV", doc="energy zero subtracted on site"),
    }, collective=True, doc="Wannier90 model, 2D slice (eV -> meV)"),
    "tight_binding": Kind(_tight_binding, {
        "lattice": Param("matrix", unit="a", shape=(2, 2), doc="rows a1, a2"),
        "positions": Param("matrix", unit="reduced", shape=(None, 2), doc="orbital positions"),
        "hoppings": Param("hoppings", unit="meV", doc="t_ab(R) list"),
        "onsite": Param("vector", None, "meV", doc="on-site energies"),
        "partners": Param("choice", "add", choices=("add", "refuse")),
    }, doc="inline tight-binding model"),
    "bm_continuum": Kind(_bm_continuum, {
        "theta": Param("number", 0.0, "degrees", doc="twist angle (give theta or alpha)"),
        "alpha": Param("number", 0.0, "", doc="chiral coupling w1/(hbar v k_theta)"),
        "w0": Param("number", 88.0, "meV", doc="AA interlayer coupling"),
        "w1": Param("number", 110.0, "meV", doc="AB interlayer coupling"),
        "hbar_v": Param("number", 594.4, "meV nm", doc="Dirac velocity"),
        "shells": Param("number", 3, "", doc="plane-wave cutoff in moire shells (integer)"),
        "valley": Param("valley", 1, "", doc='+1, -1 or "both"'),
        "mass": Param("number", 0.0, "meV", doc="sublattice mass (hBN alignment)"),
    }, doc="Bistritzer-MacDonald continuum model, one valley or both (theory §2.5)"),
    "tmd_continuum": Kind(_tmd_continuum, {
        "theta": Param("number", unit="degrees", doc="twist angle"),
        "params": Param("choice", "wang2024", choices=tuple(TMD_SETS),
                        doc="published parameter set; the keys below override it"),
        "a": Param("number", None, "nm", doc="monolayer lattice constant"),
        "mstar": Param("number", None, "m_e", doc="valence-band effective mass"),
        "V": Param("number", None, "meV", doc="intralayer moire potential"),
        "w": Param("number", None, "meV", doc="interlayer tunnelling"),
        "psi": Param("number", None, "degrees", doc="phase of the intralayer potential"),
        "layer_potential": Param("number", 0.0, "meV", doc="+U/2 bottom, -U/2 top layer"),
        "shells": Param("number", 3, "", doc="plane-wave cutoff in moire shells (integer)"),
        "valley": Param("valley", 1, "", doc='+1 (K), -1 (K\', time-reversal partner) or "both"'),
    }, doc="twisted homobilayer TMD continuum model, Wu et al. 2019 (theory §2.5a)"),
    "htg_continuum": Kind(_htg_continuum, {
        "theta": Param("number", unit="degrees", doc="consecutive twist angle"),
        "w0": Param("number", 77.0, "meV", doc="AA interlayer coupling"),
        "w1": Param("number", 110.0, "meV", doc="AB interlayer coupling"),
        "hbar_v": Param("number", 594.4, "meV nm", doc="Dirac velocity"),
        "shells": Param("number", 3, "", doc="plane-wave cutoff in moire shells (integer)"),
        "valley": Param("valley", 1, "", doc='+1, -1 or "both"'),
        "mass": Param("number", 0.0, "meV", doc="sublattice mass, all three layers"),
        "domain": Param("number", 1, "", doc="+1 or -1: offset of the second moire"),
    }, doc="helical trilayer graphene continuum model (theory §2.5a)"),
    "tbg_continuum": Kind(_tbg_continuum, {
        "theta": Param("number", unit="degrees", doc="twist angle"),
        "params": Param("choice", "bm2011", choices=tuple(BM_SETS),
                        doc="coupling set; w0, w1, hbar_v override it"),
        "w0": Param("number", None, "meV", doc="AA interlayer coupling"),
        "w1": Param("number", None, "meV", doc="AB interlayer coupling"),
        "hbar_v": Param("number", None, "meV nm", doc="Dirac velocity"),
        "shells": Param("number", 3, "", doc="plane-wave cutoff in moire shells (integer)"),
        "valley": Param("valley", 1, "", doc='+1, -1 or "both"'),
        "mass": Param("number", 0.0, "meV", doc="sublattice mass (hBN alignment)"),
        "rotate_cones": Param("choice", "no", choices=("no", "yes"),
                              doc="rotate each layer's Dirac cone by its twist"),
        "strain": Param("number", 0.0, "", doc="uniaxial heterostrain epsilon (fraction)"),
        "strain_angle": Param("number", 0.0, "degrees", doc="strain direction"),
        "poisson": Param("number", 0.16, "", doc="Poisson ratio"),
        "beta": Param("number", 3.14, "", doc="strain gauge-field coefficient"),
    }, doc="TBG continuum model: coupling sets, cone rotation, heterostrain (theory §2.5a)"),
    "tbg_atomistic": Kind(_tbg_atomistic, {
        "m": Param("integer", None, "", doc="commensurate index, r = 1 (give m or theta)",
                   bounds=(1, 400)),
        "theta": Param("number", None, "degrees", bounds=(0.1, 30.0),
                       doc="twist angle: the (m, 1) cell of the nearest angle is built"),
        **_SLATER_KOSTER,
        "relax": _RELAX_PARAM,
    }, collective=True, doc="atomistic commensurate TBG, Slater-Koster (theory §2.6)"),
    "atomistic": Kind(_atomistic, {
        "structure": Param("path", doc="structure file (any format ASE reads)"),
        "format": Param("string", None, doc="ASE format name (default: from the file name)"),
        **_SLATER_KOSTER,
        "relax": _RELAX_PARAM,
    }, collective=True, doc="carbon p_z cell from a structure file (theory §2.6b)"),
    "model_file": Kind(_model_file, {
        "file": Param("path", doc="qgt_mpi model file (qgt-mpi model save)"),
    }, collective=True, doc="model saved by qgt-mpi model save"),
}


def call_builder(kind: str, params: dict, comm=None):
    """Build ``kind`` from ``params`` with defaults filled in; ValueError if unknown/missing."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {sorted(KINDS)}")
    entry = KINDS[kind]
    missing = [n for n, p in entry.params.items() if p.default is REQUIRED and n not in params]
    extra = [n for n in params if n not in entry.params]
    if missing or extra:
        raise ValueError(f"model {kind!r} needs parameters {list(entry.params)}; "
                         f"missing {missing}, unknown {extra}")
    full = {n: params.get(n, p.default) for n, p in entry.params.items()}
    full = {n: v for n, v in full.items() if v is not None}
    if entry.collective:
        return entry.builder(comm=comm, **full)
    return entry.builder(**full)
