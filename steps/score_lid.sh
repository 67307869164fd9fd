#!/usr/bin/env bash
# Closed-set language recognition on a data dir's utterance vectors (embedding.scp, or
# feats.scp pooled to mean+std as for SV): each test utterance scored against every
# language of <train-data-dir> (held-out speakers), by cosine to the language centres or by
# a linear back-end's log-likelihood ratios. Both dirs need utt2lang. Writes
# <out-dir>/scores (<utt> <language> <score>) and, last, results.json: identification
# accuracy, EER over the language trials, Cavg (NIST LRE, P_target 0.5) at threshold 0 and
# at the best threshold (min Cavg), with 95% intervals over the test speakers.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
backend=cosine    # cosine (to language centres) or linear (a softmax back-end's LLRs)
cmvn=false        # speaker CMVN before pooling frame features
seed=0            # the linear back-end's training
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <train-data-dir> <test-data-dir> <out-dir>
e.g.: $0 --backend linear data/train_eval_mfcc data/test_mfcc exp/mfcc/eval/lid_linear
Options:
  --backend <cosine|linear> # scoring back-end ($backend)
  --cmvn <true|false>       # speaker CMVN before pooling ($cmvn)
  --seed <n>                # linear back-end's initialisation and shuffling ($seed)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
train=$1
test=$2
dir=$3
# Before any check can fail: a failed run must not leave the last run's results looking current.
mkdir -p "$dir"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -f "${dir:?}"/{results.json,scores}
case $backend in cosine|linear) ;; *) echo "$0: --backend must be cosine or linear, got '$backend'" >&2; exit 1 ;; esac
case $cmvn in true|false) ;; *) echo "$0: --cmvn must be true or false, got '$cmvn'" >&2; exit 1 ;; esac
for data in "$train" "$test"; do
  [ -f "$data/utt2lang" ] || { echo "$0: no $data/utt2lang (each utterance's language)" >&2; exit 1; }
  "$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav "$data"
done

mkdir -p "$dir/log"
python -m speechssl.bin.score_lid --backend "$backend" --cmvn "$cmvn" --seed "$seed" \
  "$train" "$test" "$dir" 2> >(tee "$dir/log/score_lid.log" >&2)
[ -f "$dir/results.json" ] || { echo "$0: no $dir/results.json; see $dir/log/score_lid.log" >&2; exit 1; }
log "succeeded scoring the languages of $test ($backend): $dir/results.json"
