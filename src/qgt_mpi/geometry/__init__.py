"""Quantum geometry: per-band curvature and metric, band-pair tensors, link Chern numbers."""

from qgt_mpi.geometry.bands import (
    band_geometry,
    degenerate_pairs,
    pair_products,
    qgt_pair_sums,
)
from qgt_mpi.geometry.chern import chern_numbers, plaquette_flux

__all__ = [
    "band_geometry",
    "chern_numbers",
    "degenerate_pairs",
    "pair_products",
    "plaquette_flux",
    "qgt_pair_sums",
]
