#!/usr/bin/env bash
# egs/buckeye: frame-level self-supervised features and acoustic word embeddings on Buckeye
# English, after van Staden & Kamper (2021) and Kamper's AWE recipe. Utterances are the
# speech regions of forced word alignments; train on devpart1, validate on devpart2, test on
# zs; same-different average precision (AP) with DTW, and with CAE-RNN embeddings.
#
# Published results (same-different AP; van Staden & Kamper 2021, REFERENCES.md sec 4):
#   DTW on MFCC 39 (per-speaker CMVN)   devpart2 (val) 0.368   zs (test) 0.359
#   DTW on fbank                        0.20
#   downsampled MFCC (10 frames)        devpart2 0.245         zs 0.217
#   CAE-RNN AWE (UTD pairs)             0.29-0.32
#   DTW on CPC, APC and CAE features beats MFCC; CPC the most.
set -euo pipefail

buckeye=/data/buckeye                   # folder of sNN/sNNMMx.wav (the unpacked corpus)
alignments=/data/buckeye_english.wrd    # forced word alignments: <file> <start> <end> <word>
utd_pairs=           # optional: discovered pairs (e.g. Kamper's buckeye.fdlps.0.93.pairs) for
                     # CAPC and the CAE instead of ground-truth pairs of devpart1's words
stage=0
stop_stage=100
nj=8
methods="apc cpc capc cae"              # conf/<method>.yaml for each

help_message="Usage: $0 [options]
Frame-level SSL features and AWEs on Buckeye (van Staden & Kamper 2021).
Options:
  --buckeye <dir>          # the corpus: <dir>/s01/s0101a.wav ... ($buckeye)
  --alignments <file>      # word alignments, english.wrd format ($alignments)
  --utd-pairs <file>       # UTD pairs for CAPC and the CAE (default: ground-truth pairs)
  --stage <n>              # first stage to run ($stage)
  --stop-stage <n>         # last stage to run ($stop_stage)
  --nj <n>                 # parallel jobs ($nj)
  --methods <list>         # SSL methods, conf/<method>.yaml each ($methods)
Stages:
  0  data/{devpart1,devpart2,zs}: utterances at the alignment gaps, words.ctm, samediff_words
  1  MFCC 13 and fbank 80 with per-speaker CMVN stats (deltas are added when loading)
  2  train each method on devpart1 MFCC 39 (exp/<method>)
  3  extract each method's features of all sets (data/<set>_<method>)
  4  same-different AP, DTW (and downsampled MFCC), on devpart2 (val) and zs (test):
     exp/<features>/eval/samediff_dtw_{val,test}/results.json
  5  CAE-RNN acoustic word embeddings on the same features, AP on zs (exp/<features>/eval/awe_test)
  6  one results table: exp/results/results.md"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

train=devpart1
val=devpart2
test=zs
evals="$val $test"
sets="$train $evals"
role_of() {  # role_of <set>: the suffix of its result columns
  if [ "$1" = "$val" ]; then echo val; else echo test; fi
}

# CAPC and the CAE train on data/<set>/utd_pairs when UTD pairs were given.
pair_overrides() {  # pair_overrides <method>
  case $1 in
    capc | cae) if [ -n "$utd_pairs" ]; then echo "data.pairs=utd_pairs"; fi ;;
  esac
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  # Kaldi data dirs with segments: one utterance per run of words without a gap.
  local/awe/prepare_data.sh --corpus buckeye --utd-pairs "$utd_pairs" "$buckeye" "$alignments" data
  for x in $sets; do
    utils/validate_data_dir.sh "data/$x"
  done
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  # MFCC 13 and fbank 80, each in its own copy of the data dir, with per-speaker CMVN.
  for x in $sets; do
    for feat in mfcc fbank; do
      utils/copy_data_dir.sh "data/$x" "data/${x}_$feat"
      steps/make_$feat.sh --cmd "$train_cmd" --nj "$nj" \
        "data/${x}_$feat" "exp/make_$feat/$x" $feat
      steps/compute_cmvn_stats.sh "data/${x}_$feat" "exp/make_$feat/$x" $feat
      utils/validate_data_dir.sh "data/${x}_$feat"
    done
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  # Self-supervised training on devpart1 (CAPC and the CAE on same-word pairs from its
  # words.ctm, or on its UTD pairs); a re-run resumes from the last checkpoint.
  for m in $methods; do
    steps/train_ssl.sh --cmd "$cuda_cmd" --overrides "$(pair_overrides "$m")" \
      "conf/$m.yaml" "data/${train}_mfcc" "exp/$m"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  # Each method's features of every set (devpart1 too: stage 5 trains AWEs on it).
  for m in $methods; do
    for x in $sets; do
      steps/extract_ssl.sh --cmd "$train_cmd" --nj "$nj" "exp/$m" "data/${x}_mfcc" \
        "data/${x}_$m"
    done
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  # Same-different on the evaluation words (>= 0.5 s, >= 5 characters): DTW on every
  # feature set, and the downsampled-MFCC baseline. exp/<features>/eval/<task>_<val|test>/
  # Each data dir is read as its eval_opts says: MFCC 39 (speaker CMVN, deltas), fbank 80
  # with CMVN, learned features as extracted (the models normalised their input).
  for x in $evals; do
    for f in mfcc fbank $methods; do
      steps/score_samediff.sh --nj "$nj" "data/${x}_$f" \
        "data/$x/samediff_words" "exp/$f/eval/samediff_dtw_$(role_of "$x")"
    done
    steps/score_samediff.sh --nj "$nj" --method downsample "data/${x}_mfcc" \
      "data/$x/samediff_words" "exp/mfcc/eval/samediff_downsample_$(role_of "$x")"
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # CAE-RNN AWEs, 5 seeds, on every feature set: same-word pairs from devpart1's words.ctm,
  # AP on the test words (train_awe.sh trains once per test set; add devpart2 to validate).
  # MFCC and fbank are also divided by the speaker's deviation, as Kamper's (eval_opts).
  for f in mfcc fbank $methods; do
    steps/train_awe.sh --cmd "$cuda_cmd" --nj "$nj" --seeds "0 1 2 3 4" \
      conf/awe.yaml "data/${train}_$f" "data/${test}_$f" "data/$test/samediff_words" "exp/$f/eval/awe_test"
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  # One table of every result: exp/results/results.md (and results.json, charts).
  utils/gather_results.sh --rows "mfcc fbank $methods" exp exp/results
fi

log "done: stages $stage to $stop_stage"
