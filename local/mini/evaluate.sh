#!/usr/bin/env bash
# Every evaluation of one features' data dirs (egs/mini stage 5): exp/<f>/eval/<task>/.
# Frame-level features (data/test_<f>/feats.scp): same-different (DTW, downsampled),
# CAE-RNN AWEs, the phone probe and hybrid ASR (a DNN on the GMM's alignments, the LM
# weight chosen on data/train_heldout_<f>); every features: speaker verification (cosine,
# PLDA), speaker and language probes, language recognition (cosine and linear back-ends).
# Each step reads its data dir as eval_opts says.
# On the stacked layers of extract_ssl.sh --layer all, the probes and the hybrid DNN learn
# a weighted sum of the layers; the other tasks see their concatenation.
set -euo pipefail

# Begin configuration section.
cmd=run_local.sh   # job runner of the steps that take one
nj=1               # jobs inside each step (run.sh runs several features side by side)
awe_seeds="0 1 2"
lmwt_range=7:17:10 # LM weights tried on the held-out utterances
decode_opts=       # extra options of steps/decode.sh, e.g. "--beam 10"
max_fail=0.1       # utterances allowed to lack an alignment (align_si.sh's failures)
# End configuration section.

help_message="Usage: $0 [options] <n> '<features> ...'
Evaluates the n-th features of the list (1-based: a job runner's JOB).
e.g.: $0 --awe-seeds '0 1 2' 2 'fbank mfcc apc'  # evaluates mfcc
Options:
  --cmd <job-runner>       # for the steps that take one ($cmd)
  --nj <n>                 # jobs inside each step ($nj)
  --awe-seeds '<n> ...'    # CAE-RNN trainings ($awe_seeds)
  --lmwt-range <min:max[:step]> # ASR LM weights tried on held-out data ($lmwt_range)
  --decode-opts '<opts>'   # extra options of steps/decode.sh ($decode_opts)
  --max-fail <x>           # utterances allowed to lack an alignment ($max_fail)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
f=$(nth_word "$1" "$2")   # an assignment: set -e sees a failure
eval_dir=exp/$f/eval
layer_opts=()
if grep -qsx layer=all "data/test_$f/ssl_model"; then layer_opts=(--layer-sum true); fi

if [ -f "data/test_$f/feats.scp" ]; then
  for how in dtw downsample; do
    steps/score_samediff.sh --nj "$nj" --method $how \
      "data/test_$f" data/test/samediff_words "$eval_dir/samediff_$how"
  done
  steps/train_awe.sh --nj "$nj" --seeds "$awe_seeds" conf/awe.yaml \
    "data/train_eval_$f" "data/test_$f" data/test/samediff_words "$eval_dir/awe"
  steps/train_probe.sh --task phone "${layer_opts[@]}" \
    "data/train_eval_$f" "data/test_$f" "$eval_dir/probe_phone"
  steps/train_hybrid.sh --cmd "$cmd" --max-epochs 2 --hidden-dim 256 --batch-size 1024 \
    "${layer_opts[@]}" \
    --max-unaligned-fraction "$max_fail" \
    "data/train_eval_$f" exp/mono_ali data/lang "exp/$f/hybrid"
  # shellcheck disable=SC2086  # $decode_opts: several words
  steps/decode_hybrid.sh --cmd "$cmd" --nj "$nj" --lmwt-range "$lmwt_range" $decode_opts \
    exp/mono/graph "data/train_heldout_$f" "exp/$f/hybrid" "exp/$f/hybrid/decode_heldout"
  lmwt=$(best_lmwt "exp/$f/hybrid/decode_heldout")   # an assignment: set -e sees a failure
  # shellcheck disable=SC2086
  steps/decode_hybrid.sh --cmd "$cmd" --nj "$nj" --lmwt "$lmwt" $decode_opts \
    exp/mono/graph "data/test_$f" "exp/$f/hybrid" "$eval_dir/asr"
fi
for backend in cosine plda; do
  steps/score_sv.sh --backend $backend --train-dir "data/train_eval_$f" \
    "data/test_$f" data/test/trials "$eval_dir/sv_$backend"
done
steps/train_probe.sh --task speaker "${layer_opts[@]}" \
  "data/train_eval_$f" "data/train_heldout_$f" "$eval_dir/probe_speaker"
steps/train_probe.sh --task language "${layer_opts[@]}" \
  "data/train_eval_$f" "data/test_$f" "$eval_dir/probe_language"
# Language recognition of the held-out test speakers: cosine to the language centres and
# a linear back-end, Cavg and identification accuracy.
for backend in cosine linear; do
  steps/score_lid.sh --backend $backend "data/train_eval_$f" "data/test_$f" \
    "$eval_dir/lid_$backend"
done
log "done evaluating $f"
