#!/usr/bin/env bash
# egs/mini: the embedded corpus, end to end on a laptop CPU.
# Stage 0 synthesises a multi-speaker, multi-language corpus with exact word and phone
# alignments (espeak-ng); stage 1 computes Kaldi fbank and MFCC features with CMVN;
# stage 2 trains each self-supervised method; stage 3 writes their representations;
# stage 4 builds the hybrid ASR's lang, LM, monophone GMM alignments and graph; stage 5
# evaluates the baselines and every method on every task that fits it; stage 6 gathers one
# results table (exp/results/results.md, one chart per task).
#   ./run.sh                      all stages, default corpus (about 1.9 hours of audio)
#   ./run.sh --preset tiny        a corpus of a few seconds, as the tests use
#   ./run.sh --stage 1            recompute features on an existing corpus
#   ./run.sh --methods all        every method with a conf/<method>.yaml: the full table
set -euo pipefail

stage=0
stop_stage=100
nj=2
preset=default   # default (49 speakers of 7 languages; 2 per language test) or tiny (8 x 5)
augment=false    # reverberation, noise, band-pass and gain on top of the clean speech
seed=0
methods="apc cpc capc cae vicreg"   # conf/<method>.yaml for each; all: $all_methods
awe_seeds="0 1 2"                   # CAE-RNN acoustic word embeddings: one training per seed
layer_sum_methods=                  # also every layer of these, stacked: rows <method>_layers
lmwt_range=7:17:10                  # ASR LM weights tried on held-out data: each is a pass
# Decoding beams: on this 400-word graph, beam 10 / max-active 2000 give the WER of Kaldi's
# 13 / 7000 in a fifth of the search time (CPC's DNN on train_heldout: 6.44% both, 14 s
# vs 75 s of CPU for LM weights 7 and 17).
decode_opts="--beam 10 --max-active 2000"

all_methods="apc cpc capc cae vicreg mockingjay tera albert"
help_message="Usage: $0 [options]
e.g.: $0 --preset tiny
Stages:
  0  synthesise the corpus: corpus/ (wavs), data/{train,dev,test} with alignments
  1  fbank 80 and MFCC 13 with per-speaker CMVN: data/<set>_fbank, data/<set>_mfcc
  2  self-supervised training of each method: exp/<method>
  3  evaluation subsets of the training speakers (data/train_eval*, data/train_heldout*)
     and the representations: data/<set>_<method>
  4  hybrid ASR groundwork: data/lang, a trigram LM (data/lang_test), monophone GMM
     on MFCC (exp/mono), its alignments (exp/mono_ali) and graph (exp/mono/graph)
  5  evaluations of fbank, MFCC and each method: exp/<features>/eval/<task>/results.json
  6  one results table: exp/results/results.md and a chart per task
Options:
  --stage <n>              first stage to run ($stage)
  --stop-stage <n>         last stage to run ($stop_stage)
  --nj <n>                 parallel jobs ($nj)
  --preset <default|tiny>  corpus size ($preset)
  --augment <true|false>   augmented copy of the corpus ($augment)
  --seed <n>               corpus seed ($seed)
  --methods '<m> ...'|all  SSL methods, conf/<m>.yaml each ($methods; all: $all_methods)
  --awe-seeds '<n> ...'    CAE-RNN trainings per features ($awe_seeds)
  --layer-sum-methods '<m> ...'  methods also evaluated on all their layers, stacked, with
                           the probes and hybrid DNN learning a weighted sum ($layer_sum_methods)
  --lmwt-range <min:max[:step]>  ASR LM weights tried on held-out data ($lmwt_range)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

