# shellcheck shell=bash
# How the recipe runs its jobs.  run_local.sh runs them on this machine (like Kaldi's
# run.pl); on a Slurm cluster use run_slurm.sh with the same options, for example:
#   export train_cmd="run_slurm.sh --mem 4G"
#   export cuda_cmd="run_slurm.sh --gpu 1 --mem 16G"
# Extra sbatch options (partition, account) go in SLURM_EXTRA_ARGS.
export train_cmd="run_local.sh"
export decode_cmd="run_local.sh"
export cuda_cmd="run_local.sh --gpu 1"
