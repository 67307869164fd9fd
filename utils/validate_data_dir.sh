#!/usr/bin/env bash
# Usage: utils/validate_data_dir.sh [--no-text] [--no-wav] [--need-feats] [--ignore <file>]...
#        <data-dir>
# The logic lives in speechssl.bin.validate_data_dir (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.validate_data_dir "$@"
