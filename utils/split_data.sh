#!/usr/bin/env bash
# Usage: utils/split_data.sh [--per-utt] [--ignore <file>]... <data-dir> <num-to-split>
# (writes <data-dir>/split<N>/{1..N}, or split<N>utt with --per-utt)
# The logic lives in speechssl.bin.split_data (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.split_data "$@"
