#!/usr/bin/env bash
# Representations of a trained self-supervised model as a new Kaldi data dir.
# Frame-level models: <dest>/feats.scp holds (T, H) matrices, one vector per input frame
# (same frame count and shift as the input). Utterance-level models: <dest>/embedding.scp
# holds one vector per utterance. utt2spk, text, alignments and trials are carried over;
# <dest>/eval_opts says evaluations read them as extracted (no CMVN, no deltas).
# --layer all stacks every layer of the default one's width: frame t's vector is
# [layer l1 at t; layer l2 at t; ...] in network order, L blocks of width H; <dest>/ssl_model
# names them (layers=0 1 2 3, layer_dim=H). Kaldi's select-feats picks one layer's columns;
# the probes and the hybrid DNN learn a weighted sum of them with --layer-sum true.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
nj=4
cmd=run_local.sh
checkpoint=final.pt  # which checkpoint of <exp-dir> to use
layer=               # hidden layer to extract (empty: the method's published choice; all: every layer, stacked)
device=auto          # auto (cuda if available, else cpu), cpu or cuda
num_threads=1        # torch threads per job: more than the cores in all makes every job crawl
batch_frames=20000   # padded frames per batch of utterances (1: one at a time)
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <exp-dir> <src-data-dir> <dest-data-dir>
e.g.: $0 --nj 4 exp/apc data/test_fbank data/test_apc
Options:
  --nj <n>                 # number of parallel jobs ($nj)
  --cmd <job-runner>       # how to run jobs, e.g. run_local.sh or run_slurm.sh ($cmd)
  --checkpoint <file>      # checkpoint under <exp-dir> ($checkpoint)
  --layer <k|all>          # hidden layer (default: the method's choice); all: stacked
  --device <auto|cpu|cuda> # auto: cuda if available ($device)
  --num-threads <n>        # torch threads per job ($num_threads)
  --batch-frames <n>       # padded frames per batch of utterances ($batch_frames)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
exp=$1
src=$2
dest=$3
model=$exp/$checkpoint
name=$(basename "$dest")
[ -f "$model" ] || { echo "$0: no such checkpoint: $model (train it with steps/train_ssl.sh)" >&2; exit 1; }
# One step at a time writes the destination (two extractions would interleave its files).
mkdir -p "$dest"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dest"

"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$src"
layer_opt=()
if [ -n "$layer" ]; then layer_opt=(--layer "$layer"); fi
# The destination starts as a copy of the source without its features.
"$SPEECHSSL_ROOT/utils/copy_data_dir.sh" "$src" "$dest"
rm -f "$dest"/{feats.scp,cmvn.scp,embedding.scp,eval_opts,ssl_model}
mkdir -p "$dest/log" "$dest/data"
featdir=$(cd "$dest/data" && pwd)
sdata=$("$SPEECHSSL_ROOT/utils/split_data.sh" --per-utt "$src" "$nj")

$cmd JOB=1:"$nj" "$dest/log/extract_$name.JOB.log" \
  python -m speechssl.bin.extract_ssl "${layer_opt[@]}" --device "$device" \
    --num-threads "$num_threads" --batch-frames "$batch_frames" --write-info "$featdir/repr_$name.JOB.info" \
    "$model" "$sdata/JOB" "$featdir/repr_$name.JOB.ark" "$featdir/repr_$name.JOB.scp"
read -r level dim < "$featdir/repr_$name.1.info"
layer_names=$(sed -n 's/^layers //p' "$featdir/repr_$name.1.info")
layer_dim=$(sed -n 's/^layer_dim //p' "$featdir/repr_$name.1.info")
log "$model: $level-level representations of dim $dim${layer_names:+ (layers $layer_names stacked)}"

out=$([ "$level" = frame ] && echo feats.scp || echo embedding.scp)
trap 'rm -f "$dest/$out.tmp"' EXIT  # a merge cut short (full disk) is not left behind
for n in $(seq "$nj"); do cat "$featdir/repr_$name.$n.scp"; done | sort > "$dest/$out.tmp"
mv "$dest/$out.tmp" "$dest/$out"
num_utts=$(wc -l < "$dest/utt2spk")
num_out=$(wc -l < "$dest/$out")
if [ "$num_out" -ne "$num_utts" ]; then
  echo "$0: representations for $num_out of $num_utts utterances; see $dest/log" >&2
  exit 1
fi
{
  printf '%s\n' "model=$(readlink -f "$model")" "layer=${layer:-default}" "level=$level" "dim=$dim"
  if [ -n "$layer_names" ]; then printf '%s\n' "layers=$layer_names" "layer_dim=$layer_dim"; fi
} > "$dest/ssl_model"
# Evaluations read representations as extracted (eval_opts; see steps/make_feats.sh).
printf '%s\n' --cmvn=false --delta-order=0 --awe-norm-vars=false > "$dest/eval_opts"
log "succeeded writing $level-level representations of $name to $dest/$out"
