#!/usr/bin/env bash
# Kaldi's utils/format_lm.sh: copy <lang-dir> to <out-dir> and add G.fst, the ARPA LM as an
# FST over <lang-dir>/words.txt (kaldilm's arpa2fst: #0 on backoff arcs, <s> and </s> as
# epsilons). N-grams with words not in words.txt are dropped and counted in the log; an
# ARPA file that does not parse is an error naming its line; <out-dir> appears whole or
# not at all. Use it for an LM from utils/make_ngram_lm.sh or a published ARPA file.
# The logic lives in speechssl.bin.format_lm (speechssl.asr.lm).
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

echo "$0 $*"
help_message="Usage: $0 <lang-dir> <arpa-LM> <lexicon> <out-dir>
e.g.: $0 data/lang data/local/lm/train.3gram.arpa.gz data/local/dict/lexicon.txt data/lang_test"
# shellcheck source=parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
for f in "$1/words.txt" "$1/L.fst" "$2" "$3"; do
  [ -e "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done

python -m speechssl.bin.format_lm "$1" "$2" "$3" "$4"
log "succeeded making $4/G.fst from $2"
