#!/usr/bin/env bash
# Usage: utils/fix_data_dir.sh <data-dir>   (originals are kept in <data-dir>/.backup)
# The logic lives in speechssl.bin.fix_data_dir (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.fix_data_dir "$@"
