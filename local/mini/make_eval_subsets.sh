#!/usr/bin/env bash
# Evaluation sets from the training speakers: <eval-dir> (up to 20 utterances per speaker)
# trains the probes, the AWEs and the SV backends; <heldout-dir> (5 other utterances per
# speaker) tests the speaker probe. With fewer than 25 utterances for some speaker (the tiny
# corpus has 5), 1 is held out and the rest, up to 20, are for evaluation. The utterances
# are chosen once, on <src-dir>; each <featurized-dir> (the same set with features, e.g.
# data/train_fbank) is cut to exactly those utterances into <featurized-dir>'s name with
# the suffix replaced, e.g. data/train_fbank -> data/train_eval_fbank, data/train_heldout_fbank.
set -euo pipefail

# Begin configuration section.
eval_per_spk=20
heldout_per_spk=5
# End configuration section.

help_message="Usage: $0 [options] <src-dir> <eval-dir> <heldout-dir> [<featurized-dir> ...]
e.g.: $0 data/train data/train_eval data/train_heldout data/train_fbank data/train_mfcc
Options:
  --eval-per-spk <n>       # evaluation utterances per speaker, at most ($eval_per_spk)
  --heldout-per-spk <n>    # held-out utterances per speaker ($heldout_per_spk)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -lt 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
src=$1
eval_dir=$2
heldout_dir=$3
shift 3

# The smallest speaker decides: awk reads all of spk2utt (`sort | head` would die of
# SIGPIPE under pipefail on many speakers).
min_utts=$(awk 'NR == 1 || NF - 1 < m {m = NF - 1} END {print m}' "$src/spk2utt")
if [ "$min_utts" -lt $((heldout_per_spk + eval_per_spk)) ]; then
  heldout_per_spk=1
  eval_per_spk=$(( min_utts - 1 < eval_per_spk ? min_utts - 1 : eval_per_spk ))
fi
if [ "$eval_per_spk" -lt 1 ]; then
  echo "$0: a speaker of $src has $min_utts utterance(s): need 2 (1 to evaluate, 1 held out)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
utils/subset_data_dir.sh --per-spk "$src" "$eval_per_spk" "$eval_dir"
utils/filter_scp.sh --exclude "$eval_dir/utt2spk" "$src/utt2spk" > "$tmp/rest.utts"
utils/subset_data_dir.sh --utt-list "$tmp/rest.utts" "$src" "$tmp/rest"
utils/subset_data_dir.sh --per-spk "$tmp/rest" "$heldout_per_spk" "$heldout_dir"

src_name=$(basename "$src")
for feats in "$@"; do
  suffix=${feats##*/"$src_name"}
  if [ "$suffix" = "$feats" ]; then
    echo "$0: $feats is not named like $src_name<suffix> (e.g. ${src_name}_fbank)" >&2
    exit 1
  fi
  for x in "$eval_dir" "$heldout_dir"; do
    # An utterance without features (skipped by make_fbank.sh) is said, not replaced.
    utils/filter_scp.sh "$feats/utt2spk" "$x/utt2spk" > "$tmp/list"
    missing=$(( $(wc -l < "$x/utt2spk") - $(wc -l < "$tmp/list") ))
    if [ "$missing" -gt 0 ]; then
      log "$missing utterance(s) of $x are not in $feats: $x$suffix goes without them"
    fi
    utils/subset_data_dir.sh --utt-list "$tmp/list" "$feats" "$x$suffix"
  done
done
log "$eval_dir and $heldout_dir: $eval_per_spk and $heldout_per_spk utterances per speaker"
