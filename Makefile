# qgt_mpi: set-up, default run, tests and lint.
#
#   make run     set up (if needed), then run the default job on 2 MPI ranks
#   make test    set up (if needed), configure CMake into build/ and run CTest
#   make check   the fast loop: the in-process tests not marked slow (about a minute)
#   make setup   the set-up part alone: Debian packages, .venv, editable install
#                (WITH_SLURM=0: without the SLURM packages of the slurm test; make setup-slurm)
#   make figures run the figure decks (inputs/fig*, hall_vs_mu, geometry_maps) and redraw
#                docs/figures/<deck>/*.png|pdf from scratch (qgt-mpi plot)
#   make lint    ruff check src tests bench, mypy src (installs both into .venv from PyPI)
#   make bench   benchmark suite (bench/run.py; QUICK=1 about 3 min, SOURCE=head) and the
#                tables of docs/performance.md regenerated from its JSON (bench/report.py)
#   make clean   remove build/ and caches (keeps .venv and results/)
#   make distclean   clean, and remove .venv
#
# Every set-up step is skipped when already done, so a second `make run` only runs the job.
# On a machine without Debian packages (a cluster), install the dependencies as described in
# docs/install.md and pass NO_APT=1 PYTHON=/path/to/python3 (and CMAKE_ARGS for srun).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# What the default job and the venv use (override on the command line).
PYTHON  ?= /usr/bin/python3
VENV    ?= .venv
MPIEXEC ?= mpirun
NP      ?= 2
INPUT   ?= inputs/haldane_flat.toml
BUILD   ?= build
NO_APT  ?= 0
# Extra CMake arguments for make test, e.g. -DMPIEXEC_EXECUTABLE=srun -DMPIEXEC_NUMPROC_FLAG=-n
CMAKE_ARGS ?=

# Debian packages the project needs; gcc and make because CMake's FindMPI enables C.
DEB_PACKAGES := openmpi-bin libopenmpi-dev python3-mpi4py python3-petsc4py-complex \
    python3-slepc4py-complex python3-h5py-mpi python3-scipy python3-matplotlib python3-venv \
    python3-pytest python3-mpmath python3-setuptools python3-wheel cmake gcc make

# SLURM, munge: only for the test that submits jobs/ to a private one-node SLURM (CTest label
# slurm, tests/slurm/run.sh; skipped without them). WITH_SLURM=0 leaves them out of make setup;
# make setup-slurm installs them alone. No daemon is configured or started system-wide.
WITH_SLURM ?= 1
SLURM_DEB_PACKAGES := slurmctld slurmd slurm-client munge
APT_PACKAGES := $(DEB_PACKAGES) $(if $(filter 1,$(WITH_SLURM)),$(SLURM_DEB_PACKAGES))

# OpenMPI refuses root without these; 3 ranks on 2 cores need oversubscription.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1

VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.qgt-installed

.PHONY: help run setup setup-slurm test figures lint clean distclean system-packages check-venv

help:
	@echo "make run    set up if needed, then: $(MPIEXEC) -n $(NP) $(VENV)/bin/qgt-mpi run $(INPUT)"
	@echo "make test   set up if needed, then CMake configure into $(BUILD)/ and ctest"
	@echo "make setup  Debian packages, $(VENV) and the editable install only"
	@echo "make figures  run the figure decks, draw docs/figures/<deck>/ (PNG + PDF)"
	@echo "make check  the fast loop: in-process tests not marked slow (about a minute)"
	@echo "make bench  benchmark suite (QUICK=1: ~3 min), JSON + docs/performance.md tables"
	@echo "make lint | clean | distclean"

run: setup
	$(MPIEXEC) -n $(NP) $(VENV)/bin/qgt-mpi run $(INPUT) --overwrite
	@echo "results in results/"

setup: $(STAMP) check-venv $(VENV)/.xarray-installed $(VENV)/.ase-installed

# xarray + h5netcdf (the test that reads every output group the way a netCDF user does).
# numpy is pinned to the version the venv already sees, so pip never replaces the numpy
# that the system h5py/mpi4py/scipy were built against.
$(VENV)/.xarray-installed: | $(VPY)
	$(VENV)/bin/pip install --disable-pip-version-check xarray h5netcdf \
	  "numpy==$$($(VPY) -c 'import numpy; print(numpy.__version__)')"
	touch $@

# ASE reads the structure files of kind = "atomistic" (models/structure.py). numpy, scipy and
# matplotlib are pinned to the system's so pip never replaces what h5py/mpi4py were built on.
$(VENV)/.ase-installed: | $(VPY)
	$(VENV)/bin/pip install --disable-pip-version-check "ase>=3.22" \
	  "numpy==$$($(VPY) -c 'import numpy; print(numpy.__version__)')" \
	  "scipy==$$($(VPY) -c 'import scipy; print(scipy.__version__)')" \
	  "matplotlib==$$($(VPY) -c 'import matplotlib; print(matplotlib.__version__)')"
	touch $@

test: setup
	cmake -S . -B $(BUILD) -DPython3_EXECUTABLE=$(CURDIR)/$(VPY) $(CMAKE_ARGS)
	ctest --test-dir $(BUILD) --output-on-failure -LE "many_ranks|slurm_long"

