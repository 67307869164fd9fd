#!/usr/bin/env bash
# The representations of one trained method for several data sets (egs/mini stage 3, one
# job of a job runner per method, so that $nj methods are extracted side by side, each
# with one process: the start-ups of the processes overlap the other method's work).
set -euo pipefail

# Begin configuration section.
cmd=run_local.sh   # job runner of steps/extract_ssl.sh
layer=             # steps/extract_ssl.sh --layer (empty: the method's choice; all: stacked)
suffix=            # appended to the data dir names: data/<set>_<method><suffix>
# End configuration section.

help_message="Usage: $0 [options] <n> '<set> ...' '<method>:<src-data-dir> ...'
Writes data/<set>_<method> for the n-th method of the list (1-based: a job runner's JOB)
and each set, from exp/<method> and its src data dir, in which SET stands for the set.
e.g.: $0 2 'test dev' 'apc:data/SET_mfcc vicreg:data/SET'   # vicreg on test and dev
Options:
  --cmd <job-runner>   # for steps/extract_ssl.sh ($cmd)
  --layer <k|all>      # which layer (default: the method's choice)
  --suffix <text>      # data/<set>_<method><suffix>, e.g. _layers ($suffix)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
job=$(nth_word "$1" "$3")   # an assignment: set -e sees a failure
method=${job%%:*}
src=${job#*:}
if [ -z "$method" ] || [ "$src" = "$job" ] || [[ "$src" != *SET* ]]; then
  echo "$0: expected <method>:<src-data-dir with SET>, got '$job'" >&2
  exit 1
fi
for x in $2; do
  steps/extract_ssl.sh --cmd "$cmd" --nj 1 --layer "$layer" "exp/$method" "${src//SET/$x}" \
    "data/${x}_$method$suffix"
done
