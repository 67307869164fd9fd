#!/usr/bin/env bash
# Usage: utils/utt2spk_to_spk2utt.sh [<utt2spk>] > <spk2utt>
# The logic lives in speechssl.bin.utt2spk_to_spk2utt (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.utt2spk_to_spk2utt "$@"
