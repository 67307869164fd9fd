#!/usr/bin/env bash
# Acoustic word embeddings with the CAE-RNN (Kamper 2019; van Staden & Kamper 2021) on any
# frame-level features: per seed, AE pretraining on the word tokens of <train-data-dir>/
# words.ctm, then the correspondence AE on its same-word pairs; the word list's segments of
# <test-data-dir> are embedded and scored by same-different AP (cosine distance, all pairs).
# Writes <exp-dir>/seed<N>/{final.pt,config.yaml,embeddings.ark,embeddings.scp,results.json}
# and, last, <exp-dir>/{config.yaml,results.json} (AP mean and standard deviation over the
# seeds).  Re-running reuses the seeds that finished with the same inputs and config.
# --cmvn, --norm-vars and --delta-order default to <train-data-dir>/eval_opts (--cmvn,
# --awe-norm-vars, --delta-order: the protocol of its features, written by
# steps/make_feats.sh and steps/extract_ssl.sh), else false, false and 0.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

echo "$0 $*"

# Begin configuration section.
cmd=run_local.sh
nj=1              # parallel jobs sharing the seeds (each uses one CPU thread)
seeds="0"         # one model per seed, e.g. "0 1 2 3 4" (van Staden & Kamper: 5 seeds)
cmvn=             # subtract the speaker's mean (needs cmvn.scp); empty: eval_opts', else false
norm_vars=        # also divide by the speaker's deviation (Kamper's MFCCs are); empty: eval_opts'
delta_order=      # 2: MFCC 13 -> 39; empty: eval_opts', else 0
device=auto       # auto (cuda if available, else cpu), cpu or cuda
# End configuration section.

help_message="Usage: $0 [options] <awe-config> <train-data-dir> <test-data-dir> <test-word-list> <exp-dir>
e.g.: $0 --seeds '0 1' conf/awe.yaml \\
        data/train_mfcc data/test_mfcc data/test_mfcc/samediff_words exp/awe/mfcc
Options:
  --cmd <job-runner>        # how to run the jobs, e.g. run_local.sh or run_slurm.sh ($cmd)
  --nj <n>                  # parallel jobs; seeds are shared between them ($nj)
  --seeds <'s1 s2 ...'>     # seeds, one model each ($seeds)
  --cmvn <true|false>       # speaker mean normalisation (default: eval_opts' --cmvn, else false)
  --norm-vars <true|false>  # variance normalisation too (default: eval_opts' --awe-norm-vars, else false)
  --delta-order <n>         # deltas to append (default: eval_opts' --delta-order, else 0)
  --device <auto|cpu|cuda>  # where to train; auto: cuda if available ($device)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 5 ]; then
  echo "$help_message" >&2
  exit 1
fi
awe_config=$1
train=$2
test=$3
words=$4
dir=$5
# Before any check can fail: a failed run must not leave the last run's results looking
# current.  The seed dirs stay: a seed with results.json for the same inputs is reused.
mkdir -p "$dir"
# One evaluation at a time in an output dir (another would remove this one's outputs).
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -f "${dir:?}"/{results.json,config.yaml}
check_same_eval_opts "$train" "$test"
cmvn=${cmvn:-$(eval_opt "$train" cmvn false)}
norm_vars=${norm_vars:-$(eval_opt "$train" awe-norm-vars false)}
delta_order=${delta_order:-$(eval_opt "$train" delta-order 0)}
log "reading the features with --cmvn $cmvn --norm-vars $norm_vars --delta-order $delta_order" \
    "(the options given, else $train/eval_opts)"

for b in cmvn norm_vars; do
  case ${!b} in true|false) ;; *) echo "$0: --${b//_/-} must be true or false, got '${!b}'" >&2; exit 1 ;; esac
done
case $nj in '' | *[!0-9]* | 0) echo "$0: --nj must be a positive integer, got '$nj'" >&2; exit 1 ;; esac
case $device in auto | cpu | cuda) ;; *) echo "$0: --device must be auto, cpu or cuda, got '$device'" >&2; exit 1 ;; esac
[ -f "$awe_config" ] || { echo "$0: no such config file: $awe_config" >&2; exit 1; }
for d in "$train" "$test"; do
  [ -f "$d/feats.scp" ] || { echo "$0: no $d/feats.scp (make features first, e.g. steps/make_mfcc.sh)" >&2; exit 1; }
  if { [ "$cmvn" = true ] || [ "$norm_vars" = true ]; } && [ ! -f "$d/cmvn.scp" ]; then
    echo "$0: --cmvn/--norm-vars true needs $d/cmvn.scp (run steps/compute_cmvn_stats.sh $d)" >&2
    exit 1
  fi
  "$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$d"
done
[ -f "$train/words.ctm" ] || { echo "$0: no $train/words.ctm: the CAE-RNN trains on the words of a word alignment" >&2; exit 1; }
[ -f "$words" ] || { echo "$0: no word list $words (the corpus writes samediff_words for dev and test)" >&2; exit 1; }

read -r -a seed_list <<< "$seeds"
[ "${#seed_list[@]}" -gt 0 ] || { echo "$0: --seeds is empty" >&2; exit 1; }
[ "$nj" -le "${#seed_list[@]}" ] || nj=${#seed_list[@]}
opts=(--seeds "$seeds" --cmvn "$cmvn" --norm-vars "$norm_vars" --delta-order "$delta_order"
      --config "$awe_config" --device "$device")

mkdir -p "$dir/log"
log "training CAE-RNN embeddings for seeds '$seeds' on $train in $nj job(s); logs: $dir/log/train.*.log"
if ! $cmd JOB=1:"$nj" "$dir/log/train.JOB.log" \
    python -m speechssl.bin.train_awe "${opts[@]}" --job JOB --nj "$nj" \
      "$train" "$test" "$words" "$dir"; then
  echo "$0: training failed; see $dir/log/train.*.log. Seeds that finished are kept:" \
       "re-run the same command to train the rest." >&2
  exit 1
fi
$cmd "$dir/log/summarize.log" \
  python -m speechssl.bin.train_awe "${opts[@]}" --summarize "$train" "$test" "$words" "$dir"

[ -f "$dir/results.json" ] || { echo "$0: no $dir/results.json; see $dir/log/summarize.log" >&2; exit 1; }
grep -h "AP " "$dir/log/summarize.log" | sed 's/^.*) //' >&2 || true
log "succeeded training and scoring CAE-RNN embeddings of $test into $dir/results.json"
