#!/usr/bin/env bash
# Usage: utils/gather_results.sh [--rows "fbank mfcc apc"] [--columns ...] [--charts true|false] <exp-dir> <out-dir>
# One table (results.md, results.json, a chart per column) from every
# <exp-dir>/<features>/eval/<evaluation>/results.json; prints the markdown table.
# The logic lives in speechssl.bin.gather_results (see --help).
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m speechssl.bin.gather_results "$@"
