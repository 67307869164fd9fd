#!/usr/bin/env bash
# egs/librispeech: self-supervised representations trained on LibriSpeech without labels,
# then probed with the protocol of the CPC paper on train-clean-100: phone classification
# (a linear classifier on each 10 ms frame, 41 classes) and speaker classification (251
# readers, linear on mean-pooled features), trained on train_split.txt and tested on
# test_split.txt (held-out utterances of the same readers).
#
# Published test accuracies (van den Oord et al. 2018; Mockingjay: Liu et al. 2020):
#   phones    MFCC 39.7%   CPC 64.6%   Mockingjay 67.0% (79.1% with one hidden layer;
#             pretrained on LibriSpeech 360 h for 1 M steps, the last layer)
#   speakers  MFCC 17.6%   CPC 97.4%
# APC training L1 after 100 epochs on train-clean-360 (Chung et al. 2019): 0.53 at time
# shift 1, 0.87 at shift 3 (conf/apc.yaml), 1.09 at shift 5.
# The published CPC encodes the waveform with 5 conv layers; conf/cpc.yaml is the variant
# of van Staden & Kamper (2021) on MFCC frames, so its accuracies need not reach those.
# CAPC and the frame CAE train on same-word pairs from word alignments, which LibriSpeech
# does not ship, so they are not run here (egs/mini has them).
# Hybrid ASR (stages 6-7) as Kaldi's egs/librispeech/s5 up to its monophone, with the
# lexicon and LMs of openslr.org/11 (one distribution: the LMs' words are the lexicon's): a
# DNN on each features' frames of train-clean-100; test-clean WER at dev-clean's best LM
# weight. Published (train-clean-100, tgsmall, test-clean; Kaldi tri4b alignments, not a
# monophone's): pytorch-kaldi MLP 9.6%, liGRU 8.6%; TERA (960 h) + liGRU 8.23%.
#
#   ./run.sh --librispeech /data/LibriSpeech --cpc-labels /data/cpc_labels
#   ./run.sh --download true --librispeech corpus/LibriSpeech --cpc-labels ...
#   ./run.sh --stage 4 --methods apc      re-run the probes of MFCC, fbank and APC only
#   ./run.sh --stage 6 --lm-dir /data/librispeech_lm     the hybrid ASR only
# Results: exp/<features>/eval/{probe_phone,probe_speaker,asr}/results.json,
# exp/mfcc/eval/asr_gmm/results.json; table: exp/results/results.md
set -euo pipefail

librispeech=corpus/LibriSpeech  # the LibriSpeech/ folder: SPEAKERS.TXT, train-clean-100/, ...
cpc_labels=corpus/cpc_labels    # converted_aligned_phones.txt, train_split.txt, test_split.txt
stage=0
stop_stage=100
nj=4
download=false                  # true: first fetch $subsets, and the LM files into $lm_dir
subsets="train-clean-100 dev-clean test-clean"  # what --download fetches from openslr.org/12
train_set=train_clean_100       # SSL training data (its labels are not used)
methods="apc cpc"               # conf/<method>.yaml for each; all: $all_methods
probe_hidden_dim=768            # the phone probe with one hidden ReLU layer (ours: the published Transformers' width)
device=auto                     # auto (cuda if available, else cpu), cpu or cuda: extraction, probes, DNNs
lm_dir=corpus/lm                # librispeech-lexicon.txt, lm_<name>.arpa.gz (openslr.org/11)
lm=tgsmall                      # decoding LM: $lm_dir/lm_$lm.arpa.gz
lmwt_range=7:17:2               # ASR LM weights tried on dev-clean: each is a decoding pass
max_fail_fraction=0.1           # fraction of utterances allowed to fail GMM alignment
decode_opts=                    # extra options of every decoding, e.g. "--beam 10 --max-active 3000"

all_methods="apc cpc mockingjay tera albert"
help_message="Usage: $0 [options]
e.g.: $0 --librispeech /data/LibriSpeech --cpc-labels /data/cpc_labels
Stages:
  0  data/<subset> for every LibriSpeech subset present (- becomes _; speaker = reader);
     data/cpc_train, data/cpc_test (+ phone_ali) from the CPC protocol files
  1  fbank 80 and MFCC 13 with per-speaker CMVN: data/<set>_fbank, data/<set>_mfcc
  2  self-supervised training of each method on --train-set: exp/<method>
  3  representations of cpc_train and cpc_test: data/cpc_{train,test}_<method>
  4  phone probes on MFCC (+ deltas), fbank and each method, linear and with one hidden
     layer: exp/<features>/eval/{probe_phone,probe_phone_1hidden}/results.json
  5  speaker probe, likewise: exp/<features>/eval/probe_speaker/results.json
  6  hybrid ASR groundwork: data/local/dict and data/lang from the published lexicon,
     data/lang_test_<lm>, features of dev-clean and test-clean, a monophone GMM on MFCC
     of the 2000 shortest utterances (exp/mono), alignments of train-clean-100
     (exp/mono_ali), the graph, the GMM's WER: exp/mfcc/eval/asr_gmm/results.json
  7  hybrid DNN on MFCC, fbank and each method's train-clean-100 representations,
     decoded: exp/<features>/eval/asr/results.json
  8  one results table: exp/results/results.md
