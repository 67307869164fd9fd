#!/usr/bin/env bash
# Train a self-supervised model on a Kaldi data dir (python -m speechssl.bin.train_ssl).
# Writes <exp-dir>/config.yaml (the resolved config), <exp-dir>/checkpoints/step-<N>.pt,
# <exp-dir>/tensorboard, <exp-dir>/final.pt and the log <exp-dir>/log/train.log.
# Interrupted? Re-run the same command: it resumes from the newest checkpoint, exactly.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
cmd=run_local.sh
nproc=1                # processes (>1: data-parallel with torchrun, one per GPU on CUDA)
device=auto            # auto (cuda if available, else cpu), cpu or cuda
num_threads=           # torch threads on CPU (empty: torch's default, one per core)
overrides=             # config values to change, e.g. "train.max_steps=100 train.seed=1"
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <config.yaml> <data-dir> <exp-dir>
e.g.: $0 --cmd run_local.sh --nproc 2 conf/apc.yaml data/train_fbank exp/apc
Options:
  --cmd <job-runner>        # how to run the job, e.g. run_local.sh or 'run_slurm.sh --gpu 2' ($cmd)
  --nproc <n>               # training processes; >1 launches torchrun ($nproc)
  --device <auto|cpu|cuda>  # where to train; auto: cuda if available ($device)
  --num-threads <n>         # torch threads on CPU; 1 when trainings run side by side
  --overrides <'k=v ...'>   # config values to change (YAML values without blanks),
                            # e.g. 'train.epochs=10 optim.betas=[0.9,0.98]'"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
config=$1
data=$2
dir=$3

[ -f "$config" ] || { echo "$0: no such config file: $config" >&2; exit 1; }
case $nproc in
  '' | *[!0-9]* | 0) echo "$0: --nproc must be a positive integer, got '$nproc'" >&2; exit 1 ;;
esac
case $num_threads in
  *[!0-9]* | 0) echo "$0: --num-threads must be a positive integer, got '$num_threads'" >&2; exit 1 ;;
esac
case $device in
  auto | cpu | cuda) ;;
  *) echo "$0: --device must be auto, cpu or cuda, got '$device'" >&2; exit 1 ;;
esac
# One training at a time in an exp dir: two would write the same checkpoints and logs.
mkdir -p "$dir"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$data"

opts=(--device "$device")
[ -z "$num_threads" ] || opts+=(--num-threads "$num_threads")
read -r -a kvs <<< "$overrides"  # split on blanks, without glob expansion
for kv in ${kvs[@]+"${kvs[@]}"}; do opts+=(--override "$kv"); done
if [ "$nproc" -gt 1 ]; then
  launcher=(torchrun --standalone --nproc-per-node "$nproc")
else
  launcher=(python)
fi

# Config errors on the console now, rather than in the job's log after it failed.
python -m speechssl.bin.train_ssl --check-config ${opts[@]+"${opts[@]}"} "$config"

# Keep the logs of earlier attempts (a resumed run starts a new train.log).
mkdir -p "$dir/log"
if [ -f "$dir/log/train.log" ]; then
  n=1
  while [ -f "$dir/log/train.$n.log" ]; do n=$((n + 1)); done
  mv "$dir/log/train.log" "$dir/log/train.$n.log"
fi

log "training $config on $data in $dir with $nproc process(es); log: $dir/log/train.log"
if ! $cmd "$dir/log/train.log" \
    "${launcher[@]}" -m speechssl.bin.train_ssl ${opts[@]+"${opts[@]}"} "$config" "$data" "$dir"; then
  echo "$0: training failed; see $dir/log/train.log. After fixing the cause, re-run the" \
       "same command to resume from the newest checkpoint in $dir/checkpoints." >&2
  exit 1
fi
[ -f "$dir/final.pt" ] || { echo "$0: no $dir/final.pt after training; see $dir/log/train.log" >&2; exit 1; }
log "succeeded training $dir: $dir/final.pt"
