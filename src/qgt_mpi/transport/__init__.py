"""Transport: k-sums of the kernels, reduced once and evaluated over the whole sweep (theory §4).

One k-pass deposits per-band weights (``weights.py``) as Taylor moments in adaptive energy
cells (``energy_cells.py``, ``binning.py``; point masses of flat bands in ``points.py``);
after the reduction the cell tree (``tree.py``) is evaluated Barnes–Hut style at every sweep
point (``evaluate.py``), in streamed units (``stream.py``), into the observables
(``observables.py``: the names of the quantities; ``tensors.py``: the full thermoelectric
tensors) or at fixed filling (``filling.py``). ``accumulate.TransportSums`` is the object the
k-pass fills; ``estimate.py`` predicts the cells for dry-run. Units are io/conventions.py's.
"""
