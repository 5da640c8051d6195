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


def selection(args: argparse.Namespace) -> Selection:
    """The sweep-point selection of --mu/--delta/--temperature."""
    return Selection(temperature=args.temperature, mu=args.mu, delta=args.delta)


def options(args: argparse.Namespace):
    """PlotOptions from parsed arguments (imports the plot package)."""
    from qgt_mpi.plot import PlotOptions

    return PlotOptions(x=args.x, select=selection(args), quantities=args.quantity,
                       path=args.path, maps=list(args.map), bandwidth=args.bandwidth,
                       only=args.only, layout=args.layout)
