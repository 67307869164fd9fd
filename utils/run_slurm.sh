#!/usr/bin/env bash
# run_slurm.sh: Kaldi run.pl-style parallel jobs as one Slurm array job.
# Usage: run_slurm.sh [options] [JOB=1:N] <log-file> <command> [<arg>...]   (--help for more)
# The logic is in ssl/speechssl/jobs.py; path.sh puts the package on PYTHONPATH.
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.run_jobs --backend slurm "$@"
