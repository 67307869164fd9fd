#!/usr/bin/env bash
# VoxCeleb2 dev as the Kaldi data dir <data-dir>/voxceleb2_dev, for training without labels.
# The m4a (AAC) files are decoded once with ffmpeg to 16 kHz wav under <wav-dir>, mirroring
# dev/aac/, as WeSpeaker and sslsv do.  Kaldi puts an ffmpeg pipe in wav.scp instead
# ("ffmpeg -nostdin -loglevel error -i <m4a> -ac 1 -ar 16000 -f wav - |"), which suits a
# recipe that reads the audio once to make features; training here reads every utterance
# again each epoch, and a pipe would cost a decode each time (57 ms of CPU for an 8 s file,
# measured), some 17 CPU hours per epoch.  Decoding once costs that once (about an hour
# with --nj 16, estimated) and the disk for ~2,360 h of 16-bit audio: about 270 GB.
# Re-running keeps the wavs already decoded (each appears under its name only when complete).
set -euo pipefail

nj=4   # parallel ffmpeg decoders (and threads reading wav headers)

help_message="Usage: $0 [options] <voxceleb2-root> <wav-dir> <data-dir>
e.g.: $0 --nj 16 /corpora/voxceleb2 wav/voxceleb2 data
  <voxceleb2-root> holds dev/aac/id0NNNN/<YouTube id>/NNNNN.m4a; needs ffmpeg.
Options:
  --nj N     parallel decoders (default: $nj)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
root=$1
wav_dir=$2
data=$3

if ! command -v ffmpeg > /dev/null; then
  echo "$0: ffmpeg not found: VoxCeleb2's m4a audio is decoded with it" \
       "(install it, e.g. apt-get install ffmpeg or conda install ffmpeg)" >&2
  exit 1
fi
mkdir -p "$data/log"
python -m speechssl.bin.prepare_voxceleb voxceleb2 --nj "$nj" "$root" "$wav_dir" "$data" 2>&1 \
  | tee "$data/log/prepare_voxceleb2.log"
utils/validate_data_dir.sh --no-text "$data/voxceleb2_dev"
echo "$0: succeeded; $(wc -l < "$data/voxceleb2_dev/utt2spk") utterances in $data/voxceleb2_dev"
