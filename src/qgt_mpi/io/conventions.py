"""netCDF/CF-style metadata of the result file: one table, applied by the writer.

Every dataset the run writes has an entry in :data:`VARIABLES` (``"group/name"`` → long
name, units, dimension names, extra attributes). :func:`apply` walks the table after the
data are written and gives each dataset present in the file

- ``long_name``; ``units`` as a UDUNITS-2 string (``"meV"``, ``"K"``, ``"uV/K"``, a scaled
  SI unit such as ``"3.874045865e-05 S"`` for e²/h, ``"1"`` for pure numbers), the unit
  being also spelt out in words in ``long_name`` when it is a natural unit;
- its dimensions as HDF5 dimension scales: a coordinate variable per dimension (the axis
  values, or labels/indices where the axis has no physical value), created when the run did
  not write one, so that netCDF readers (xarray's h5netcdf engine) name every axis;
- the sign conventions (theory §1) as attributes where a sign depends on them.

A dataset added by a new feature needs one line here (the xarray test fails otherwise).
Lengths are in the model's length unit: the root attribute or ``/model`` attribute
``length_unit`` (``"nm"`` for moiré/atomistic models); lattice models use the lattice
constant ``a``, which has no UDUNITS name, so those datasets carry ``units = "1"`` and say
"in units of a^2" in ``long_name``. Collective: every rank calls :func:`apply` identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np
from mpi4py import MPI

# Natural units as scaled SI units (CODATA 2018 exact e, h, k_B), UDUNITS-2 parsable.
E2_OVER_H = "3.874045865e-05 S"  # e^2/h (sheet conductance, per flavour × degeneracy)
KAPPA_OVER_T = "9.464311516e-13 W K-2"  # pi^2 k_B^2/(3h): thermal conductance quantum / K
DS_UNIT = "369810177.4 H-1"  # e^2/hbar^2 × meV (2-D superfluid weight, inverse inductance)
ALPHA_UNIT = "3.338394429e-09 A K-1"  # e k_B/h (2-D thermoelectric conductivity)

SIGN_HALL = ("carrier charge -e (e > 0); Omega_n = -2 Im T^(n)_xy; clean limit with mu in a "
             "gap: sigma_xy = -(e^2/h) sum_n f_n C_n (theory 1, 4)")
SIGN_CURV = ("Omega_n = -2 Im <d_x u_n|(1 - |u_n><u_n|)|d_y u_n>; C_n = (1/2pi) int Omega_n "
             "(theory 1)")
SIGN_SEEBECK = "S = -(1/eT) L1_xx/L0_xx with carrier charge -e: S > 0 for hole-like transport"


@dataclass(frozen=True)
class Var:
    """Metadata of one dataset: long name, UDUNITS units (L = length unit), dims, extras."""

    long_name: str
    units: str
    dims: tuple[str, ...]
    extra: dict[str, str] = field(default_factory=dict)


_SIG = ("mu", "delta_index", "temperature")
VARIABLES: dict[str, Var] = {
    # /bands
    "bands/bandwidth": Var("bandwidth max_k e_n - min_k e_n", "meV", ("band",)),
    "bands/min": Var("band minimum", "meV", ("band",)),
    "bands/max": Var("band maximum", "meV", ("band",)),
    "bands/min_gap": Var("smallest direct gap min_k (e_n+1 - e_n) above band n", "meV",
                         ("gap",)),
    # /geometry (theory §5)
    "geometry/chern": Var("Chern number C_n (link variables)", "1", ("band",),
                          {"sign_convention": SIGN_CURV}),
    "geometry/chern_max_flux": Var("largest |Berry flux| through one plaquette of band n, in "
                                   "units of pi (near 1 the link Chern number is ambiguous)",
                                   "1", ("band",)),
    "geometry/chern_gapped": Var("1 if band n is separated from its neighbours on this grid "
                                 "(its Chern number is an invariant)", "1", ("band",)),
    "geometry/chern_curvature": Var("(1/2pi) sum_k Omega_n dA (integrated Berry curvature)",
                                    "1", ("band",), {"sign_convention": SIGN_CURV}),
    "geometry/metric_integral": Var("integrated quantum metric int g_ij d^2k/(2pi)^2", "1",
                                    ("band", "component")),
    "geometry/trace_integral": Var("(1/2pi) int Tr g_n d^2k (>= |C_n|)", "1", ("band",)),
    "geometry/omega_I": Var("gauge-invariant Wannier spread Omega_I", "L2", ("band",)),
    "geometry/omega_I_bound": Var("lower bound |C_n| A_c/(2pi) of Omega_I", "L2", ("band",)),
    "geometry/trace_violation": Var("trace-condition violation max_k |Tr g - |Omega|| / "
                                    "<|Omega|>", "1", ("band",)),
    "geometry/chern_below_gap": Var("Chern number of the band group 0..n", "1",
                                    ("lower_group",)),
    # groups of touching bands (theory 5.7); per-band numbers of their bands are NaN
    "geometry/band_undefined": Var("1 if band n is inside a group of touching bands (its "
                                   "per-band numbers are NaN)", "1", ("band",)),
    "geometry/group_bands": Var("first and last band of each group of touching bands", "1",
                                ("touching_group", "group_end")),
    "geometry/group_computed": Var("1 if the group's numbers were accumulated (at most "
                                   "GROUP_MAX bands), 0: NaN", "1", ("touching_group",)),
    "geometry/group_chern": Var("Chern number of the group (link variables, determinants)",
                                "1", ("touching_group",), {"sign_convention": SIGN_CURV}),
    "geometry/group_chern_max_flux": Var("largest |Berry flux| through one plaquette of the "
                                         "group, in units of pi", "1", ("touching_group",)),
    "geometry/group_chern_curvature": Var("(1/2pi) sum_k Omega_G dA of the group", "1",
                                          ("touching_group",), {"sign_convention": SIGN_CURV}),
    "geometry/group_metric_integral": Var("integrated group (projector) metric int g^G_ij "
                                          "d^2k/(2pi)^2", "1", ("touching_group", "component")),
    "geometry/group_trace_integral": Var("(1/2pi) int Tr g^G d^2k of the group (>= |C_G|)",
                                         "1", ("touching_group",)),
    "geometry/group_trace_violation": Var("trace-condition violation of the group max_k "
                                          "|Tr g^G - |Omega_G|| / <|Omega_G|>", "1",
                                          ("touching_group",)),
    # /transport (theory §4); sigma in e^2/h, kappa/T in pi^2 k_B^2/(3h)
    "transport/temperature": Var("temperature", "K", ("temperature",)),
    "transport/mu": Var("chemical potential", "meV", ("mu",)),
    "transport/filling_target": Var("filling held fixed (mean occupation of the chosen bands)",
                                    "1", ("filling_target",)),
    "transport/mu_solved": Var("chemical potential solved for the filling at each (delta, T)",
                               "meV", ("filling_target", "delta_index", "temperature")),
    "transport/delta_index": Var("index of the broadening choice", "1", ("delta_index",)),
    "transport/delta": Var("quasiparticle broadening delta_n (Lorentzian half-width)", "meV",
                           ("delta_index", "band")),
    "transport/sigma_xx": Var("longitudinal conductivity sigma_xx (units of e^2/h)",
                              E2_OVER_H, _SIG),
    "transport/sigma_xx_drude": Var("intraband (Drude, n = m) part of sigma_xx (units of "
                                    "e^2/h)", E2_OVER_H, _SIG),
    "transport/sigma_xx_geometric": Var("interband (geometric, n != m) part of sigma_xx "
                                        "(units of e^2/h)", E2_OVER_H, _SIG),
    "transport/sigma_yy": Var("longitudinal conductivity sigma_yy (units of e^2/h)",
                              E2_OVER_H, _SIG),
    "transport/sigma_xy": Var("Hall conductivity sigma_xy (units of e^2/h)", E2_OVER_H, _SIG,
                              {"sign_convention": SIGN_HALL}),
    "transport/seebeck": Var("paper Eq. 19 diagonal ratio -L1_xx/(eT L0_xx); the measured "
                             "thermopower is seebeck_xx (equal only when sigma_xy = 0)",
                             "uV/K", _SIG, {"sign_convention": SIGN_SEEBECK}),
    "transport/kappa_xx": Var("paper Eq. 18 diagonal form (L2_xx - L1_xx^2/L0_xx)/(e^2 T) as "
                              "kappa_xx/T (units of pi^2 k_B^2/(3h)); see kappa_xx_full",
                              KAPPA_OVER_T, _SIG),
    "transport/lorenz_ratio": Var("Lorenz ratio kappa_xx/(T sigma_xx L_0), L_0 = "
                                  "pi^2 k_B^2/(3e^2)", "1", _SIG),
    # flags of undefined quantities and of non-invariant Chern numbers (docs/input.md)
    "transport/seebeck_undefined": Var("1 where seebeck is undefined (sigma_xx = 0, NaN)",
                                       "1", _SIG),
    "transport/kappa_xx_undefined": Var("1 where kappa_xx is undefined (sigma_xx = 0, NaN)",
                                        "1", _SIG),
    "transport/lorenz_ratio_undefined": Var("1 where lorenz_ratio is undefined "
                                            "(sigma_xx = 0, NaN)", "1", _SIG),
    **{f"transport/{k}_undefined": Var(f"1 where {k} is undefined (singular sigma tensor "
                                       "or component, NaN)", "1", _SIG)
       for k in ("seebeck_xx", "seebeck_xy", "kappa_xx_full", "kappa_xy",
                 "lorenz_ratio_xx_full", "lorenz_ratio_xy")},
    # full tensors (theory §4 full tensors)
    "transport/alpha_xx": Var("thermoelectric conductivity alpha_xx = -L1_xx/(eT) (units of "
                              "e k_B/h)", ALPHA_UNIT, _SIG),
    "transport/alpha_xy": Var("transverse thermoelectric conductivity alpha_xy (units of "
                              "e k_B/h)", ALPHA_UNIT, _SIG, {"sign_convention": SIGN_HALL}),
    "transport/seebeck_xx": Var("measured thermopower S_xx of S = sigma^-1 alpha", "uV/K",
                                _SIG, {"sign_convention": SIGN_SEEBECK}),
    "transport/seebeck_xy": Var("Nernst signal S_xy of S = sigma^-1 alpha", "uV/K", _SIG),
    "transport/kappa_xx_full": Var("kappa_xx/T of the full tensor kappa = [L2 - L1 L0^-1 L1]/"
                                   "(e^2 T) (units of pi^2 k_B^2/(3h))", KAPPA_OVER_T, _SIG),
    "transport/kappa_xy": Var("thermal Hall conductivity kappa_xy/T (units of pi^2 k_B^2/(3h))",
                              KAPPA_OVER_T, _SIG, {"sign_convention": SIGN_HALL}),
    "transport/lorenz_ratio_xx_full": Var("Lorenz ratio kappa_xx/(T sigma_xx L_0), full tensor",
                                          "1", _SIG),
    "transport/lorenz_ratio_xy": Var("Hall Lorenz ratio kappa_xy/(T sigma_xy L_0)", "1", _SIG),
    "transport/density": Var("carrier density per unit cell (Lorentzian spectral function, "
                             "times degeneracy)", "1", _SIG),
    "transport/filling": Var("occupation of each band per flavour (0..1)", "1",
                             (*_SIG, "band")),
    # /solver: windowed (SLEPc) solves (theory §5)
    "solver/window_edges": Var("highest eigenvalue below and lowest above the window over the "
                               "grid", "meV", ("side",)),
    "solver/window_edge_gap": Var("smallest direct gap at one k between the window and the "
                                  "nearest eigenvalue below / above it", "meV", ("side",)),
    "solver/chern_curvature_out": Var("out-of-window share of (1/2pi) sum_k Omega_n dA", "1",
                                      ("band",), {"sign_convention": SIGN_CURV}),
    "solver/metric_integral_out": Var("out-of-window share of int g_ii d^2k/(2pi)^2", "1",
                                      ("band", "diagonal_component")),
    # /kgrid (k-resolved, row-major N1 x N2 grid; theory §1, §5)
    "kgrid/k_frac": Var("k-point in reduced coordinates (k = k1 b1 + k2 b2)", "1",
                        ("k1", "k2", "reciprocal_axis")),
    "kgrid/k_cart": Var("k-point in Cartesian coordinates", "L-1", ("k1", "k2", "cartesian")),
    "kgrid/energies": Var("band energy e_n(k)", "meV", ("k1", "k2", "band")),
    "kgrid/berry_curvature": Var("Berry curvature Omega_n(k)", "L2", ("k1", "k2", "band"),
                                 {"sign_convention": SIGN_CURV}),
    "kgrid/metric": Var("quantum metric g_ij^(n)(k)", "L2", ("k1", "k2", "band", "component")),
    # /timing
    "timing/phases": Var("phase of the run", "", ("phases",)),
    "timing/seconds": Var("wall time per phase (min, mean, max over ranks)", "s",
                          ("phases", "statistic")),
    "timing/rank0_seconds": Var("wall time per phase: rank 0, max and mean over the other "
                                "ranks (NaN on one rank)", "s", ("phases", "rank_statistic")),
    "timing/rank0_peak_memory": Var("peak resident memory (VmHWM) at the end of each phase, "
                                    "in MiB: rank 0, max and mean over the other ranks (NaN: "
                                    "phase not entered, or one rank)", "1",
                                    ("phases", "rank_statistic")),
    # /valley (theory §5.8, [solver] valley = true)
    "valley/chern": Var("link Chern number of each valley group", "1", ("valley_flux_group",),
                        {"sign_convention": SIGN_CURV}),
    "valley/max_flux": Var("largest |Berry flux| through one plaquette of each valley group, in "
                           "units of pi", "1", ("valley_flux_group",)),
    "valley/metric_integral": Var("integrated group metric int g_ij d^2k/(2pi)^2 of valley -1, "
                                  "valley +1 and the window", "1", ("valley_group", "component")),
    "valley/trace_integral": Var("(1/2pi) int Tr g d^2k of valley -1, valley +1 and the window",
                                 "1", ("valley_group",)),
    # /bands_path ([bands] section of a run, or qgt-mpi bands; bandpath.py)
    "bands_path/energies": Var("band energy e_n(k) along the path (all bands, or the solver "
                               "window)", "meV", ("path_point", "band")),
    "bands_path/k": Var("k-point of the path in Cartesian coordinates", "L-1",
                        ("path_point", "cartesian")),
    "bands_path/distance": Var("path length from the first point, cumulative sum of |dk|",
                               "L-1", ("path_point",)),
    "bands_path/labels": Var("label of each corner of the path", "", ("corner",)),
    "bands_path/label_positions": Var("path length at each corner (tick position)", "L-1",
                                      ("corner",)),
    "bands_path/window_edges": Var("nearest computed eigenvalue below and above the solver "
                                   "window at each point (NaN where none was found)", "meV",
                                   ("path_point", "side")),
    # /superfluid (theory §6)
    "superfluid/temperature": Var("temperature", "K", ("temperature",)),
    "superfluid/gap": Var("pairing gap Delta(T)", "meV", ("temperature",)),
    "superfluid/D_s": Var("superfluid weight D_s,ij (units of e^2/hbar^2 meV)", DS_UNIT,
                          ("temperature", "i", "j")),
    "superfluid/D_s_ordinary_metric": Var("superfluid weight with the ordinary (not minimal) "
                                          "metric (units of e^2/hbar^2 meV)", DS_UNIT,
                                          ("temperature", "i", "j")),
    "superfluid/D_s_sqrt_det": Var("sqrt(det D_s) (units of e^2/hbar^2 meV)", DS_UNIT,
                                   ("temperature",)),
    "superfluid/bkt_line": Var("BKT criterion 8 k_B T/pi (units of e^2/hbar^2 meV)",
                               DS_UNIT, ("temperature",)),
    "superfluid/metric_integral_minimal": Var("minimal integrated metric int g_ij "
                                              "d^2k/(2pi)^2", "1", ("i", "j")),
    "superfluid/metric_integral_ordinary": Var("integrated metric int g_ij d^2k/(2pi)^2",
                                               "1", ("i", "j")),
    "superfluid/position_shift": Var("orbital position shift of the minimal metric", "L",
                                     ("orbital", "cartesian")),
    "superfluid/T_BKT": Var("BKT transition temperature", "K", ()),
}

# Coordinates created when the run wrote none: dim → (long_name, units, values(n, grid)).
_LABELS = {"component": ["xx", "yy", "xy"], "diagonal_component": ["xx", "yy"],
           "side": ["below", "above"], "valley_group": ["v-1", "v+1", "win"],
           "cartesian": ["x", "y"], "i": ["x", "y"], "j": ["x", "y"],
           "reciprocal_axis": ["b1", "b2"], "statistic": ["min", "mean", "max"],
           "rank_statistic": ["r0", "max", "mean"],
           "group_end": ["from", "to"]}
_COORD_NAMES = {
    "band": "band index n (0-based, ascending energy)", "gap": "gap above band n (0-based)",
    "lower_group": "index of the group of lowest bands", "orbital": "orbital index",
    "k1": "reduced coordinate k1 along b1", "k2": "reduced coordinate k2 along b2",
    "component": "tensor component", "cartesian": "Cartesian axis", "i": "Cartesian axis i",
    "j": "Cartesian axis j", "reciprocal_axis": "reciprocal lattice vector",
    "statistic": "statistic over ranks",
    "rank_statistic": "rank 0 (r0), max and mean over the other ranks",
    "k": "flat k-point index i*N2 + j (row-major)",
    "diagonal_component": "diagonal tensor component", "side": "side of the solver window",
    "valley_group": "valley -1, valley +1, the whole window",
    "valley_flux_group": "valley -1, valley +1, each band (valley -1 bands first), the window",
    "touching_group": "index of a group of touching bands (theory 5.7)",
    "group_end": "first (from) and last (to) band of the group",
    "path_point": "index of the point along the band path", "corner": "index of a labelled "
    "corner of the band path",
}


def coordinate_values(dim: str, n: int) -> np.ndarray:
    """Values of a created coordinate of length ``n`` (labels, k fractions or indices)."""
    if dim in _LABELS:
        return np.array(_LABELS[dim][:n], dtype="S4")
    if dim in ("k1", "k2"):
        return np.arange(n) / n
    return np.arange(n)


# The same units as the Python API shows them (Result quantities): natural units in words.
_E2H, _KT, _L0 = "e^2/h", "kappa/T in units of pi^2 k_B^2/(3h)", "L/L_0, L_0 = pi^2 k_B^2/(3 e^2)"
NATURAL_UNITS = {
    **{f"transport/{k}": _E2H for k in ("sigma_xx", "sigma_xx_drude", "sigma_xx_geometric",
                                        "sigma_yy", "sigma_xy")},
    **{f"transport/{k}": _KT for k in ("kappa_xx", "kappa_xx_full", "kappa_xy")},
    **{f"transport/{k}": _L0 for k in ("lorenz_ratio", "lorenz_ratio_xx_full",
                                       "lorenz_ratio_xy")},
    "transport/alpha_xx": "e k_B/h", "transport/alpha_xy": "e k_B/h",
    "transport/density": "1/cell", "transport/filling": "1 (occupation of the band per "
    "flavour, 0..1)",
}


def natural_units(path: str) -> str:
    """Units of dataset ``path`` ("group/name") as the Python API states them: the natural
    unit in words where the file's UDUNITS string is a scaled SI unit, else that string."""
    return NATURAL_UNITS.get(path) or VARIABLES[path].units


