#!/usr/bin/env bash
# The cepstral lifter's effect on MFCC same-different, in a finished egs/mini dir: MFCC of
# the test set without it (--cepstral-lifter=0, else conf/mfcc.conf) into
# <recipe-dir>/data/test_mfccnl (features and logs under <out-dir>), its DTW AP, and the
# paired speaker-bootstrap interval of the difference (bench/paired_samediff.py).  Not a test.
#   bench/mfcc_lifter.sh egs/mini /tmp/lifter
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "Usage: $0 <recipe-dir> <out-dir>" >&2
  exit 1
fi
out=$(mkdir -p "$2" && cd "$2" && pwd)
cd "$1"
. ./path.sh
{ cat conf/mfcc.conf; echo "--cepstral-lifter=0"; } > "$out/mfcc_nolifter.conf"
rm -rf data/test_mfccnl
utils/copy_data_dir.sh data/test data/test_mfccnl
steps/make_mfcc.sh --nj 2 --mfcc-config "$out/mfcc_nolifter.conf" data/test_mfccnl \
  "$out/log" "$out/mfccnl"
steps/compute_cmvn_stats.sh data/test_mfccnl "$out/log" "$out/mfccnl"
steps/score_samediff.sh --nj 2 data/test_mfccnl data/test/samediff_words \
  "$out/samediff_dtw_nolifter"
OUT=$out python - <<'PY'
import json, os
for name in ("exp/mfcc/eval/samediff_dtw", os.environ["OUT"] + "/samediff_dtw_nolifter",
             "exp/fbank/eval/samediff_dtw"):
    r = json.load(open(f"{name}/results.json"))
    print(name, round(r["ap"], 3), r["ap_ci"], "diff-spk", round(r["ap_diff_speaker"], 3),
          r["ap_diff_speaker_ci"])
PY
python "$SPEECHSSL_ROOT/bench/paired_samediff.py" data/test_mfcc data/test_mfccnl \
  data/test/samediff_words
