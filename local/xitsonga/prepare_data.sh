#!/usr/bin/env bash
# ZeroSpeech 2015 Xitsonga data dir for the AWE recipes (python -m
# speechssl.bin.prepare_awe_corpus): <data-dir>/xitsonga, all 24 speakers (training and
# evaluation both use the whole set, as in van Staden & Kamper 2021), with segments (the
# speech regions of the word alignments: a new utterance at every gap), words.ctm and
# samediff_words (>= 50 frames, >= 5 characters).
set -euo pipefail

# Begin configuration section.
min_word_frames=50    # same-different words: at least this many 10 ms frames ...
min_word_chars=5      # ... and this many characters
utd_pairs=            # discovered pairs '<cluster> <file> <chan> <start> <end> <file> ...'
                      # (10 ms frames), e.g. zs_tsonga.fdlps.0.925.pairs.v0: written as
                      # xitsonga/utd_pairs
# End configuration section.

help_message="Usage: $0 [options] <xitsonga-wav-dir> <alignments> <data-dir>
e.g.: $0 /data/zerospeech2015/xitsonga_wavs /data/zerospeech2015/xitsonga.wrd data
<xitsonga-wav-dir> holds nchlt_tso_NNNg_NNNN.wav (e.g. nchlt_tso_001m_0007.wav); <alignments>
has lines '<file> <start> <end> <word>' in seconds (e.g. 'nchlt_tso_001m_0007 0.77 1.27 ndlela').
Options:
  --min-word-frames <n>    # same-different words: frames ($min_word_frames)
  --min-word-chars <n>     # same-different words: characters ($min_word_chars)
  --utd-pairs <file>       # UTD pairs to convert into xitsonga/utd_pairs (none)"

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
[ -d "$root" ] || { echo "$0: no such directory: $root (the Xitsonga wavs, nchlt_tso_*.wav; set --xitsonga)" >&2; exit 1; }
[ -f "$alignments" ] || { echo "$0: no such file: $alignments (the word alignments; set --alignments)" >&2; exit 1; }
opts=(--min-word-frames "$min_word_frames" --min-word-chars "$min_word_chars")
if [ -n "$utd_pairs" ]; then
  [ -f "$utd_pairs" ] || { echo "$0: no such file: $utd_pairs (--utd-pairs)" >&2; exit 1; }
  opts+=(--utd-pairs "$utd_pairs")
fi

mkdir -p "$data/log"
python -m speechssl.bin.prepare_awe_corpus --corpus xitsonga "${opts[@]}" \
  "$root" "$alignments" "$data" 2> >(tee "$data/log/prepare_xitsonga.log" >&2)
[ -s "$data/xitsonga/segments" ] || { echo "$0: no $data/xitsonga/segments" >&2; exit 1; }
log "succeeded preparing $data/xitsonga from $root"
