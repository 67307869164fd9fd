#!/usr/bin/env bash
# The dict dir of LibriSpeech's published lexicon, as Kaldi's egs/librispeech/s5
# local/prepare_dict.sh with --stage 3 (the lexicon downloaded, no G2P):
# <dict-dir>/{lexicon.txt,silence_phones.txt,optional_silence.txt,nonsilence_phones.txt,
# extra_questions.txt}; lexicon.txt is librispeech-lexicon.txt plus !SIL SIL,
# <SPOKEN_NOISE> SPN and <UNK> SPN; each nonsilence line is a base phone and its stress
# variants (AA AA0 AA1 AA2). The logic lives in speechssl.corpus.librispeech_dict.
set -euo pipefail

help_message="Usage: $0 <lm-dir> <dict-dir>
e.g.: $0 corpus/lm data/local/dict
<lm-dir> holds librispeech-lexicon.txt of openslr.org/11 (local/librispeech/download_lm.sh)."

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
lm_dir=$1
dir=$2

mkdir -p "$(dirname "$dir")/log"
python -m speechssl.bin.prepare_librispeech_dict "$lm_dir/librispeech-lexicon.txt" "$dir" \
  2>&1 | tee "$(dirname "$dir")/log/prepare_dict.log"
echo "$0: succeeded: $dir"
