#!/usr/bin/env bash
# Score a decode dir (Kaldi's local/score.sh, steps/score_kaldi.sh): WER of each LM weight's
# best paths (<decode-dir>/scoring/<lmwt>.tra, from steps/decode.sh) against <data>/text, in
# compute-wer's format (wer_<lmwt>), the best weight (best_wer), per-utterance alignments at it
# (scoring/wer_details/per_utt), PER from the best paths' phones against <data>/phones.ctm
# (per_<lmwt>) when both exist, and, last, results.json (task asr, or asr_gmm for a GMM).
# Missing hypotheses: compute-wer --mode present (Kaldi's scoring), counted in results.json.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
cmd=run_local.sh
mode=present       # compute-wer --mode: present | all (missing = empty) | strict (error)
features=          # the results' row name; default: the data dir's name
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> <graph-or-lang-dir> <decode-dir>
e.g.: $0 data/test_mfcc exp/mono/graph exp/mono/decode_test
Options:
  --cmd <job-runner>           # how to run the job ($cmd)
  --mode <present|all|strict>  # hypotheses missing ($mode)
  --features <name>            # results.json's features (default: data dir name)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
lang=$2
dir=$3
rm -f "$dir/results.json"
for f in "$data/text" "$lang/words.txt"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
opts=(--mode "$mode")
[ -z "$features" ] || opts+=(--features "$features")
mkdir -p "$dir/log"
$cmd "$dir/log/score.log" python -m speechssl.bin.score_wer "${opts[@]}" "$data" "$lang" "$dir"
[ -f "$dir/results.json" ] || { echo "$0: no $dir/results.json; see $dir/log/score.log" >&2; exit 1; }
cat "$dir/best_wer" >&2
log "succeeded scoring $dir"
