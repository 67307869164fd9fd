#!/usr/bin/env bash
# Synthesise the embedded corpus (espeak-ng): 16 kHz wavs under <wav-dir>/<spk>/ and Kaldi
# data dirs <data-dir>/{train,dev,test} with words.ctm, phones.ctm, trials (test) and
# same-different word lists (dev, test), plus <data-dir>/local/dict (lexicon, phones).
# The same seed gives the same bytes whatever --nj; re-running rewrites identical files.
set -euo pipefail

# Configuration (each one is an option: --num-speakers 12 sets num_speakers).
preset=default        # default (49 speakers x 90 utterances, 40 of dev/test speakers) or tiny (8 x 5)
nj=2                  # worker processes (one speaker at a time each)
seed=0
augment=false         # reverberation, noise, band-pass, gain; same texts and alignments
num_speakers=         # empty: the preset's value
utts_per_speaker=
utts_per_eval_speaker=   # of dev and test speakers; empty: the preset's
languages=            # comma-separated, e.g. en,de,es,fr,nl,sw,tn
min_word_dur=0.5      # same-different words: at least this many seconds ...
min_word_chars=5      # ... and this many characters

help_message="Usage: $0 [options] <wav-dir> <data-dir>
e.g.: $0 --preset tiny --nj 2 corpus data
Options:
  --preset (default|tiny)   corpus size (default: $preset)
  --nj N                    parallel workers (default: $nj)
  --seed N                  random seed (default: $seed)
  --augment (true|false)    distort the audio (default: $augment)
  --num-speakers N          override the preset's number of speakers
  --utts-per-speaker N      override the preset's utterances per speaker
  --utts-per-eval-speaker N override the preset's utterances per dev and test speaker
  --languages LIST          comma-separated language codes (en,de,es,fr,nl,sw,tn)
  --min-word-dur SECONDS    same-different word segments (default: $min_word_dur)
  --min-word-chars N        same-different word segments (default: $min_word_chars)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
wav_dir=$1
data_dir=$2

case $augment in
  true | false) ;;
  *) echo "$0: --augment must be true or false, got '$augment'" >&2; exit 1 ;;
esac

opts=(--preset "$preset" --nj "$nj" --seed "$seed"
      --min-word-dur "$min_word_dur" --min-word-chars "$min_word_chars")
[ "$augment" = true ] && opts+=(--augment)
[ -n "$num_speakers" ] && opts+=(--num-speakers "$num_speakers")
[ -n "$utts_per_speaker" ] && opts+=(--utts-per-speaker "$utts_per_speaker")
[ -n "$utts_per_eval_speaker" ] && opts+=(--utts-per-eval-speaker "$utts_per_eval_speaker")
[ -n "$languages" ] && opts+=(--languages "$languages")

mkdir -p "$data_dir/log"
python -m speechssl.bin.make_mini_corpus "${opts[@]}" "$wav_dir" "$data_dir" 2>&1 \
  | tee "$data_dir/log/make_mini_corpus.log"

for x in train dev test; do
  [ -s "$data_dir/$x/wav.scp" ] || { echo "$0: no $data_dir/$x/wav.scp" >&2; exit 1; }
done
echo "$0: succeeded; $(grep -c . "$data_dir/rejected_sentences" || true) sentences" \
  "rejected (see $data_dir/rejected_sentences)"
