"""Input and output: the deck in, the result file out (docs/input.md, README "Output file").

Input: ``deck.py`` parses a TOML deck into a frozen ``RunConfig`` (``deck_models.py``,
``deck_solver.py``, ``deck_bands.py`` check the ``[model]``, ``[solver]`` and ``[bands]``
sections; ``checks.py`` holds ``InputError(key, value, allowed)`` and the value checks).
Output: ``writer.py`` writes one HDF5 file per run under a temporary name with parallel h5py
(collective), ``sweep_file.py`` streams the sweep into it, ``conventions.py`` is the one table of
units, long names and dimensions of every dataset, ``checkpoint.py`` and ``kslabs.py`` are the
checkpoint format, ``output_guard.py`` refuses outputs that would destroy data, and
``reader.py``/``selection.py`` serve ``qgt-mpi info``.
"""