# The fast loop while editing: no mpirun or subprocess launch (tests marked `subprocess`) and
# no in-process test over ~3 s (`slow`); make test runs those too (pyproject.toml, markers).
.PHONY: check
check: setup
	$(VPY) -m pytest -q -p no:cacheprovider -m "not subprocess and not slow" tests

# The paper's figures: each deck runs on $(NP) ranks into $(BUILD)/figures/, then qgt-mpi plot
# draws docs/figures/<deck>/ (PNGs are committed; PDFs are ignored by git).
FIGURE_DECKS := fig2_conductivity fig3_thermoelectric hall_vs_mu geometry_maps superfluid_flat

figures: setup
	rm -rf docs/figures $(BUILD)/figures
	mkdir -p docs/figures $(BUILD)/figures
	for deck in $(FIGURE_DECKS); do \
	  $(MPIEXEC) -n $(NP) $(VENV)/bin/qgt-mpi run inputs/$$deck.toml \
	    -o $(BUILD)/figures/$$deck.h5; \
	  $(VENV)/bin/qgt-mpi plot $(BUILD)/figures/$$deck.h5 -d docs/figures/$$deck; \
	done
	$(VPY) studies/thermopower_tensor.py docs/figures/thermopower_tensor

lint: $(VENV)/bin/ruff $(VENV)/bin/mypy
	$(VENV)/bin/ruff check src tests bench studies
	$(VENV)/bin/mypy src

# Benchmark suite: bench/run.py writes bench/results/<date>-<commit>[-dirty]-<suite>.json and
# latest.json; bench/report.py rewrites the marked tables of docs/performance.md from it (also
# after a failed benchmark, whose tables then say so; the exit status is the suite's).
QUICK  ?= 0
SOURCE ?= worktree

.PHONY: bench
bench: setup
	status=0; $(VPY) bench/run.py $(if $(filter 1,$(QUICK)),--quick) --source $(SOURCE) \
	  || status=$$?; \
	$(VPY) bench/report.py bench/results/latest.json; exit $$status

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache .mypy_cache src/*.egg-info
	find src tests bench studies -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# The SLURM test's packages alone (make test skips that test with a message without them).
setup-slurm:
	$(MAKE) system-packages WITH_SLURM=1

# Install the Debian packages that dpkg-query reports missing (apt-get update only then).
system-packages:
	@if [ "$(NO_APT)" = 1 ]; then exit 0; fi; \
	if ! command -v dpkg-query >/dev/null; then \
	  echo "error: not a Debian system; install MPI, mpi4py, parallel h5py and complex" \
	       "petsc4py/slepc4py as in docs/install.md, then run make with NO_APT=1" >&2; \
	  exit 1; \
	fi; \
	missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' "$$p" 2>/dev/null | grep -q '^ii' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "error: missing Debian packages:$$missing" >&2; \
	  echo "       run 'make setup' as root, or: sudo apt-get install$$missing" >&2; \
	  exit 1; \
	fi; \
	echo "Installing Debian packages:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update; \
	apt-get install -y $$missing

# The venv uses the system Python so that the Debian mpi4py/h5py/petsc4py are visible.
$(VPY): | system-packages
	$(PYTHON) -m venv --system-site-packages $(VENV)

# Test-only packages from PyPI (pure Python; they leave the system numpy/h5py alone).
# TBmodels is installed without its declared dependencies, which would replace the MPI h5py
# by a serial wheel and pull in pymatgen; the three small packages it imports come along.
TEST_PIP := hypothesis pythtb
TEST_PIP_NODEPS := tbmodels fsc.export fsc.hdf5-io click

# Editable install, redone when pyproject.toml changes or the console script is missing.
# --no-deps: numpy, scipy, mpi4py and the MPI build of h5py come from the system packages.
$(STAMP): pyproject.toml $(VPY) $(if $(wildcard $(VENV)/bin/qgt-mpi),,FORCE) | system-packages
	$(VENV)/bin/pip install --disable-pip-version-check --no-build-isolation --no-deps -e .
	$(VENV)/bin/pip install --disable-pip-version-check $(TEST_PIP)
	$(VENV)/bin/pip install --disable-pip-version-check --no-deps $(TEST_PIP_NODEPS)
	touch $@

# A venv made without --system-site-packages (or from another Python) cannot see mpi4py.
check-venv: | $(VPY)
	@$(VPY) -c 'import mpi4py, h5py' 2>/dev/null || { \
	  echo "error: $(VPY) cannot import mpi4py/h5py; remove $(VENV) (it must be made by" \
	       "'$(PYTHON) -m venv --system-site-packages') and rerun" >&2; exit 1; }

$(VENV)/bin/ruff: | $(VPY)
	$(VENV)/bin/pip install --disable-pip-version-check ruff

# mypy reads pyproject.toml [tool.mypy]; pinned, so a new release cannot change what passes.
# It type-checks against the numpy and mpi4py the venv sees (the Debian packages).
MYPY_VERSION ?= 2.4.1
$(VENV)/bin/mypy: | $(VPY)
	$(VENV)/bin/pip install --disable-pip-version-check "mypy==$(MYPY_VERSION)"

.PHONY: FORCE
FORCE:
