"""Command-line options of ``qgt-mpi plot`` (no matplotlib import: the parser stays fast).

Turns argparse results into :class:`qgt_mpi.io.selection.Selection` and
:class:`qgt_mpi.plot.PlotOptions`.
"""

from __future__ import annotations

import argparse

from qgt_mpi.io.selection import Selection

FAMILIES = ("sweep", "paper", "maps", "bands")


def add_plot_args(p: argparse.ArgumentParser) -> None:
    """Options of the ``plot`` subcommand (the --mu/--delta/--temperature are added by cli)."""
    p.add_argument("--x", nargs="+", choices=("temperature", "mu", "delta"),
                   help="sweep axes to plot against (default: every axis with >= 3 points)")
    p.add_argument("--quantity", nargs="+", metavar="Q", help="single-column figure per "
                   "transport quantity (e.g. sigma_xx seebeck kappa_xx) instead of the "
                   "overview")
    p.add_argument("--layout", choices=("single", "double"), default="single",
                   help="width of the --quantity figures: one journal column (3.4 in) or "
                   "two (7 in); overviews are always two columns")
    p.add_argument("--path", help='band path: named points and/or reduced coordinates, '
                   'e.g. "G K M G" or "0,0 0.5,0 1/3,1/3 G"')
    p.add_argument("--map", nargs="+", default=[], metavar="FIELD", help="BZ maps of "
                   "k-resolved fields (energies, berry_curvature, metric)")
    p.add_argument("--bandwidth", action="store_true", help="also draw W(R_c) of the "
                   "truncated flat-band model for an exactly flattened deck (slow)")
    p.add_argument("--only", nargs="+", choices=FAMILIES, help="draw only these families")
    p.add_argument("--bands", nargs="+", type=band_token, metavar="N", help="bands of the path "
                   "figure and the BZ maps: indices (0-based, of the file: the window's for a "
                   "windowed run), ranges 2-5, or all (default: the window, or the bands "
                   "around the Fermi level, at most 16 on the path and 4 in the maps)")


def band_token(text: str) -> list[int] | str:
    """One --bands value: "all", an index "3" or an inclusive range "2-5" (or "2:5")."""
    if text == "all":
        return "all"
    lo, sep, hi = text.replace(":", "-").partition("-")
    try:
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use band indices (3), ranges (2-5) or "
                                         "all") from None
    if first < 0 or last < first:
        raise argparse.ArgumentTypeError(f"{text!r}: indices are >= 0 and ranges ascending")
    return list(range(first, last + 1))


def bands_choice(values: list | None) -> list[int] | str | None:
    """The --bands values combined: None, "all", or sorted distinct indices."""
    if not values:
        return None
    if "all" in values:
        return "all"
    return sorted({b for v in values for b in v})


def selection(args: argparse.Namespace) -> Selection:
    """The sweep-point selection of --mu/--delta/--temperature."""
    return Selection(temperature=args.temperature, mu=args.mu, delta=args.delta)


def options(args: argparse.Namespace):
    """PlotOptions from parsed arguments (imports the plot package)."""
    from qgt_mpi.plot import PlotOptions

    return PlotOptions(x=args.x, select=selection(args), quantities=args.quantity,
                       path=args.path, maps=list(args.map), bandwidth=args.bandwidth,
                       only=args.only, layout=args.layout, bands=bands_choice(args.bands))
