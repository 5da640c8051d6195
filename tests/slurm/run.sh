#!/bin/bash
# CTest entry `slurm-templates` (label slurm): every template of jobs/ under a private
# one-node SLURM started in DIR (default build/slurm) and stopped again, also on failure.
#
#   tests/slurm/run.sh [DIR]      (as root; PYTHON = the interpreter with qgt_mpi)
#
# Exit 77 (CTest: skipped) when the Debian SLURM packages are missing or not root.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(realpath -m "${1:-$here/../../build/slurm}")
PYTHON=${PYTHON:-python3}

for cmd in slurmctld slurmd sbatch munged mungekey; do
    if ! command -v "$cmd" >/dev/null; then
        echo "SKIP: $cmd not found; install the Debian packages slurmctld slurmd" \
             "slurm-client munge (make setup-slurm) to test the job templates under SLURM"
        exit 77
    fi
done
if [[ $(id -u) != 0 ]]; then
    echo "SKIP: the private SLURM runs as root (slurmd starts job steps); run as root"
    exit 77
fi

source "$here/cluster.sh"
slurm_stop "$dir"                  # daemons of an earlier run that was killed
rm -rf "$dir/work" "$dir/state" "$dir/log"
child=
trap 'slurm_stop "$dir"' EXIT
# An interrupt (CTest's timeout, ^C) stops the driver, then the EXIT trap stops the cluster.
trap '[[ -n $child ]] && kill "$child" 2>/dev/null; exit 130' INT TERM
slurm_start "$dir" || { tail -n 20 "$dir"/log/*.log; exit 1; }
echo "slurm: private cluster up ($SLURM_CONF)"
timeout 480 "$PYTHON" "$here/jobs.py" "$dir/work" &   # before CTest's own timeout
child=$!
wait "$child"   # in the background, so that a signal reaches the trap at once
status=$?
child=
if ((status)); then
    for f in "$dir"/work/*.log "$dir"/log/slurmctld.log; do
        [[ -f $f ]] && { echo "== $f"; tail -n 30 "$f"; }
    done
fi
exit "$status"
