#!/usr/bin/env bash
# egs/librispeech: self-supervised representations trained on LibriSpeech without labels,
# then probed with the protocol of the CPC paper on train-clean-100: phone classification
# (a linear classifier on each 10 ms frame, 41 classes) and speaker classification (251
# readers, linear on mean-pooled features), trained on train_split.txt and tested on
# test_split.txt (held-out utterances of the same readers).
#
# Published test accuracies (van den Oord et al. 2018; Mockingjay: Liu et al. 2020):
#   phones    MFCC 39.7%   CPC 64.6%   Mockingjay 67.0% (79.1% with one hidden layer)
#   speakers  MFCC 17.6%   CPC 97.4%
# APC training L1 after 100 epochs on train-clean-360 (Chung et al. 2019): 0.53 at time
# shift 1, 0.87 at shift 3 (conf/apc.yaml), 1.09 at shift 5.
# The published CPC encodes the waveform with 5 conv layers; conf/cpc.yaml is the variant
# of van Staden & Kamper (2021) on MFCC frames, so its accuracies need not reach those.
# CAPC and the frame CAE train on same-word pairs from word alignments, which LibriSpeech
# does not ship, so they are not run here (egs/mini has them).
#
#   ./run.sh --librispeech /data/LibriSpeech --cpc-labels /data/cpc_labels
#   ./run.sh --download true --librispeech corpus/LibriSpeech --cpc-labels ...
#   ./run.sh --stage 4 --methods apc      re-run the probes of MFCC, fbank and APC only
# Results: exp/<features>/eval/probe_{phone,speaker}/results.json; table: exp/results/results.md
set -euo pipefail

librispeech=corpus/LibriSpeech  # the LibriSpeech/ folder: SPEAKERS.TXT, train-clean-100/, ...
cpc_labels=corpus/cpc_labels    # converted_aligned_phones.txt, train_split.txt, test_split.txt
stage=0
stop_stage=100
nj=4
download=false                  # true: first fetch $subsets from openslr.org/12
subsets=train-clean-100         # what --download fetches, e.g. "train-clean-100 dev-clean"
train_set=train_clean_100       # SSL training data (its labels are not used)
methods="apc cpc"               # conf/<method>.yaml for each
device=auto                     # auto (cuda if available, else cpu), cpu or cuda: extraction, probes

help_message="Usage: $0 [options]
e.g.: $0 --librispeech /data/LibriSpeech --cpc-labels /data/cpc_labels
Stages:
  0  data/<subset> for every LibriSpeech subset present (- becomes _; speaker = reader);
     data/cpc_train, data/cpc_test (+ phone_ali) from the CPC protocol files
  1  fbank 80 and MFCC 13 with per-speaker CMVN: data/<set>_fbank, data/<set>_mfcc
  2  self-supervised training of each method on --train-set: exp/<method>
  3  representations of cpc_train and cpc_test: data/cpc_{train,test}_<method>
  4  phone probe on MFCC (+ deltas), fbank and each method:
     exp/<features>/eval/probe_phone/results.json
  5  speaker probe, likewise: exp/<features>/eval/probe_speaker/results.json
  6  one results table: exp/results/results.md
Options:
  --librispeech <dir>      the LibriSpeech/ folder ($librispeech)
  --cpc-labels <dir>       converted_aligned_phones.txt, train_split.txt and test_split.txt
                           of CPC_audio's LibriSpeech100_labels_split; empty: no
                           protocol, stages 3-5 cannot run ($cpc_labels)
  --stage <n>              first stage to run ($stage)
  --stop-stage <n>         last stage to run ($stop_stage)
  --nj <n>                 parallel jobs for features and extraction ($nj)
  --download <true|false>  fetch --subsets into the parent of --librispeech first ($download)
  --subsets '<subset> ...' for --download ($subsets)
  --train-set <name>       data dir to train on ($train_set)
  --methods '<m> ...'      SSL methods, conf/<m>.yaml each ($methods)
  --device <auto|cpu|cuda> for extraction and probes ($device)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

# The input of each method, as published: APC reads log-mel fbank with CMVN (Chung et al.
# 2019), the frame-level models of van Staden & Kamper (2021) MFCC + deltas with CMVN.
input_of() {  # input_of <method> <set>
  case $1 in
    apc) echo "data/$2_fbank" ;;
    *) echo "data/$2_mfcc" ;;
  esac
}

