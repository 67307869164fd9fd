# shellcheck shell=bash
# Sourced by every recipe and tool: puts the speechssl package, its virtual environment
# and utils/ within reach.  Recipes link to this file, so resolve our real location.
SPEECHSSL_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
export SPEECHSSL_ROOT
if [ -x "$SPEECHSSL_ROOT/.venv/bin/python" ]; then
  export PATH="$SPEECHSSL_ROOT/.venv/bin:$PATH"
fi
export PATH="$SPEECHSSL_ROOT/utils:$PATH"
export PYTHONPATH="$SPEECHSSL_ROOT/ssl${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# Kaldi tables are sorted in C order; every sort and comparison must agree.
export LC_ALL=C

# log MESSAGE: a time-stamped line naming the script and line it came from, on stderr.
log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2
}
