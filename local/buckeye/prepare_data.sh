#!/usr/bin/env bash
# Buckeye data dirs for the AWE recipes (python -m speechssl.bin.prepare_awe_corpus):
# <data-dir>/{devpart1,devpart2,zs} (van Staden & Kamper's train, validation and test
# speakers) with segments (the speech regions of the word alignments: a new utterance at
# every gap, SIL or SPN), words.ctm and samediff_words (>= 50 frames, >= 5 characters).
set -euo pipefail

# Begin configuration section.
min_word_frames=50    # same-different words: at least this many 10 ms frames ...
min_word_chars=5      # ... and this many characters
utd_pairs=            # discovered pairs '<cluster> <file> <chan> <start> <end> <file> ...'
                      # (10 ms frames): written per set as <set>/utd_pairs
# End configuration section.

help_message="Usage: $0 [options] <buckeye-dir> <alignments> <data-dir>
e.g.: $0 /data/buckeye /data/buckeye_english.wrd data
<buckeye-dir> holds the unpacked corpus, sNN/sNNMMx.wav (e.g. s01/s0101a.wav); <alignments>
has lines '<file> <start> <end> <word>' in seconds (e.g. 's0101a 32.217 32.554 okay').
Options:
  --min-word-frames <n>    # same-different words: frames ($min_word_frames)
  --min-word-chars <n>     # same-different words: characters ($min_word_chars)
  --utd-pairs <file>       # UTD pairs to convert into each set's utd_pairs (none)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
root=$1
alignments=$2
data=$3
[ -d "$root" ] || { echo "$0: no such directory: $root (the Buckeye wavs, sNN/sNNMMx.wav; set --buckeye)" >&2; exit 1; }
[ -f "$alignments" ] || { echo "$0: no such file: $alignments (the word alignments; set --alignments)" >&2; exit 1; }

opts=(--min-word-frames "$min_word_frames" --min-word-chars "$min_word_chars")
if [ -n "$utd_pairs" ]; then
  [ -f "$utd_pairs" ] || { echo "$0: no such file: $utd_pairs (--utd-pairs)" >&2; exit 1; }
  opts+=(--utd-pairs "$utd_pairs")
fi

mkdir -p "$data/log"
python -m speechssl.bin.prepare_awe_corpus --corpus buckeye "${opts[@]}" \
  "$root" "$alignments" "$data" 2> >(tee "$data/log/prepare_buckeye.log" >&2)
for x in devpart1 devpart2 zs; do
  [ -s "$data/$x/segments" ] || { echo "$0: no $data/$x/segments" >&2; exit 1; }
done
log "succeeded preparing $data/{devpart1,devpart2,zs} from $root"
