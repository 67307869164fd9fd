#!/usr/bin/env bash
# Probing classifiers (the CPC paper's protocol): a linear (or one-hidden-layer) softmax
# classifier trained on <train-data-dir>'s representations, accuracy on <test-data-dir>'s.
#   phone:    one example per frame; labels from <data>/phone_ali (one label per frame)
#             or <data>/phones.ctm (the phone at each frame's centre)
#   speaker:  one example per utterance (feats.scp mean-pooled, or embedding.scp); test
#             utterances are held-out utterances of the training speakers (utt2spk)
#   language: as speaker, labels from utt2lang; test speakers are held out (disjoint)
# The phone probe's --cmvn and --delta-order default to <train-data-dir>/eval_opts (the
# protocol of its features, written by steps/make_feats.sh and steps/extract_ssl.sh), else
# false and 0; the utterance-level probes pool the raw features (default false and 0).
# The phone probe streams its training frames, --buffer-frames at a time, when they would
# take more than --max-memory-mb as one matrix (stream=auto; frames x dim x 4 bytes, from the
# feature headers): LibriSpeech's 28 M frames are 29 GB at 256-d.  Same results either way.
# Writes <exp-dir>/probe.pt (the classifier), per_class.txt and, last, results.json
# (with "streamed" and the peak RSS, "peak_rss_mb").
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
cmd=run_local.sh
task=              # phone | speaker | language
hidden_dim=0       # 0: linear; > 0: one hidden ReLU layer of this width
cmvn=              # subtract the speaker's mean from frame features (needs cmvn.scp)
delta_order=       # 2: MFCC 13 -> 39; both empty: phone: eval_opts', else false and 0
epochs=            # empty: the task's default (speechssl.eval.probe.TASK_DEFAULTS)
lr=                # Adam learning rate; empty: the task's default
batch_size=        # empty: the task's default
seed=0
stream=auto        # phone: true: read training frames a buffer at a time; auto: if too big
max_memory_mb=1024 # stream=auto streams a training matrix larger than this (MB): runs stay under ~4 GB
buffer_frames=500000  # frames of a streamed buffer (0.5 GB at 256-d)
layer_sum=false    # true: a learnable weighted sum of stacked layers (extract_ssl.sh --layer all)
layer_norm=false   # with --layer-sum: layer-normalise each layer before the sum
device=auto        # auto (cuda if available, else cpu), cpu or cuda
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 --task <phone|speaker|language> [options] <train-data-dir> <test-data-dir> <exp-dir>
e.g.: $0 --task phone data/train_mfcc data/test_mfcc exp/probe/phone_mfcc
Options:
  --task <phone|speaker|language> # what to classify (required)
  --cmd <job-runner>       # how to run the job, e.g. run_local.sh or run_slurm.sh ($cmd)
  --hidden-dim <n>         # 0 for a linear probe ($hidden_dim)
  --cmvn <true|false>      # speaker mean normalisation of frame features (default:
                           # phone: <train-data-dir>/eval_opts' --cmvn, else false)
  --delta-order <n>        # deltas to append (default: phone: eval_opts', else 0)
  --epochs <n>             # training epochs (default: per task)
  --lr <x>                 # Adam learning rate (default: per task)
  --batch-size <n>         # minibatch size (default: per task)
  --seed <n>               # initialisation and shuffling ($seed)
  --stream <auto|true|false> # phone: true reads the training frames a buffer at a time
                           # (constant memory, features read once per epoch); auto: when
                           # they would take more than --max-memory-mb in memory ($stream)
  --max-memory-mb <mb>     # the training matrix (frames x dim x 4 bytes) that auto still
                           # holds in memory; that run peaks at about 3 times it plus the
                           # test set's matrix ($max_memory_mb)
  --buffer-frames <n>      # frames per streamed buffer, shuffled within ($buffer_frames)
  --layer-sum <true|false> # weighted sum of the stacked layers of extract_ssl.sh
                           # --layer all, learnt with the probe ($layer_sum)
  --layer-norm <true|false> # with --layer-sum: layer norm of each layer first ($layer_norm)
  --device <auto|cpu|cuda> # where to train; auto: cuda if available ($device)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
