#!/usr/bin/env bash
# Data dirs for the AWE recipes (python -m speechssl.bin.prepare_awe_corpus), with segments
# (the speech regions of the word alignments: a new utterance at every gap, SIL or SPN),
# words.ctm and samediff_words (>= 50 frames, >= 5 characters):
#   buckeye:  <data-dir>/{devpart1,devpart2,zs}, van Staden & Kamper's train, validation
#             and test speakers;
#   xitsonga: <data-dir>/xitsonga, all 24 speakers of ZeroSpeech 2015 (training and
#             evaluation both use the whole set, as in van Staden & Kamper 2021).
set -euo pipefail

# Begin configuration section.
corpus=               # buckeye or xitsonga
min_word_frames=50    # same-different words: at least this many 10 ms frames ...
min_word_chars=5      # ... and this many characters
utd_pairs=            # discovered pairs '<cluster> <file> <chan> <start> <end> <file> ...'
                      # (10 ms frames, e.g. zs_tsonga.fdlps.0.925.pairs.v0): written per
                      # set as <set>/utd_pairs
# End configuration section.

help_message="Usage: $0 --corpus buckeye|xitsonga [options] <wav-dir> <alignments> <data-dir>
e.g.: $0 --corpus buckeye /data/buckeye /data/buckeye_english.wrd data
      $0 --corpus xitsonga /data/zerospeech2015/xitsonga_wavs /data/zerospeech2015/xitsonga.wrd data
<wav-dir> holds the unpacked corpus: Buckeye sNN/sNNMMx.wav (e.g. s01/s0101a.wav), Xitsonga
nchlt_tso_NNNg_NNNN.wav; <alignments> has lines '<file> <start> <end> <word>' in seconds
(e.g. 's0101a 32.217 32.554 okay').
Options:
  --corpus <name>          # buckeye or xitsonga (required)
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
case $corpus in
  buckeye) sets="devpart1 devpart2 zs"; layout="the Buckeye wavs, sNN/sNNMMx.wav" ;;
  xitsonga) sets="xitsonga"; layout="the Xitsonga wavs, nchlt_tso_*.wav" ;;
  *) echo "$0: --corpus must be buckeye or xitsonga, got '$corpus'" >&2; exit 1 ;;
esac
[ -d "$root" ] || { echo "$0: no such directory: $root ($layout; set --$corpus)" >&2; exit 1; }
[ -f "$alignments" ] || { echo "$0: no such file: $alignments (the word alignments; set --alignments)" >&2; exit 1; }

opts=(--min-word-frames "$min_word_frames" --min-word-chars "$min_word_chars")
if [ -n "$utd_pairs" ]; then
  [ -f "$utd_pairs" ] || { echo "$0: no such file: $utd_pairs (--utd-pairs)" >&2; exit 1; }
  opts+=(--utd-pairs "$utd_pairs")
fi

mkdir -p "$data/log"
python -m speechssl.bin.prepare_awe_corpus --corpus "$corpus" "${opts[@]}" \
  "$root" "$alignments" "$data" 2> >(tee "$data/log/prepare_$corpus.log" >&2)
for x in $sets; do
  [ -s "$data/$x/segments" ] || { echo "$0: no $data/$x/segments" >&2; exit 1; }
done
log "succeeded preparing $(printf '%s/{%s}' "$data" "${sets// /,}") from $root"
