"""The deck's carbon kinds: ``tbg_atomistic`` and ``atomistic`` (structure files), built once.

Rank 0 does what is serial and file-bound — reading the structure (models/structure.py),
relaxing the cell (models/relax.py, theory §2.6a), finding charge neutrality — and broadcasts
positions and facts (parallel/rootcall.py: the value or the same error on every rank); every
rank then builds the same :class:`~qgt_mpi.models.carbon.CarbonModel` from the same bits.

Relaxation of a structure file (``[model.relax]`` with ``structure``) applies to a rigid
commensurate twisted bilayer: two honeycomb layers whose atoms sit on perfect lattices (within
``RIGID_TOL``); its twist θ = φ_1 − φ_0 and an AA point r_AA are read off the atoms (theory
§2.6b: δ0(r) = (c_1 − c_0) + (1 − R(θ)⁻¹)(r − c_1) vanishes at r_AA) and the cell is relaxed in
the frame where layer 0 is unrotated with AA at the origin. A structure relaxed elsewhere is
used as given.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from qgt_mpi.models.carbon import DEFAULTS, CarbonModel, carbon_model, mass_text
from qgt_mpi.models.tbg_atomistic import (
    NEUTRALITY_DENSE,
    m_for_angle,
    neutrality_search,
    petsc_ready,
    relaxed_positions,
    rigid_cell,
    shift_energy,
    twist_angle,
)

RIGID_TOL = 1e-5  # nm: a structure to relax must sit on perfect lattices to this accuracy
_MAPS = ("r", "delta", "energy", "d")


def _relax_cell(lattice: np.ndarray, pos3: np.ndarray, layer: np.ndarray, theta: float,
                relax: dict, a: float, d0: float) -> dict[str, Any]:
    """Rank-0 work: relax the rigid cell (AA at the origin, layer 0 unrotated)."""
    from qgt_mpi.models.relax import relax_twisted_bilayer

    log = logging.getLogger("qgt_mpi")
    params = {k: v for k, v in relax.items() if k != "method"}
    result = relax_twisted_bilayer(lattice, a, theta, params, log=log.info)
    facts = result.facts()
    out: dict[str, Any] = {"positions": relaxed_positions(result, pos3, layer, d0),
                           "facts": facts}
    out.update({f"map_{k}": np.asarray(v) for k, v in result.stacking_map().items()})
    log.info("relaxation (continuum, theory 2.6a): largest displacement %.4f nm, d_AA %.4f nm, "
             "d_AB %.4f nm, %s Newton steps", result.max_displacement(), facts.get("d_aa", 0.0),
             facts.get("d_ab", 0.0), facts.get("iterations", "?"))
    return out


def _finish(comm, model: CarbonModel, found: dict[str, Any] | None,
            energy_zero: str) -> CarbonModel:
    """Attach relaxation maps and put the energy zero at charge neutrality (collective)."""
    if found is not None:
        model.maps = {f"stacking_{k}": found[f"map_{k}"] for k in _MAPS if f"map_{k}" in found}
    if energy_zero != "neutrality":
        return model

    def search() -> dict[str, Any]:
        return {"e_cn": np.array(neutrality_search(model))}

    if comm is None:
        e_cn, split = search()["e_cn"]
    else:
        from qgt_mpi.parallel.rootcall import root_call

        if model.norb > NEUTRALITY_DENSE:  # rank 0 solves with PETSc, whose first import
            petsc_ready()  # is collective over COMM_WORLD (it duplicates it): every rank
        e_cn, split = root_call(comm, search)["e_cn"]
    mass = float(np.max(np.abs(np.ravel(params_mass(model)))))
    if split > mass + 1.0:
        logging.getLogger("qgt_mpi").warning(
            "charge neutrality uncertain: the two states at the moiré K averaged for E_CN = "
            "%.3f meV are %.2f meV apart (a Dirac point: ~0; with the mass: <= %.1f meV); "
            "other states lie nearer the monolayer Dirac energy (theory 2.6b). Check the "
            "bands at K, or use energy_zero = \"absolute\" and a target of your own",
            e_cn, split, mass)
    out = shift_energy(model, float(e_cn))
    out.info["neutrality_splitting_meV"] = float(split)
    return out


def params_mass(model: CarbonModel) -> np.ndarray:
    """The sublattice masses of ``model`` (per layer) from its on-site terms [meV]."""
    onsite = model.rows[model.entry] == model.cols[model.entry]
    if not np.any(onsite):
        return np.zeros(1)
    return 2.0 * np.abs(np.real(model.t[onsite]))


def _call(comm, func) -> dict[str, Any]:
    if comm is None:
        return func()
    from qgt_mpi.parallel.rootcall import root_call

    return root_call(comm, func)


def build_tbg(comm=None, energy_zero: str = "neutrality", relax: dict | None = None,
              **params: Any) -> CarbonModel:
    """``kind = "tbg_atomistic"`` (theory §2.6), relaxed when ``relax`` is given. Collective
    over ``comm`` (None: serial)."""
    from qgt_mpi.models.tbg_atomistic import tbg_atomistic

    sk = {k: float(params.get(k, DEFAULTS[k])) for k in DEFAULTS}
    m, mass = params.get("m"), params.get("mass", 0.0)
    if (m is None) == (params.get("theta") is None):
        raise ValueError("give one of m (the commensurate index) and theta (degrees: the "
                         "nearest (m, 1) cell)")
    if m is None:
        m = m_for_angle(float(params["theta"]))
        logging.getLogger("qgt_mpi").info(
            "theta = %g deg: the nearest commensurate cell is m = %d (theta = %.4f deg, "
            "%d orbitals)", params["theta"], m, twist_angle(m), 4 * (3 * m * m + 3 * m + 1))
    if float(m) != int(m) or int(m) < 1:
        raise ValueError(f"m must be an integer >= 1, got {m}")
    if relax is None:
        rigid = tbg_atomistic(m, a=sk["a"], d0=sk["d0"], vpp_pi0=sk["vpp_pi0"],
                              vpp_sigma0=sk["vpp_sigma0"], delta0=sk["delta0"],
                              cutoff=sk["cutoff"], mass=mass)
        return _finish(comm, rigid, None, energy_zero)
    lattice, pos3, layer, theta = rigid_cell(int(m), sk["a"], sk["d0"])
    found = _call(comm, lambda: _relax_cell(lattice, pos3, layer, theta, relax, sk["a"],
                                            sk["d0"]))
    info: dict[str, object] = {"kind": "tbg_atomistic", "length_unit": "nm", "m": int(m),
                               "theta": twist_angle(int(m)), **sk, "relax_method": "continuum"}
    info.update({f"relax_{k}": v for k, v in found["facts"].items()})
    info["mass"] = mass_text(mass)
    model = carbon_model(lattice, found["positions"], layer, sk, mass, info)
    model.m, model.theta = int(m), twist_angle(int(m))
    return _finish(comm, model, found, energy_zero)


def _read(path: str, fmt: str | None, relax: dict | None, sk: dict) -> dict[str, Any]:
    """Rank-0 work: read the structure, relax it if asked."""
    from qgt_mpi.models.structure import read_structure

    s = read_structure(path, fmt)
    log = logging.getLogger("qgt_mpi")
    layers = "; ".join(f"{i}: {n} atoms at z = {z:.4f} nm" for i, (n, z) in
                       enumerate(s.layers()))
    log.info("structure %s: %d atoms, %d layers (%s)", path, len(s.positions),
             len(s.layers()), layers)
    out: dict[str, Any] = {"lattice": s.lattice, "positions": s.positions, "layer": s.layer,
                           "source": s.source}
    if relax is not None:
        out.update(_relax_structure(s.lattice, s.positions, s.layer, relax, sk))
    return out


def _relax_structure(lattice: np.ndarray, pos3: np.ndarray, layer: np.ndarray, relax: dict,
                     sk: dict) -> dict[str, Any]:
    """Relax a rigid twisted bilayer read from a file (module doc); positions back in place."""
    from qgt_mpi.models.carbon import bond_sublattice, pairs

    if int(layer.max()) != 1:
        raise ValueError(f"model.relax needs a twisted bilayer; the structure has "
                         f"{int(layer.max()) + 1} layers")
    a, b, d3 = pairs(pos3, lattice, 0.5 * (sk["a"] + sk["a"] / math.sqrt(3.0)))
    sub, _, phi = bond_sublattice(layer, a, b, d3, sk["a"])
    corner, prim = [], []
    for ell in (0, 1):
        rot = np.array([[math.cos(phi[ell]), -math.sin(phi[ell])],
                        [math.sin(phi[ell]), math.cos(phi[ell])]])
        vecs = sk["a"] * np.array([[1.0, 0.0], [0.5, math.sqrt(3.0) / 2]]) @ rot.T
        sites = pos3[(layer == ell) & (sub == 0), :2]
        frac = (sites - sites[0]) @ np.linalg.inv(vecs)
        worst = float(np.abs(frac - np.round(frac)).max() * sk["a"])
        if worst > RIGID_TOL:
            raise ValueError(f"model.relax: layer {ell} is not a rigid honeycomb (atoms off a "
                             f"perfect lattice by {worst:.2e} nm > {RIGID_TOL:g} nm); a "
                             "structure relaxed elsewhere is used without [model.relax]")
        corner.append(sites[0] - (vecs[0] + vecs[1]) / 3.0)  # a hexagon centre of the layer
        prim.append(vecs)
    theta = float(phi[1] - phi[0])
    r_inv = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    aa = corner[1] - np.linalg.solve(np.eye(2) - r_inv, corner[1] - corner[0])
    back = np.array([[math.cos(phi[0]), -math.sin(phi[0])], [math.sin(phi[0]), math.cos(phi[0])]])
    local = pos3.copy()
    local[:, :2] = (pos3[:, :2] - aa) @ back  # rotate by −φ_0 about r_AA
    found = _relax_cell(lattice @ back, local, layer, theta, relax, sk["a"], sk["d0"])
    moved = found["positions"]
    moved[:, :2] = moved[:, :2] @ back.T + aa
    moved[:, 2] += pos3[:, 2].mean() - moved[:, 2].mean()
    found["positions"] = moved
    found["facts"] = {**found["facts"], "theta_deg": math.degrees(theta)}
    return found


def build_structure(comm=None, structure: str = "", format: str | None = None,
                    energy_zero: str = "neutrality", relax: dict | None = None,
                    mass: float | list[float] = 0.0, **params: Any) -> CarbonModel:
    """``kind = "atomistic"``: the carbon model of a structure file (theory §2.6b). Collective
    over ``comm`` (rank 0 reads; None: serial)."""
    sk = {k: float(params.get(k, DEFAULTS[k])) for k in DEFAULTS}
    found = _call(comm, lambda: _read(structure, format, relax, sk))
    info: dict[str, object] = {"kind": "atomistic", "length_unit": "nm",
                               "structure": str(found["source"]), "format": format or "guessed",
                               "layers": int(found["layer"].max()) + 1, **sk}
    info["mass"] = mass_text(mass)
    if relax is not None:
        info.update({"relax_method": "continuum",
                     **{f"relax_{k}": v for k, v in found["facts"].items()}})
    model = carbon_model(found["lattice"], found["positions"], found["layer"], sk, mass, info)
    if model.layer.max() >= 1:
        model.info["theta"] = math.degrees(float(model.orientation[1] - model.orientation[0]))
    return _finish(comm, model, found if relax is not None else None, energy_zero)
