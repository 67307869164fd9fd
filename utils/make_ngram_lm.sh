#!/usr/bin/env bash
# Estimate an n-gram language model from transcripts (a Kaldi text file: utterance id, then
# words) over a lang dir's vocabulary, and write it as an ARPA file (gzipped if the name
# ends in .gz): interpolated modified Kneser-Ney (Chen & Goodman) or Witten-Bell, backoff
# weights so that every history's distribution sums to 1. Words not in the vocabulary are
# mapped to the OOV word (<lang-dir>/oov.txt) and counted in the log. For corpora without
# a published LM (egs/mini: the training transcripts). Then utils/format_lm.sh makes G.fst.
# The logic lives in speechssl.bin.make_ngram_lm (speechssl.asr.lm).
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
order=3           # n-gram order
method=kn         # kn (interpolated modified Kneser-Ney) or wb (Witten-Bell)
kaldi_text=true   # false: <text> holds plain sentences, no utterance ids
oov=              # empty: <lang-dir>/oov.txt (or <unk> with a words.txt)
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <text> <lang-dir|words.txt|lexicon> <arpa-out>
e.g.: $0 --order 3 data/train/text data/lang data/local/lm/train.3gram.arpa.gz
Options:
  --order <n>              # n-gram order ($order)
  --method <kn|wb>         # Kneser-Ney or Witten-Bell ($method)
  --kaldi-text <true|false> # text has utterance ids first ($kaldi_text)
  --oov <word>             # word for out-of-vocabulary words (default: oov.txt)"
# shellcheck source=parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
[ -f "$1" ] || { echo "$0: no such text file: $1" >&2; exit 1; }
[ -e "$2" ] || { echo "$0: no such lang dir, words.txt or lexicon: $2" >&2; exit 1; }
mkdir -p "$(dirname "$3")"

python -m speechssl.bin.make_ngram_lm --order "$order" --method "$method" \
  --kaldi-text "$kaldi_text" --oov "$oov" "$1" "$2" "$3"
log "succeeded writing the $order-gram LM $3"
