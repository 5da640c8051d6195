"""``qgt-mpi model save DECK -o FILE`` and ``qgt-mpi model info FILE`` (models/modelfile/).

``save`` builds the deck's ``[model]`` (with its flattening or truncation) exactly as a run
would and writes qgt_mpi's HDF5 model file; a deck with ``kind = "model_file"`` then runs the
same H(k) bit for bit. For a carbon model (``tbg_atomistic``, ``atomistic``; relaxed or not)
an output named like a structure file (``.xyz``, ``.extxyz``, ``POSCAR``, ``CONTCAR``,
``.vasp``, ``.lmp``, ``.data``, ``.cif``; models/structure.py) gets the atoms instead, in a
format ASE reads: ``kind = "atomistic"`` with ``structure = FILE`` then builds the same model
(to 1e-10 meV from VASP and LAMMPS files, whose 16–17 digits keep the positions exact).
``info`` describes a model file.
"""

from __future__ import annotations

import os

import numpy as np
from mpi4py import MPI

from qgt_mpi.io.deck import InputError, RunConfig
from qgt_mpi.io.output_guard import check_output, input_paths
from qgt_mpi.models.carbon import CarbonModel
from qgt_mpi.models.modelfile import model_summary, save_model
from qgt_mpi.models.structure import write_format, write_structure
from qgt_mpi.parallel.errors import collective
from qgt_mpi.run.setup import model_from_config


def save(comm: MPI.Comm, config: RunConfig, output: str, overwrite: bool = False) -> int:
    """Build the model of ``config`` and write it to ``output`` (rank 0). Collective.

    The output is checked like a run's before anything is built (io/output_guard.py: never
    the deck, a directory or a special file; an existing file only with ``overwrite``), and
    written under a temporary name in the same directory, then renamed: a failing save
    leaves an existing file as it was.
    """
    with collective(comm):
        if comm.rank == 0:
            check_output(output, config.source, overwrite, inputs=input_paths(config))
            directory = os.path.dirname(os.path.abspath(output))
            if not os.path.isdir(directory):
                raise InputError("-o", output, "directory does not exist")
    with collective(comm):
        model = model_from_config(config, comm)
    with collective(comm):
        if comm.rank == 0:
            what = _write(model, output, overwrite)
            d = model.describe()
            print(f"model saved: {output} ({d.get('kind')}, {model.norb} orbitals, "
                  f"{model.nbands} bands{what})")
    return 0


def _write(model, output: str, overwrite: bool) -> str:
    """Write ``model`` to ``output`` as its name asks: atoms (structure) or model file; under
    a temporary name in the same directory, then renamed (a failing save keeps the old file)."""
    if write_format(output) is None:
        save_model(model, output, overwrite=overwrite)  # temporary name, then renamed
        return ""
    if not isinstance(model, CarbonModel):
        raise InputError("-o", output, "a structure file holds atoms: only the carbon kinds "
                         "(tbg_atomistic, atomistic) can be saved as one; use a .h5 name")
    pos3 = np.column_stack([model.positions, model.z])
    temporary = os.path.join(os.path.dirname(os.path.abspath(output)),
                             f".{os.path.basename(output)}.tmp{os.getpid()}")
    try:
        fmt = write_structure(temporary, model.lattice, pos3, write_format(output))
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return f"; atoms as {fmt}, read with kind = \"atomistic\""


def info(comm: MPI.Comm, path: str) -> int:
    """Print a summary of the model file ``path`` (rank 0). Collective."""
    with collective(comm):
        if comm.rank == 0:
            try:
                text = model_summary(path)
            except (ValueError, OSError, KeyError) as exc:
                raise InputError("model file", path, str(exc)) from None
            print(text)
    return 0