def length_unit(f: h5py.File) -> str:
    """The model's length unit: ``length_unit`` attribute of / or /model, default "a"."""
    for obj in (f, f.get("model")):
        if obj is not None and "length_unit" in obj.attrs:
            value = obj.attrs["length_unit"]
            return value.decode() if isinstance(value, bytes) else str(value)
    return "a"


def resolve_units(units: str, long_name: str, length: str) -> tuple[str, str]:
    """Replace the length placeholder L in ``units`` (L, L2, L-1) by the model's unit.

    A length unit without a UDUNITS name (the lattice constant "a") becomes units "1" with
    the unit spelt out in the long name.
    """
    if not units.startswith("L"):
        return units, long_name
    power = units[1:]
    if length == "a":
        text = {"": "a", "2": "a^2", "-1": "1/a"}[power]
        return "1", f"{long_name} (units of {text}, a = lattice constant)"
    return f"{length}{power}", long_name


def apply(comm: MPI.Comm, f: h5py.File) -> None:
    """Set long_name/units/sign attributes and attach dimension scales. Collective.

    Datasets absent from the file are skipped; coordinate variables missing from a group
    are created (all ranks) and filled by rank 0.
    """
    length = length_unit(f)
    fixed_filling = "transport/filling_target" in f  # the sweep axis is the filling
    for path, var in VARIABLES.items():
        if path not in f or (fixed_filling and path == "transport/mu"):
            continue
        dset = f[path]
        dims = var.dims
        if fixed_filling and dims[:1] == ("mu",):
            dims = ("filling_target", *dims[1:])
        if dims[:2] == ("k1", "k2") and dset.ndim == len(dims) - 1:
            dims = ("k", *dims[2:])  # k-fields written flat (no grid shape given)
        units, long_name = resolve_units(var.units, var.long_name, length)
        dset.attrs["long_name"] = long_name
        if units:
            dset.attrs["units"] = units
        elif "units" in dset.attrs:
            del dset.attrs["units"]
        for key, value in var.extra.items():
            dset.attrs[key] = value
        _attach(comm, f[path.rsplit("/", 1)[0]], dset, dims)