Options:
  --librispeech <dir>      the LibriSpeech/ folder ($librispeech)
  --cpc-labels <dir>       converted_aligned_phones.txt, train_split.txt and test_split.txt
                           of CPC_audio's LibriSpeech100_labels_split; empty: no
                           protocol, stages 3-5 cannot run ($cpc_labels)
  --stage <n>              first stage to run ($stage)
  --stop-stage <n>         last stage to run ($stop_stage)
  --nj <n>                 parallel jobs for features and extraction ($nj)
  --download <true|false>  fetch --subsets into the parent of --librispeech, and the
                           lexicon and LMs into --lm-dir, first ($download)
  --subsets '<subset> ...' for --download ($subsets)
  --train-set <name>       data dir to train on ($train_set)
  --methods '<m> ...'|all  SSL methods, conf/<m>.yaml each ($methods; all: $all_methods)
  --probe-hidden-dim <n>   hidden layer of the second phone probe ($probe_hidden_dim)
  --device <auto|cpu|cuda> for extraction, probes and DNNs ($device)
  --lm-dir <dir>           librispeech-lexicon.txt and lm_<name>.arpa.gz ($lm_dir)
  --lm <name>              decoding LM, Kaldi's name: tgsmall, tgmed ($lm)
  --lmwt-range <min:max[:step]>  ASR LM weights tried on dev-clean ($lmwt_range)
  --max-fail-fraction <x>  most utterances allowed to fail GMM alignment ($max_fail_fraction)
  --decode-opts '<opts>'   extra options of steps/decode.sh, e.g. '--beam 10' ($decode_opts)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
[ "$methods" != all ] || methods=$all_methods

# The input of each method, as published: APC (Chung et al. 2019) and the S3PRL Transformers
# (Mockingjay, TERA, Audio ALBERT) read log-mel fbank with CMVN, the frame-level models of van
# Staden & Kamper (2021) MFCC + deltas with CMVN.
input_of() {  # input_of <method> <set>
  case $1 in
    apc|mockingjay|tera|albert) echo "data/$2_fbank" ;;
    *) echo "data/$2_mfcc" ;;
  esac
}

# feats <set>: fbank 80 and MFCC 13 of data/<set> with per-speaker CMVN, each in its own
# copy of the data dir (data/<set>_fbank, data/<set>_mfcc).
feats() {
  for feat in fbank mfcc; do
    utils/copy_data_dir.sh "data/$1" "data/$1_$feat"
    steps/make_$feat.sh --cmd "$train_cmd" --nj "$nj" "data/$1_$feat" "exp/make_$feat/$1" $feat
    steps/compute_cmvn_stats.sh "data/$1_$feat" "exp/make_$feat/$1" $feat
    utils/validate_data_dir.sh "data/$1_$feat"
  done
}