[ "$methods" != all ] || methods=$all_methods
sets="train dev test"
rows="fbank mfcc $methods"
for m in $layer_sum_methods; do rows+=" ${m}_layers"; done
# The tiny preset's few utterances per language train a poor GMM: more of them fail to
# align (Kaldi drops those with a warning; steps refuse more than this fraction).
max_fail=0.1
[ "$preset" != tiny ] || max_fail=0.5

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
  # Self-supervised training, one exp dir per method, $nj methods side by side with one
  # thread each (on CPU, two one-thread trainings get 1.4x the work of one two-thread
  # training done). Re-running resumes from the last checkpoint. Logs:
  # exp/<method>/log/train.log; TensorBoard: tensorboard --logdir exp
  # In this order the two slots end together (make demo on 2 cores: APC 103 s, CPC 100,
  # VICReg 189, CAPC 76, CAE 83: 4:48 for all five, the slots 7 s apart).
  jobs=
  for m in apc cpc vicreg capc cae $methods; do
    if [[ " $methods " == *" $m "* && "$jobs " != *" $m:"* ]]; then
      jobs+=" $m:$(input_of "$m" train)"
    fi
  done
  $train_cmd --max-jobs-run "$nj" JOB=1:"$(wc -w <<< "$methods")" \
    exp/train_ssl/log/train_ssl.JOB.log local/mini/train_ssl.sh --cmd "$train_cmd" JOB "$jobs"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  # Evaluation sets from the training speakers: train_eval (20 utterances per speaker)
  # trains the probes, the AWEs, the SV backends and the hybrid ASR; train_heldout (5
  # other utterances per speaker) tests the speaker probe and tunes the ASR's LM weight.
  # Test speakers are never seen in training. The utterances are chosen once and the
  # feature dirs cut to the same ones. (12 per speaker saved a minute of make demo but
  # starved the backends: speaker probe of APC 84 -> 54%, CAE-RNN AP of the CAE 0.56 -> 0.41.)
  local/mini/make_eval_subsets.sh data/train data/train_eval data/train_heldout \
    data/train_fbank data/train_mfcc
  # Representations as Kaldi data dirs data/<set>_<method>, $nj methods side by side.
  jobs=
  for m in $methods; do jobs+=" $m:$(input_of "$m" SET)"; done
  $train_cmd --max-jobs-run "$nj" JOB=1:"$(wc -w <<< "$methods")" \
    exp/extract_ssl/log/extract_ssl.JOB.log local/mini/extract_ssl.sh --cmd "$train_cmd" \
    JOB "train_eval train_heldout test" "$jobs"
  if [ -n "$layer_sum_methods" ]; then
    # Every layer stacked, data/<set>_<method>_layers, for stage 5's weighted layer sums.
    jobs=
    for m in $layer_sum_methods; do jobs+=" $m:$(input_of "$m" SET)"; done
    $train_cmd --max-jobs-run "$nj" JOB=1:"$(wc -w <<< "$layer_sum_methods")" \
      exp/extract_ssl/log/extract_ssl_layers.JOB.log local/mini/extract_ssl.sh \
      --cmd "$train_cmd" --layer all --suffix _layers JOB "train_eval train_heldout test" "$jobs"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  # Hybrid ASR groundwork, as Kaldi's recipes: a lang dir from the corpus lexicon, a
  # trigram LM of the training transcripts, a monophone GMM on MFCC trained on the
  # evaluation subset (the hybrid DNNs' training data), its alignments and decoding graph.
  utils/prepare_lang.sh data/local/dict "<unk>" data/local/lang data/lang
  utils/make_ngram_lm.sh --order 3 data/train/text data/lang data/local/lm/train.3gram.arpa.gz
  utils/format_lm.sh data/lang data/local/lm/train.3gram.arpa.gz \
    data/local/dict/lexicon.txt data/lang_test
  steps/train_mono.sh --cmd "$train_cmd" --nj "$nj" --max-fail-fraction "$max_fail" \
    data/train_eval_mfcc data/lang exp/mono
  steps/align_si.sh --cmd "$train_cmd" --nj "$nj" --max-fail-fraction "$max_fail" \
    data/train_eval_mfcc data/lang exp/mono exp/mono_ali
  utils/mkgraph.sh data/lang_test exp/mono exp/mono/graph
  # The GMM's WER: LM weight chosen on held-out utterances of the training speakers.
  # shellcheck disable=SC2086  # $decode_opts: several words
  steps/decode.sh --cmd "$decode_cmd" --nj "$nj" --lmwt-range "$lmwt_range" $decode_opts \
    exp/mono/graph data/train_heldout_mfcc exp/mono/decode_heldout
  lmwt=$(best_lmwt exp/mono/decode_heldout)   # an assignment: set -e sees a failure
  # shellcheck disable=SC2086
  steps/decode.sh --cmd "$decode_cmd" --nj "$nj" --lmwt "$lmwt" $decode_opts \
    --model exp/mono/final.mdl exp/mono/graph data/test_mfcc exp/mfcc/eval/asr_gmm
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # Every evaluation writes exp/<features>/eval/<task>/results.json (local/mini/evaluate.sh:
  # frame-level features get same-different, AWEs, the phone probe and hybrid ASR; all
  # get SV and the speaker and language probes). Most steps use one core, so $nj
  # features are evaluated side by side; logs: exp/evaluate/log/evaluate.<n>.log.
  $train_cmd --max-jobs-run "$nj" JOB=1:"$(wc -w <<< "$rows")" \
    exp/evaluate/log/evaluate.JOB.log local/mini/evaluate.sh --cmd "$train_cmd" \
    --awe-seeds "$awe_seeds" --lmwt-range "$lmwt_range" --decode-opts "$decode_opts" \
    --max-fail "$max_fail" JOB "$rows"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  # One table: rows are features, columns tasks; the best of each column in bold.
  utils/gather_results.sh --rows "$rows" exp exp/results
fi

log "done: stages $stage to $stop_stage"
