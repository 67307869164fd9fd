#!/usr/bin/env bash
# egs/xitsonga: frame-level self-supervised features and acoustic word embeddings on the
# ZeroSpeech 2015 Xitsonga set (NCHLT), after van Staden & Kamper (2021) and Kamper's AWE
# recipe. Utterances are the speech regions of the word alignments. As in their work, one
# set of 24 speakers serves both for (unsupervised) training and for evaluation; training
# with ground-truth word pairs (CAPC, the CAE and the CAE-RNN without --utd-pairs) therefore
# sees the evaluation words' labels: a topline, not the unsupervised setting.
#
# Published results (same-different AP; van Staden & Kamper 2021, REFERENCES.md sec 4):
#   DTW on MFCC 39 (per-speaker CMVN)   0.281
#   DTW on fbank                        0.13
#   downsampled MFCC (10 frames)        0.136
#   CAE-RNN AWE (UTD pairs)             0.29-0.32 (over Buckeye and Xitsonga)
#   DTW on CPC, APC and CAE features beats MFCC; CPC the most.
set -euo pipefail

xitsonga=/data/zerospeech2015/xitsonga_wavs       # folder of nchlt_tso_*.wav
alignments=/data/zerospeech2015/xitsonga.wrd      # word alignments: <file> <start> <end> <word>
utd_pairs=           # optional: discovered pairs (e.g. Kamper's zs_tsonga.fdlps.0.925.pairs.v0)
                     # for CAPC and the CAE instead of ground-truth pairs
stage=0
stop_stage=100
nj=8
methods="apc cpc capc cae"                        # conf/<method>.yaml for each

help_message="Usage: $0 [options]
Frame-level SSL features and AWEs on ZeroSpeech 2015 Xitsonga (van Staden & Kamper 2021).
Options:
  --xitsonga <dir>         # the wavs: <dir>/nchlt_tso_001m_0007.wav ... ($xitsonga)
  --alignments <file>      # word alignments, xitsonga.wrd format ($alignments)
  --utd-pairs <file>       # UTD pairs for CAPC and the CAE (default: ground-truth pairs)
  --stage <n>              # first stage to run ($stage)
  --stop-stage <n>         # last stage to run ($stop_stage)
  --nj <n>                 # parallel jobs ($nj)
  --methods <list>         # SSL methods, conf/<method>.yaml each ($methods)
Stages:
  0  data/xitsonga: utterances at the alignment gaps, words.ctm, samediff_words
  1  MFCC 13 and fbank 80 with per-speaker CMVN stats (deltas are added when loading)
  2  train each method on MFCC 39 of the whole set (exp/<method>)
  3  extract each method's features (data/xitsonga_<method>)
  4  same-different AP, DTW (and downsampled MFCC): exp/<features>/eval/samediff_dtw/
  5  CAE-RNN acoustic word embeddings on the same features (exp/<features>/eval/awe)
  6  one results table: exp/results/results.md"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

x=xitsonga

# CAPC and the CAE train on data/xitsonga/utd_pairs when UTD pairs were given.
pair_overrides() {  # pair_overrides <method>
  case $1 in
    capc | cae) if [ -n "$utd_pairs" ]; then echo "data.pairs=utd_pairs"; fi ;;
  esac
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  # A Kaldi data dir with segments: one utterance per run of words without a gap.
  local/awe/prepare_data.sh --corpus xitsonga --utd-pairs "$utd_pairs" "$xitsonga" "$alignments" data
  utils/validate_data_dir.sh "data/$x"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  # MFCC 13 and fbank 80, each in its own copy of the data dir, with per-speaker CMVN.
  for feat in mfcc fbank; do
    utils/copy_data_dir.sh "data/$x" "data/${x}_$feat"
    steps/make_$feat.sh --cmd "$train_cmd" --nj "$nj" "data/${x}_$feat" "exp/make_$feat/$x" $feat
    steps/compute_cmvn_stats.sh "data/${x}_$feat" "exp/make_$feat/$x" $feat
    utils/validate_data_dir.sh "data/${x}_$feat"
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  # Self-supervised training on the whole set; a re-run resumes from the last checkpoint.
  for m in $methods; do
    steps/train_ssl.sh --cmd "$cuda_cmd" --overrides "$(pair_overrides "$m")" \
      "conf/$m.yaml" "data/${x}_mfcc" "exp/$m"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for m in $methods; do
    steps/extract_ssl.sh --cmd "$train_cmd" --nj "$nj" "exp/$m" "data/${x}_mfcc" "data/${x}_$m"
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  # Same-different on the evaluation words (>= 0.5 s, >= 5 characters): DTW on every
  # feature set, and the downsampled-MFCC baseline. Each data dir is read as its eval_opts
  # says: MFCC 39 (speaker CMVN, deltas), fbank 80 with CMVN, learned features as extracted.
  for f in mfcc fbank $methods; do
    steps/score_samediff.sh --nj "$nj" "data/${x}_$f" \
      "data/$x/samediff_words" "exp/$f/eval/samediff_dtw"
  done
  steps/score_samediff.sh --nj "$nj" --method downsample "data/${x}_mfcc" \
    "data/$x/samediff_words" "exp/mfcc/eval/samediff_downsample"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # CAE-RNN AWEs, 5 seeds, on every feature set: ground-truth same-word pairs of the set's
  # words.ctm (a topline here, see the top of this file), AP on its word list.
  # MFCC and fbank are also divided by the speaker's deviation, as Kamper's (eval_opts).
  for f in mfcc fbank $methods; do
    steps/train_awe.sh --cmd "$cuda_cmd" --nj "$nj" --seeds "0 1 2 3 4" \
      conf/awe.yaml "data/${x}_$f" "data/${x}_$f" "data/$x/samediff_words" "exp/$f/eval/awe"
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  # One table of every result: exp/results/results.md (and results.json, charts).
  utils/gather_results.sh --rows "mfcc fbank $methods" exp exp/results
fi

log "done: stages $stage to $stop_stage"
