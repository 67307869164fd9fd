#!/usr/bin/env bash
# Recorded noises and room impulse responses for training augmentation, as Kaldi data
# dirs: from --musan, <data-dir>/musan_noise, musan_music and musan_speech (the babble
# talkers); from --rirs, <data-dir>/rirs (RIRS_NOISES' simulated small and medium rooms, as
# Kaldi's x-vector recipes use).  The SNR ranges they are mixed at are in the training
# config (conf/vicreg.yaml, data.augment.noises).
set -euo pipefail

nj=4      # threads reading wav headers
musan=    # MUSAN root: music/ noise/ speech/
rirs=     # RIRS_NOISES root: simulated_rirs/

help_message="Usage: $0 [options] <data-dir>
e.g.: $0 --musan /corpora/musan --rirs /corpora/RIRS_NOISES data
Options:
  --musan DIR   MUSAN root, with music/, noise/ and speech/<source>/*.wav
  --rirs DIR    RIRS_NOISES root, with simulated_rirs/{small,medium}room/rir_list
  --nj N        threads reading wav headers (default: $nj)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 1 ] || { [ -z "$musan" ] && [ -z "$rirs" ]; }; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
data=$1

opts=(--nj "$nj")
dirs=()
if [ -n "$musan" ]; then opts+=(--musan "$musan"); dirs+=(musan_noise musan_music musan_speech); fi
if [ -n "$rirs" ]; then opts+=(--rirs "$rirs"); dirs+=(rirs); fi
mkdir -p "$data/log"
python -m speechssl.bin.prepare_noise_lists "${opts[@]}" "$data" 2>&1 \
  | tee "$data/log/prepare_noise_lists.log"
for x in "${dirs[@]}"; do
  utils/validate_data_dir.sh --no-text "$data/$x"
done
echo "$0: succeeded: ${dirs[*]/#/$data/}"
