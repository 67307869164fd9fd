#!/usr/bin/env bash
# Speaker verification on a data dir's representations: embedding.scp as is, or feats.scp
# pooled to mean+std over frames.  Writes <out-dir>/scores (Kaldi's <enroll> <test> <score>,
# in trial order), det.png and, last, results.json (EER as Kaldi's compute-eer, minDCF at
# p_target 0.01 and 0.001 as sid/compute_min_dcf.py).  Kaldi reads the scores as
#   paste -d' ' <out-dir>/scores <trials> | awk '{print $3, $6}' | compute-eer -
# --score-norm asnorm: adaptive S-norm (Matejka et al. 2017) against a cohort of --train-dir
# embeddings; the scores and metrics are then of the normalised scores.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
backend=cosine    # cosine or plda
train_dir=        # labelled data dir (utt2spk): mean, LDA, PLDA, cohort (plda, asnorm need it)
lda_dim=100       # plda: LDA dimension (capped at training speakers - 1)
mean_norm=true    # subtract the training mean (else that of the evaluated utterances)
length_norm=true  # plda: length-normalise LDA outputs (cosine is length-normalised anyway)
cmvn=false        # apply the speaker's CMVN (cmvn.scp) before pooling frame features
score_norm=none   # none or asnorm (adaptive S-norm against --train-dir, which it needs)
cohort_size=300   # asnorm: top-N cohort scores per utterance (WeSpeaker's VoxCeleb recipes)
cohort_unit=speaker # asnorm: cohort of training speakers (mean embeddings) or utts
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> <trials> <out-dir>
e.g.: $0 --backend plda --train-dir data/train_mfcc data/test_mfcc data/test/trials exp/sv/mfcc_plda
Options:
  --backend <cosine|plda>   # scoring backend ($backend)
  --train-dir <dir>         # labelled data dir of the same features: mean/LDA/PLDA/cohort
  --lda-dim <n>             # LDA dimension before PLDA ($lda_dim)
  --mean-norm <true|false>  # mean subtraction ($mean_norm)
  --length-norm <true|false> # length normalisation before PLDA ($length_norm)
  --cmvn <true|false>       # speaker CMVN before pooling frame features ($cmvn)
  --score-norm <none|asnorm> # adaptive S-norm against a --train-dir cohort ($score_norm)
  --cohort-size <n>         # asnorm: top-N cohort scores ($cohort_size)
  --cohort-unit <speaker|utt> # asnorm: cohort of speaker means or utterances ($cohort_unit)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
trials=$2
dir=$3
# Before any check can fail: a failed run must not leave the last run's results looking current.
mkdir -p "$dir"
# One evaluation at a time in an output dir (another would remove this one's outputs).
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -f "${dir:?}"/{results.json,scores,det.png}
for b in mean_norm length_norm cmvn; do
  case ${!b} in
    true|false) ;;
    *) echo "$0: --${b//_/-} must be true or false, got '${!b}'" >&2; exit 1 ;;
  esac
done
[ -f "$trials" ] || { echo "$0: no such trials file: $trials" >&2; exit 1; }
if [ ! -f "$data/embedding.scp" ] && [ ! -f "$data/feats.scp" ]; then
  echo "$0: $data has no embedding.scp or feats.scp (run steps/make_mfcc.sh or steps/extract_ssl.sh)" >&2
  exit 1
fi
case $score_norm in
  none|asnorm) ;;
  *) echo "$0: --score-norm must be none or asnorm, got '$score_norm'" >&2; exit 1 ;;
esac
case $cohort_unit in
  utt|speaker) ;;
  *) echo "$0: --cohort-unit must be utt or speaker, got '$cohort_unit'" >&2; exit 1 ;;
esac
if [ "$backend" = plda ] && [ -z "$train_dir" ]; then
  echo "$0: --backend plda needs --train-dir <labelled data dir>" >&2
  exit 1
fi
if [ "$score_norm" = asnorm ] && [ -z "$train_dir" ]; then
  echo "$0: --score-norm asnorm needs --train-dir <labelled data dir> (the cohort)" >&2
  exit 1
fi
train_opt=()
if [ -n "$train_dir" ]; then
  [ -f "$train_dir/utt2spk" ] || { echo "$0: no utt2spk in --train-dir $train_dir" >&2; exit 1; }
  train_opt=(--train-dir "$train_dir")
fi

mkdir -p "$dir/log"
python -m speechssl.bin.score_sv --backend "$backend" "${train_opt[@]}" --lda-dim "$lda_dim" \
  --mean-norm "$mean_norm" --length-norm "$length_norm" --cmvn "$cmvn" \
  --score-norm "$score_norm" --cohort-size "$cohort_size" --cohort-unit "$cohort_unit" \
  "$data" "$trials" "$dir" 2> >(tee "$dir/log/score_sv.log" >&2)

num_scores=$(wc -l < "$dir/scores")
num_trials=$(wc -l < "$trials")
if [ "$num_scores" -ne "$num_trials" ]; then
  rm -f "$dir/results.json"
  echo "$0: $num_scores scores for $num_trials trials; see $dir/log/score_sv.log" >&2
  exit 1
fi
log "succeeded scoring $num_trials trials of $data ($backend, score norm $score_norm):" \
  "$dir/results.json, $dir/det.png"
