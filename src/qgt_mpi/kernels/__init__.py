"""Closed-form structural kernels of broadened Green's and Fermi functions (theory §3).

``polygamma.py`` evaluates the complex polygamma functions, ``family.py`` the whole digamma
family of a kernel table in one upward recurrence (theory §3.4), ``closed.py`` the kernels
K_a, Λ, W^(a)_nm and Y_nm, ``hall_moments.py`` the Hall energy moments of the full tensors.
All functions are local (no MPI) and vectorised over arguments.
"""
