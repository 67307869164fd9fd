#!/usr/bin/env bash
# Copy part of a data dir, with Kaldi's command lines:
#   utils/subset_data_dir.sh <src-dir> <num-utt> <dest-dir>            (spread evenly)
#   utils/subset_data_dir.sh --first|--last <src-dir> <num-utt> <dest-dir>
#   utils/subset_data_dir.sh --per-spk <src-dir> <num-utt-per-spk> <dest-dir>
#   utils/subset_data_dir.sh --utt-list <file> <src-dir> <dest-dir>
#   utils/subset_data_dir.sh --spk-list <file> <src-dir> <dest-dir>
# The logic lives in speechssl.bin.subset_data_dir.
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
set -euo pipefail

usage="Usage: $0 [--first|--last|--per-spk] <src-dir> <num-utt> <dest-dir> | --utt-list|--spk-list <file> <src-dir> <dest-dir>"
case "${1:-}" in
  --utt-list|--spk-list)
    [ $# -eq 4 ] || { echo "$usage" >&2; exit 1; }
    exec python -m speechssl.bin.subset_data_dir "$1" "$2" "$3" "$4" ;;
  --first|--last|--per-spk)
    [ $# -eq 4 ] || { echo "$usage" >&2; exit 1; }
    exec python -m speechssl.bin.subset_data_dir "$1" "$3" "$2" "$4" ;;
  *)
    [ $# -eq 3 ] || { echo "$usage" >&2; exit 1; }
    exec python -m speechssl.bin.subset_data_dir --num "$2" "$1" "$3" ;;
esac