need_protocol() {
  if [ ! -f data/cpc_train/phone_ali ] || [ ! -f data/cpc_test/phone_ali ]; then
    echo "$0: no data/cpc_train or data/cpc_test: run stage 0 with --cpc-labels <dir>" >&2
    exit 1
  fi
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  # Kaldi data dirs of the corpus; the tarballs unpack to LibriSpeech/, hence the parent.
  if $download; then
    if [ "$(basename "$librispeech")" != LibriSpeech ]; then
      echo "$0: with --download true, --librispeech must end in /LibriSpeech," \
        "the folder the tarballs unpack to; got '$librispeech'" >&2
      exit 1
    fi
    read -r -a subset_list <<< "$subsets"
    local/librispeech/download_and_untar.sh "$(dirname "$librispeech")" "${subset_list[@]}"
  fi
  local/librispeech/prepare_data.sh "$librispeech" data
  if [ -n "$cpc_labels" ]; then
    if [ ! -d data/train_clean_100 ]; then
      echo "$0: the CPC protocol needs train-clean-100, which is not under $librispeech" >&2
      exit 1
    fi
    local/librispeech/import_cpc_protocol.sh "$cpc_labels" data/train_clean_100 \
      data/cpc_train data/cpc_test
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  # Features of the training set (and of train-clean-100, which the protocol's sets come
  # from), each in its own copy of the data dir.
  sets=$train_set
  if [ -d data/cpc_train ] && [ "$train_set" != train_clean_100 ]; then
    sets="$sets train_clean_100"
  fi
  for x in $sets; do
    for feat in fbank mfcc; do
      utils/copy_data_dir.sh "data/$x" "data/${x}_$feat"
      steps/make_$feat.sh --cmd "$train_cmd" --nj "$nj" \
        "data/${x}_$feat" "exp/make_$feat/$x" $feat
      steps/compute_cmvn_stats.sh "data/${x}_$feat" "exp/make_$feat/$x" $feat
      utils/validate_data_dir.sh "data/${x}_$feat"
    done
  done
  # The protocol's sets take their features from train-clean-100 (computed once) and
  # their CMVN statistics from their own utterances.
  if [ -d data/cpc_train ]; then
    for x in cpc_train cpc_test; do
      for feat in fbank mfcc; do
        utils/subset_data_dir.sh --utt-list "data/$x/utt2spk" \
          "data/train_clean_100_$feat" "data/${x}_$feat"
        cp "data/$x/phone_ali" "data/${x}_$feat/phone_ali"
        steps/compute_cmvn_stats.sh "data/${x}_$feat" "exp/make_$feat/$x" $feat
        utils/validate_data_dir.sh "data/${x}_$feat"
      done
    done
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  # Self-supervised training without labels; re-running resumes from the last checkpoint.
  for m in $methods; do
    steps/train_ssl.sh --cmd "$cuda_cmd" "conf/$m.yaml" "$(input_of "$m" "$train_set")" \
      "exp/$m"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  # Representations of the protocol's sets (phone_ali is carried over).
  need_protocol
  for m in $methods; do
    for x in cpc_train cpc_test; do
      steps/extract_ssl.sh --cmd "$train_cmd" --nj "$nj" --device "$device" "exp/$m" \
        "$(input_of "$m" $x)" "data/${x}_$m"
    done
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  # Phone classification: a linear classifier of each frame's class, on the features as
  # their eval_opts says (MFCC with speaker CMVN and deltas, fbank with CMVN, learned
  # features as extracted). The speaker probe pools the features as they are.
  need_protocol
  for f in mfcc fbank $methods; do
    steps/train_probe.sh --cmd "$cuda_cmd" --device "$device" --task phone \
      "data/cpc_train_$f" "data/cpc_test_$f" "exp/$f/eval/probe_phone"
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # Speaker classification: a linear classifier of the reader of each mean-pooled utterance.
  need_protocol
  for f in mfcc fbank $methods; do
    steps/train_probe.sh --cmd "$cuda_cmd" --device "$device" --task speaker \
      "data/cpc_train_$f" "data/cpc_test_$f" "exp/$f/eval/probe_speaker"
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  # One table of every result: exp/results/results.md (and results.json, charts).
  utils/gather_results.sh --rows "mfcc fbank $methods" exp exp/results
fi

log "done: stages $stage to $stop_stage"
