#!/usr/bin/env bash
# egs/mini: the embedded corpus, end to end on a laptop CPU.
# Stage 0 synthesises a multi-speaker, multi-language corpus with exact word and phone
# alignments (espeak-ng); stage 1 computes Kaldi fbank and MFCC features with CMVN;
# stage 2 trains each self-supervised method; stage 3 writes their representations.
#   ./run.sh                      all stages, default corpus (about an hour of audio)
#   ./run.sh --preset tiny        a corpus of a few seconds, as the tests use
#   ./run.sh --stage 1            recompute features on an existing corpus
set -euo pipefail

stage=0
stop_stage=100
nj=2
preset=default   # default (~40 speakers x 90 utterances) or tiny (8 x 5)
augment=false    # reverberation, noise, band-pass and gain on top of the clean speech
seed=0
methods="apc cpc capc cae vicreg"   # conf/<method>.yaml for each

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

sets="train dev test"

# The input of each method: the frame-level ones read MFCC + deltas with CMVN, as in van
# Staden & Kamper (2021); VICReg reads the audio and makes its own augmented fbank views.
input_of() {  # input_of <method> <set>
  case $1 in
    vicreg) echo "data/$2" ;;
    *) echo "data/$2_mfcc" ;;
  esac
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  # Generate the corpus: wavs under corpus/, Kaldi data dirs data/{train,dev,test} with
  # words.ctm, phones.ctm, trials (test) and same-different word lists (dev, test).
  local/mini/prepare_corpus.sh --nj "$nj" --preset "$preset" --augment "$augment" \
    --seed "$seed" corpus data
  for x in $sets; do
    utils/validate_data_dir.sh "data/$x"
  done
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  # Baseline features, each in its own copy of the data dir (data/<set>_fbank,
  # data/<set>_mfcc): 80 log-mel bins, and 13 MFCCs (deltas are added when loading).
  for x in $sets; do
    for feat in fbank mfcc; do
      utils/copy_data_dir.sh "data/$x" "data/${x}_$feat"
      steps/make_$feat.sh --cmd "$train_cmd" --nj "$nj" \
        "data/${x}_$feat" "exp/make_$feat/$x" $feat
      steps/compute_cmvn_stats.sh "data/${x}_$feat" "exp/make_$feat/$x" $feat
      utils/validate_data_dir.sh "data/${x}_$feat"
    done
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  # Self-supervised training, one exp dir per method; re-running resumes from the last
  # checkpoint. TensorBoard: tensorboard --logdir exp
  for m in $methods; do
    steps/train_ssl.sh --cmd "$train_cmd" "conf/$m.yaml" "$(input_of "$m" train)" "exp/$m"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  # Representations of dev and test as Kaldi data dirs data/<set>_<method>.
  for m in $methods; do
    for x in dev test; do
      steps/extract_ssl.sh --cmd "$train_cmd" --nj "$nj" "exp/$m" "$(input_of "$m" $x)" \
        "data/${x}_$m"
    done
  done
fi

log "done: stages $stage to $stop_stage"
