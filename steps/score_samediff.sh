#!/usr/bin/env bash
# Same-different word discrimination on a data dir's features (Kamper's samediff): DTW
# (cosine frame distance over n+m) or 10-frame downsampled embeddings over all pairs of the
# word list's segments (every same-word pair and a seeded sample of the others when there
# are more than --max-pairs); average precision with its speaker-bootstrap 95% interval and precision-recall breakeven, overall and for
# different-speaker pairs, in <out-dir>/results.json.  One job of --nj processes (the pairs
# are split between them; the result does not depend on --nj).  --cmvn and --delta-order
# default to the data dir's eval_opts (the protocol of its features, written by
# steps/make_feats.sh and steps/extract_ssl.sh: MFCC CMVN + deltas, fbank CMVN, learned
# features as extracted), else false and 0.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
nj=2
cmd=run_local.sh
method=dtw        # dtw | downsample
cmvn=             # subtract the speaker's mean (needs cmvn.scp); empty: eval_opts', else false
delta_order=      # 2: MFCC 13 -> 39 (Kamper's MFCC baseline); empty: eval_opts', else 0
max_pairs=300000  # pairs scored at most: all same-word pairs, a sample of the others
sample_seed=0     # of that sample
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> <word-list> <out-dir>
e.g.: $0 --nj 2 data/test_mfcc data/test_mfcc/samediff_words exp/eval/samediff/test_mfcc
Options:
  --nj <n>                 # processes sharing the pairs ($nj)
  --cmd <job-runner>       # how to run the job, e.g. run_local.sh or run_slurm.sh ($cmd)
  --method <dtw|downsample> # distance between segments ($method)
  --cmvn <true|false>      # speaker mean normalisation (default: <data-dir>/eval_opts' --cmvn, else false)
  --delta-order <n>        # deltas to append (default: <data-dir>/eval_opts' --delta-order, else 0)
  --max-pairs <n>          # pairs scored at most: every same-word pair, a sample of the others ($max_pairs)
  --sample-seed <n>        # seed of that sample ($sample_seed)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
words=$2
dir=$3
# Before any check can fail: a failed run must not leave the last run's results looking current.
mkdir -p "$dir"
# One evaluation at a time in an output dir (another would remove this one's outputs).
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -f "${dir:?}"/{results.json,config}
cmvn=${cmvn:-$(eval_opt "$data" cmvn false)}
delta_order=${delta_order:-$(eval_opt "$data" delta-order 0)}
log "reading $data with --cmvn $cmvn --delta-order $delta_order (the options given, else $data/eval_opts)"

case "$method" in dtw|downsample) ;; *) echo "$0: --method must be dtw or downsample, got '$method'" >&2; exit 1 ;; esac
[ -f "$data/feats.scp" ] || { echo "$0: no $data/feats.scp (make features first, e.g. steps/make_mfcc.sh)" >&2; exit 1; }
[ -f "$words" ] || { echo "$0: no word list $words (the corpus writes samediff_words for dev and test)" >&2; exit 1; }
check_cmvn "$data" "$cmvn"
"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$data"

mkdir -p "$dir/log"
printf '%s\n' "data=$(readlink -f "$data")" "word_list=$(readlink -f "$words")" \
  "method=$method" "cmvn=$cmvn" "delta_order=$delta_order" "max_pairs=$max_pairs" \
  "sample_seed=$sample_seed" > "$dir/config"
$cmd "$dir/log/score_samediff.log" \
  python -m speechssl.bin.score_samediff --nj "$nj" --method "$method" --cmvn "$cmvn" \
    --delta-order "$delta_order" --max-pairs "$max_pairs" --sample-seed "$sample_seed" \
    "$data" "$words" "$dir"

[ -f "$dir/results.json" ] || { echo "$0: no $dir/results.json; see $dir/log/score_samediff.log" >&2; exit 1; }
grep -h "AP " "$dir/log/score_samediff.log" | sed 's/^.*) //' >&2 || true
log "succeeded scoring same-different ($method) of $data into $dir/results.json"
