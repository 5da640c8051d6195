#!/bin/bash
# Run one qgt_mpi deck on this workstation with mpirun (OpenMPI or MPICH).
#
#   jobs/local_run.sh DECK [OUTPUT] [extra qgt-mpi run options...]
#   NP=8 jobs/local_run.sh inputs/haldane_flat.toml results/flat.h5 --checkpoint-interval 60
#
# NP defaults to the number of cores (one rank per core). PYTHON defaults to the
# repository's .venv, else python3. Exit status is the run's: 0 done, 1 failure, 2 input
# error, 3 stopped by Ctrl-C/SIGTERM (sent to this script; forwarded as USR1) after writing
# OUTPUT.checkpoint.h5 (run the same command again to continue from it).

set -uo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    sed -n '2,10s/^# \{0,1\}//p' "$0"
    exit 2
fi
DECK=$1
shift
OUTPUT=results/$(basename "$DECK" .toml).h5
if [[ $# -gt 0 && $1 != -* ]]; then
    OUTPUT=$1
    shift
fi
NP=${NP:-$(nproc)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3

# One BLAS/OpenMP thread per rank.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
# OpenMPI refuses to run as root without these (containers, CI); never set for users.
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

mkdir -p "$(dirname "$OUTPUT")"
mpirun --quiet -n "$NP" "$PYTHON" -m mpi4py -m qgt_mpi run "$DECK" -o "$OUTPUT" "$@" &  # qgt-launch
run=$!
# Ctrl-C or SIGTERM to this script become USR1 to mpirun, which OpenMPI forwards to every
# rank: they checkpoint together and mpirun exits 3. (TERM or INT sent to mpirun itself make
# OpenMPI kill the ranks about 1 s later and exit 1: the k-pass since the last periodic
# checkpoint is lost. jobs/README.md "Stopping a run by hand".)
trap 'kill -USR1 "$run" 2>/dev/null' INT TERM
while kill -0 "$run" 2>/dev/null; do
    wait "$run"   # a trapped signal interrupts wait: wait again until mpirun ends
done
wait "$run"   # bash keeps the finished job's status
status=$?

case $status in
    0) echo "results: $(realpath "$OUTPUT")  (summary: qgt-mpi info $OUTPUT)" ;;
    3) echo "stopped; checkpoint: $(realpath "$OUTPUT.checkpoint.h5" 2>/dev/null || echo "$OUTPUT.checkpoint.h5")"
       echo "continue with the same command: $0 $DECK $OUTPUT $*" ;;
    2) echo "input error: fix the deck (qgt-mpi validate $DECK)" >&2 ;;
    *) echo "run failed with status $status" >&2 ;;
esac
exit "$status"
