#!/usr/bin/env bash
# VoxCeleb1 as Kaldi data dirs: <data-dir>/voxceleb1_dev, <data-dir>/voxceleb1_test with
# trials (VoxCeleb1-O cleaned, veri_test2.txt, in Kaldi's <enroll> <test> target|nontarget
# form), and with --extended-trials true, <data-dir>/voxceleb1 (all of VoxCeleb1) with
# trials_e and trials_h from list_test_all2.txt and list_test_hard2.txt when they are there.
# Dev and test are split by vox1_meta.csv (its Set column) when present, else by speaker id
# (test: id10270 to id10309); the log says which.
set -euo pipefail

nj=4                   # threads reading wav headers
extended_trials=false  # VoxCeleb1-E and -H (dev speakers: only when training on VoxCeleb2)

help_message="Usage: $0 [options] <voxceleb1-root> <data-dir>
e.g.: $0 --nj 8 /corpora/voxceleb1 data
  <voxceleb1-root> holds wav/idNNNNN/<YouTube id>/NNNNN.wav (or dev/wav and test/wav),
  veri_test2.txt, and optionally vox1_meta.csv, list_test_all2.txt, list_test_hard2.txt.
Options:
  --nj N                         threads reading wav headers (default: $nj)
  --extended-trials (true|false) prepare VoxCeleb1-E and -H too (default: $extended_trials)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
root=$1
data=$2

mkdir -p "$data/log"
python -m speechssl.bin.prepare_voxceleb voxceleb1 --nj "$nj" \
  --extended-trials "$extended_trials" "$root" "$data" 2>&1 \
  | tee "$data/log/prepare_voxceleb1.log"

for x in voxceleb1_dev voxceleb1_test; do
  utils/validate_data_dir.sh --no-text "$data/$x"
done
[ -s "$data/voxceleb1_test/trials" ] || { echo "$0: no $data/voxceleb1_test/trials" >&2; exit 1; }
echo "$0: succeeded; $(wc -l < "$data/voxceleb1_test/trials") VoxCeleb1-O trials"
