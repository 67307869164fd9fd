#!/usr/bin/env bash
# The CPC phone and speaker classification protocol (van den Oord et al. 2018) from the
# files its authors distribute: <train-dir> and <test-dir> are the utterances of
# train_split.txt and test_split.txt (subsets of train-clean-100; the same 251 readers),
# each with phone_ali (one of 41 classes per 10 ms frame, from converted_aligned_phones.txt).
# The logic lives in speechssl.corpus.cpc_protocol.
set -euo pipefail

# Configuration (each one is an option).
num_classes=41

help_message="Usage: $0 [options] <cpc-labels-dir> <train-clean-100-data-dir> <train-dir> <test-dir>
e.g.: $0 /data/cpc_labels data/train_clean_100 data/cpc_train data/cpc_test
<cpc-labels-dir> holds converted_aligned_phones.txt, train_split.txt and test_split.txt
(CPC_audio's LibriSpeech100_labels_split, as used by S3PRL's phone_linear task).
Options:
  --num-classes N   labels must be 0 .. N-1 (default: $num_classes)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 4 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
labels=$1
corpus=$2
train=$3
test=$4

mkdir -p "$(dirname "$train")/log"
python -m speechssl.bin.import_cpc_protocol --num-classes "$num_classes" \
  "$labels" "$corpus" "$train" "$test" 2>&1 \
  | tee "$(dirname "$train")/log/import_cpc_protocol.log"
for x in "$train" "$test"; do
  utils/validate_data_dir.sh "$x"
  [ -s "$x/phone_ali" ] || { echo "$0: no $x/phone_ali" >&2; exit 1; }
done
echo "$0: succeeded"
