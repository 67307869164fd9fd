#!/usr/bin/env bash
# Train the DNN of a hybrid DNN-HMM system (Kaldi's steps/nnet/train.sh): an MLP on spliced
# frames of any frame-level data dir (fbank, MFCC, or data/<set>_<method> of extract_ssl.sh),
# the features frozen, trained with cross-entropy on the pdf ids of <ali-dir>'s alignments
# (steps/align_si.sh; frame counts must match the features' within 2 frames), Adam with
# nnet1's newbob learning-rate halving on a held-out 10% of the utterances.  --cmvn and
# --delta-order default to <feats-data-dir>/eval_opts (the features' protocol).
# Writes <exp-dir>/ali_train_pdf.counts (priors), copies of <ali-dir>'s final.mdl, tree and
# phones.txt, training.json (CV frame accuracy, frames/s, peak RSS) and, last, final.pt.
# Published setting for comparison (PASE+): --left-context 8 --right-context 8
# --num-layers 5 --hidden-dim 1024; the defaults here fit a CPU.
# --layer-sum true on the stacked layers of 'steps/extract_ssl.sh --layer all' learns
# S3PRL's weighted sum of them (training.json and the decodings' results.json report the
# weights).
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
cmd=run_local.sh
cmvn=              # empty: <feats-data-dir>/eval_opts' --cmvn, else false
delta_order=       # empty: eval_opts' --delta-order, else 0
left_context=5     # frames spliced before (splice-feats --left-context)
right_context=5
num_layers=3
hidden_dim=512
dropout=0.1
lr=0.001           # Adam's initial learning rate
batch_size=256
max_epochs=10
min_epochs=2
start_halving_impr=0.01  # newbob: halve the rate below this relative CV-loss improvement
end_halving_impr=0.001   # ... and stop below this one once halving
halving_factor=0.5
buffer_utts=128    # utterances shuffled together (memory: their frames, unspliced)
cv_fraction=0.1
seed=0
num_threads=1
max_unaligned_fraction=0.1  # utterances without an alignment (align_si's failures) allowed
layer_sum=false    # true: a learnable weighted sum of stacked layers (extract_ssl.sh --layer all)
layer_norm=false   # with --layer-sum: layer-normalise each layer before the sum
device=auto        # auto (cuda if available, else cpu), cpu or cuda
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <feats-data-dir> <ali-dir> <lang-dir> <exp-dir>
e.g.: $0 data/train_fbank exp/mono_ali data/lang exp/fbank/hybrid
Options:
  --cmd <job-runner>        # how to run the job ($cmd)
  --cmvn <true|false>       # speaker CMVN (default: eval_opts)
  --delta-order <n>         # deltas (default: eval_opts)
  --left-context <n>        # ($left_context)
  --right-context <n>       # ($right_context)
  --num-layers <n>          # hidden layers ($num_layers)
  --hidden-dim <n>          # ($hidden_dim)
  --dropout <x>             # ($dropout)
  --lr <x>                  # ($lr)
  --batch-size <n>          # frames per minibatch ($batch_size)
  --max-epochs <n>          # ($max_epochs)
  --buffer-utts <n>         # ($buffer_utts)
  --seed <n>                # ($seed)
  --num-threads <n>         # ($num_threads)
  --max-unaligned-fraction <x> # most utterances allowed to lack an alignment ($max_unaligned_fraction)
  --layer-sum <true|false>  # weighted sum of stacked layers ($layer_sum)
  --layer-norm <true|false> # layer norm of each before the sum ($layer_norm)
  --device <auto|cpu|cuda>  # ($device)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
alidir=$2
lang=$3
dir=$4
mkdir -p "$dir/log"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -f "${dir:?}"/{final.pt,training.json,ali_train_pdf.counts,final.mdl,tree,phones.txt,config}

for f in "$data/feats.scp" "$alidir/final.mdl" "$alidir/num_jobs" "$alidir/phones.txt" \
    "$lang/phones.txt"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
cmvn=${cmvn:-$(eval_opt "$data" cmvn false)}
delta_order=${delta_order:-$(eval_opt "$data" delta-order 0)}
check_cmvn "$data" "$cmvn"
"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$data"

opts=(--cmvn "$cmvn" --delta-order "$delta_order" --left-context "$left_context"
      --right-context "$right_context" --num-layers "$num_layers" --hidden-dim "$hidden_dim"
      --dropout "$dropout" --lr "$lr" --batch-size "$batch_size" --max-epochs "$max_epochs"
      --min-epochs "$min_epochs" --start-halving-impr "$start_halving_impr"
      --end-halving-impr "$end_halving_impr" --halving-factor "$halving_factor"
      --buffer-utts "$buffer_utts" --cv-fraction "$cv_fraction" --seed "$seed"
      --num-threads "$num_threads" --max-unaligned-fraction "$max_unaligned_fraction"
      --layer-sum "$layer_sum" --layer-norm "$layer_norm" --device "$device")
printf '%s\n' "data=$(readlink -f "$data")" "alidir=$(readlink -f "$alidir")" \
  "lang=$(readlink -f "$lang")" "${opts[@]}" > "$dir/config"
log "training the hybrid DNN on $data with --cmvn $cmvn --delta-order $delta_order"
$cmd "$dir/log/train.log" \
  python -m speechssl.bin.train_hybrid "${opts[@]}" "$data" "$alidir" "$lang" "$dir"

[ -f "$dir/final.pt" ] || { echo "$0: no $dir/final.pt; see $dir/log/train.log" >&2; exit 1; }
grep -h "CV frame accuracy" "$dir/log/train.log" | sed 's/^.*) //' >&2 || true
log "succeeded training the hybrid DNN: $dir/final.pt"
