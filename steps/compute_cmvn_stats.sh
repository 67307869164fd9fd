#!/usr/bin/env bash
# Per-speaker CMVN statistics in Kaldi's format (2 x (D+1) double matrices), as Kaldi's
# steps/compute_cmvn_stats.sh: writes <cmvn-dir>/cmvn_<set>.{ark,scp} and <data-dir>/cmvn.scp.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
cmd=run_local.sh
per_utt=false   # true: one set of stats per utterance instead of per speaker
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<cmvn-dir>]]
e.g.: $0 data/train exp/make_fbank/train fbank
<log-dir> defaults to <data-dir>/log, <cmvn-dir> to <data-dir>/data.
Options:
  --cmd <job-runner>       # how to run the job ($cmd)
  --per-utt <true|false>   # statistics per utterance instead of per speaker ($per_utt)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
logdir=${2:-$data/log}
cmvndir=${3:-$data/data}
name=$(basename "$data")
[ -d "$data" ] || { echo "$0: no such data dir: $data" >&2; exit 1; }
# One step at a time writes the data dir (e.g. make_feats replacing the feats.scp read here).
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$data"

# An earlier cmvn.scp is about to be replaced: not checked, so a stale one cannot block this.
"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text --no-wav --need-feats --ignore cmvn.scp \
  "$data"
mkdir -p "$logdir" "$cmvndir"
cmvndir=$(cd "$cmvndir" && pwd)
opts=()
if $per_utt; then opts+=(--per-utt); fi

$cmd "$logdir/cmvn_$name.log" \
  python -m speechssl.bin.compute_cmvn_stats "${opts[@]}" \
    "$data" "$cmvndir/cmvn_$name.ark" "$cmvndir/cmvn_$name.scp"

expected=$(if $per_utt; then wc -l < "$data/utt2spk"; else wc -l < "$data/spk2utt"; fi)
got=$(wc -l < "$cmvndir/cmvn_$name.scp")
if [ "$got" -ne "$expected" ]; then
  echo "$0: CMVN stats for only $got of $expected entries; see $logdir/cmvn_$name.log" >&2
  exit 1
fi
trap 'rm -f "$data/cmvn.scp.tmp"' EXIT  # a copy cut short (full disk) is not left behind
cp "$cmvndir/cmvn_$name.scp" "$data/cmvn.scp.tmp"
mv "$data/cmvn.scp.tmp" "$data/cmvn.scp"
log "succeeded creating CMVN stats for $name"
