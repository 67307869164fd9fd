#!/usr/bin/env bash
# Kaldi data dirs for the LibriSpeech subsets under <LibriSpeech-dir>: <data-dir>/<subset>
# with - replaced by _ (data/train_clean_100, data/dev_clean, ...), holding wav.scp (the
# .flac files, read directly), text, utt2spk and spk2utt (speaker = reader), spk2gender
# and utt2dur. The logic lives in speechssl.corpus.librispeech.
set -euo pipefail

# Configuration (each one is an option).
subsets=   # e.g. "train-clean-100 dev-clean"; empty: every subset present

help_message="Usage: $0 [options] <LibriSpeech-dir> <data-dir>
e.g.: $0 /data/LibriSpeech data
<LibriSpeech-dir> is the folder the openslr.org/12 tarballs unpack to (SPEAKERS.TXT,
train-clean-100/<reader>/<chapter>/..., dev-clean/...).
Options:
  --subsets '<subset> ...'   only these subsets (default: every one present)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
corpus=$1
data=$2

mkdir -p "$data/log"
# stdout: the data dirs written, one a line; stderr: the log.
python -m speechssl.bin.prepare_librispeech --subsets "$subsets" "$corpus" "$data" \
  > "$data/log/librispeech_dirs" 2> >(tee "$data/log/prepare_librispeech.log" >&2)
while read -r x; do
  utils/validate_data_dir.sh "$x"
done < "$data/log/librispeech_dirs"
echo "$0: succeeded; log: $data/log/prepare_librispeech.log"