need_asr_inputs() {
  for x in train_clean_100 dev_clean test_clean; do
    [ -d "data/$x" ] || { echo "$0: no data/$x: run stage 0 with ${x//_/-}" >&2; exit 1; }
  done
  for f in librispeech-lexicon.txt "lm_$lm.arpa.gz"; do
    [ -f "$lm_dir/$f" ] || { echo "$0: no $lm_dir/$f: run local/librispeech/download_lm.sh" \
      "$lm_dir (it only checks and links files fetched by hand from openslr.org/11)" >&2; exit 1; }
  done
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
    local/librispeech/download_lm.sh "$lm_dir"
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
  for x in $sets; do feats "$x"; done
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
  # Then, as the Mockingjay paper reports too, a classifier with one hidden ReLU layer.
  need_protocol
  for f in mfcc fbank $methods; do
    steps/train_probe.sh --cmd "$cuda_cmd" --device "$device" --task phone \
      "data/cpc_train_$f" "data/cpc_test_$f" "exp/$f/eval/probe_phone"
    steps/train_probe.sh --cmd "$cuda_cmd" --device "$device" --task phone \
      --hidden-dim "$probe_hidden_dim" \
      "data/cpc_train_$f" "data/cpc_test_$f" "exp/$f/eval/probe_phone_1hidden"
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
  # Hybrid ASR groundwork as s5: the published lexicon (<UNK> for other words) and LM, a
  # flat-start mono GMM on MFCC of the shortest utterances (s5's train_2kshort: easier to
  # align), its alignments of train-clean-100 and WER. A triphone system (s5's tri1-tri4b)
  # needs tree building, which kaldi-hmm-gmm 1.1.4 does not expose. Estimated times,
  # 4 CPU jobs: mono ~5 min, alignment ~20 min, graph ~10 min, decoding 1-3 h a pass.
  need_asr_inputs
  local/librispeech/prepare_dict.sh "$lm_dir" data/local/dict
  utils/prepare_lang.sh data/local/dict "<UNK>" data/local/lang_tmp data/lang
  utils/format_lm.sh data/lang "$lm_dir/lm_$lm.arpa.gz" data/local/dict/lexicon.txt \
    "data/lang_test_$lm"
  [ -f data/train_clean_100_mfcc/feats.scp ] || feats train_clean_100
  feats dev_clean
  feats test_clean
  sort -k2,2g data/train_clean_100/utt2dur | awk 'NR <= 2000 {print $1}' | sort \
    > data/local/train_2kshort.list
  utils/subset_data_dir.sh --utt-list data/local/train_2kshort.list data/train_clean_100_mfcc \
    data/train_2kshort_mfcc
  steps/train_mono.sh --cmd "$train_cmd" --nj "$nj" --boost-silence 1.25 \
    --max-fail-fraction "$max_fail_fraction" data/train_2kshort_mfcc data/lang exp/mono
  steps/align_si.sh --cmd "$train_cmd" --nj "$nj" --boost-silence 1.25 \
    --max-fail-fraction "$max_fail_fraction" data/train_clean_100_mfcc data/lang exp/mono exp/mono_ali
  utils/mkgraph.sh "data/lang_test_$lm" exp/mono "exp/mono/graph_$lm"
  # shellcheck disable=SC2086  # $decode_opts: several words
  steps/decode.sh --cmd "$decode_cmd" --nj "$nj" --lmwt-range "$lmwt_range" $decode_opts \
    "exp/mono/graph_$lm" data/dev_clean_mfcc "exp/mono/decode_${lm}_dev_clean"
  lmwt=$(best_lmwt "exp/mono/decode_${lm}_dev_clean")   # an assignment: set -e sees a failure
  # shellcheck disable=SC2086
  steps/decode.sh --cmd "$decode_cmd" --nj "$nj" --model exp/mono/final.mdl --lmwt "$lmwt" \
    $decode_opts "exp/mono/graph_$lm" data/test_clean_mfcc exp/mfcc/eval/asr_gmm
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  # Hybrid DNN-HMM: an MLP on spliced frames of the frozen features, trained on the mono
  # alignments' pdf ids. Estimated on train-clean-100 (~36 M frames): ~1 h an epoch on 2 CPU
  # threads (~10 k frames/s), minutes on a GPU; at most 10 epochs (newbob).
  for m in $methods; do
    for x in train_clean_100 dev_clean test_clean; do
      steps/extract_ssl.sh --cmd "$train_cmd" --nj "$nj" --device "$device" "exp/$m" \
        "$(input_of "$m" $x)" "data/${x}_$m"
    done
  done
  for f in mfcc fbank $methods; do
    steps/train_hybrid.sh --cmd "$cuda_cmd" --device "$device" \
      --max-unaligned-fraction "$max_fail_fraction" \
      "data/train_clean_100_$f" exp/mono_ali data/lang "exp/$f/hybrid"
    # shellcheck disable=SC2086
    steps/decode_hybrid.sh --cmd "$decode_cmd" --nj "$nj" --lmwt-range "$lmwt_range" \
      $decode_opts "exp/mono/graph_$lm" "data/dev_clean_$f" "exp/$f/hybrid" \
      "exp/$f/hybrid/decode_${lm}_dev_clean"
    lmwt=$(best_lmwt "exp/$f/hybrid/decode_${lm}_dev_clean")
    # shellcheck disable=SC2086
    steps/decode_hybrid.sh --cmd "$decode_cmd" --nj "$nj" --lmwt "$lmwt" $decode_opts \
      "exp/mono/graph_$lm" "data/test_clean_$f" "exp/$f/hybrid" "exp/$f/eval/asr"
  done
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  # One table of every result: exp/results/results.md (and results.json, charts).
  utils/gather_results.sh --rows "mfcc fbank $methods" exp exp/results
fi

log "done: stages $stage to $stop_stage"