def _attach(comm: MPI.Comm, group: h5py.Group, dset: h5py.Dataset,
            dims: tuple[str, ...]) -> None:
    """Attach (creating where needed) one coordinate per dimension of ``dset``.

    A table entry that does not fit the dataset (other rank, or an axis of another length)
    leaves those axes without a scale instead of failing the write of a finished run; the
    xarray test (tests/test_output_conventions.py) reports it.
    """
    if len(dims) != dset.ndim:
        return
    for axis, dim in enumerate(dims):
        coord = _coordinate(comm, group, dim, dset.shape[axis])
        if coord is None:
            continue
        if not h5py.h5ds.is_scale(coord.id):
            coord.make_scale(dim)
        if coord.name == dset.name:
            continue
        if not any(s.name == coord.name for s in dset.dims[axis].values()):
            dset.dims[axis].attach_scale(coord)


def _coordinate(comm: MPI.Comm, group: h5py.Group, dim: str, n: int) -> h5py.Dataset | None:
    """The group's coordinate variable ``dim`` of length n, created if absent. Collective.

    None when a dataset of that name exists but is not an (n,) axis.
    """
    if dim in group:
        coord = group[dim]
        return coord if coord.shape == (n,) else None
    values = coordinate_values(dim, n)
    coord = group.create_dataset(dim, (n,), dtype=values.dtype)
    coord.attrs["long_name"] = _COORD_NAMES.get(dim, dim)
    if values.dtype.kind != "S":
        coord.attrs["units"] = "1"
    if comm.rank == 0 and n:
        coord[...] = values
    coord.make_scale(dim)
    return coord