train=$1
test=$2
dir=$3
# Before any check can fail: a failed run must not leave the last run's results looking current.
mkdir -p "$dir"
# One evaluation at a time in an output dir (another would remove this one's outputs).
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -f "${dir:?}"/{results.json,probe.pt,per_class.txt,config}

case "$task" in
  phone|speaker|language) ;;
  *) echo "$0: --task must be phone, speaker or language, got '$task'" >&2; exit 1 ;;
esac
case "$stream" in
  auto|true|false) ;;
  *) echo "$0: --stream must be auto, true or false, got '$stream'" >&2; exit 1 ;;
esac
if [ "$stream" = true ] && [ "$task" != phone ]; then
  echo "$0: --stream true applies to --task phone (the others hold one vector per utterance)" >&2
  exit 1
fi
if [ "$task" = phone ]; then
  check_same_eval_opts "$train" "$test"
  cmvn=${cmvn:-$(eval_opt "$train" cmvn false)}
  delta_order=${delta_order:-$(eval_opt "$train" delta-order 0)}
fi
cmvn=${cmvn:-false}  # the utterance-level probes pool the raw features
delta_order=${delta_order:-0}
log "reading the features with --cmvn $cmvn --delta-order $delta_order"
case "$cmvn" in true|false) ;; *) echo "$0: --cmvn must be true or false, got '$cmvn'" >&2; exit 1 ;; esac
for data in "$train" "$test"; do
  if [ ! -f "$data/feats.scp" ] && [ ! -f "$data/embedding.scp" ]; then
    echo "$0: $data has no feats.scp or embedding.scp (run steps/make_mfcc.sh or steps/extract_ssl.sh)" >&2
    exit 1
  fi
  if [ "$cmvn" = true ] && [ -f "$data/feats.scp" ] && [ ! -f "$data/cmvn.scp" ]; then
    echo "$0: --cmvn true needs $data/cmvn.scp (run steps/compute_cmvn_stats.sh $data)" >&2
    exit 1
  fi
  "$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$data"
done
opts=(--task "$task" --hidden-dim "$hidden_dim" --cmvn "$cmvn" --delta-order "$delta_order"
      --seed "$seed" --stream "$stream" --max-memory-mb "$max_memory_mb"
      --buffer-frames "$buffer_frames" --layer-sum "$layer_sum" --layer-norm "$layer_norm"
      --device "$device")
[ -z "$epochs" ] || opts+=(--epochs "$epochs")
[ -z "$lr" ] || opts+=(--lr "$lr")
[ -z "$batch_size" ] || opts+=(--batch-size "$batch_size")

mkdir -p "$dir/log"
printf '%s\n' "train=$(readlink -f "$train")" "test=$(readlink -f "$test")" "task=$task" \
  "hidden_dim=$hidden_dim" "cmvn=$cmvn" "delta_order=$delta_order" "epochs=${epochs:-default}" \
  "lr=${lr:-default}" "batch_size=${batch_size:-default}" "seed=$seed" "stream=$stream" \
  "max_memory_mb=$max_memory_mb" "buffer_frames=$buffer_frames" "layer_sum=$layer_sum" \
  "layer_norm=$layer_norm" > "$dir/config"
$cmd "$dir/log/train_probe.log" \
  python -m speechssl.bin.train_probe "${opts[@]}" "$train" "$test" "$dir"

[ -f "$dir/results.json" ] || { echo "$0: no $dir/results.json; see $dir/log/train_probe.log" >&2; exit 1; }
grep -h "accuracy " "$dir/log/train_probe.log" | sed 's/^.*) //' >&2 || true
log "succeeded training the $task probe on $train, tested on $test: $dir/results.json"
