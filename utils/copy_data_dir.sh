#!/usr/bin/env bash
# Usage: utils/copy_data_dir.sh <src-dir> <dest-dir>
# The logic lives in speechssl.bin.copy_data_dir (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.copy_data_dir "$@"
