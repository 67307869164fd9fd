#!/usr/bin/env bash
# Kaldi's utils/prepare_lang.sh: a lang dir from a dict dir (lexicon.txt or lexiconp.txt,
# silence_phones.txt, nonsilence_phones.txt, optional_silence.txt, extra_questions.txt).
# Writes <lang-dir>/{phones.txt,words.txt,L.fst,L_disambig.fst,topo,oov.txt,oov.int,phones/}
# (FSTs in OpenFst binary, readable by Kaldi), all at once: a failure leaves no lang dir.
# Phones are word-position-dependent by default (p_B p_E p_I p_S), as in Kaldi.
# The logic lives in speechssl.bin.prepare_lang (speechssl.asr.lang).
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
position_dependent_phones=true  # word-position-dependent phones
sil_prob=0.5                    # optional silence between words; 0: none
num_sil_states=5                # HMM states of silence phones (utils/gen_topo.pl)
num_nonsil_states=3             # HMM states of the other phones
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <dict-dir> <oov-word> <tmp-dir> <lang-dir>
e.g.: $0 data/local/dict '<unk>' data/local/lang data/lang
<oov-word> must be in the lexicon; transcripts' unknown words are mapped to it.
Options:
  --position-dependent-phones <true|false> # phones marked _B _E _I _S ($position_dependent_phones)
  --sil-prob <p>                           # optional silence probability ($sil_prob)
  --num-sil-states <n>                     # states of silence HMMs ($num_sil_states)
  --num-nonsil-states <n>                  # states of other HMMs ($num_nonsil_states)"
# shellcheck source=parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
case "$position_dependent_phones" in
  true|false) ;;
  *) echo "$0: --position-dependent-phones must be true or false" >&2; exit 1 ;;
esac
[ -d "$1" ] || { echo "$0: no such dict dir: $1" >&2; exit 1; }

python -m speechssl.bin.prepare_lang --position-dependent-phones "$position_dependent_phones" \
  --sil-prob "$sil_prob" --num-sil-states "$num_sil_states" \
  --num-nonsil-states "$num_nonsil_states" "$1" "$2" "$3" "$4"
log "succeeded preparing $4 from $1"
