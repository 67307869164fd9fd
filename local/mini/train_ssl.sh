#!/usr/bin/env bash
# Self-supervised training of one method of a list (egs/mini stage 2), so that a job
# runner can train several side by side: steps/train_ssl.sh conf/<method>.yaml <data> exp/<method>.
set -euo pipefail

# Begin configuration section.
cmd=run_local.sh   # job runner of steps/train_ssl.sh
num_threads=1      # torch threads of each training
# End configuration section.

help_message="Usage: $0 [options] <n> '<method>:<data-dir> ...'
Trains the n-th method of the list (1-based: a job runner's JOB) on its data dir, with
conf/<method>.yaml into exp/<method>.
e.g.: $0 2 'apc:data/train_mfcc vicreg:data/train'   # trains vicreg
Options:
  --cmd <job-runner>   # for steps/train_ssl.sh ($cmd)
  --num-threads <n>    # torch threads of the training ($num_threads)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
job=$(nth_word "$1" "$2")   # an assignment: set -e sees a failure
method=${job%%:*}
data=${job#*:}
if [ -z "$method" ] || [ "$data" = "$job" ]; then
  echo "$0: expected <method>:<data-dir>, got '$job'" >&2
  exit 1
fi
steps/train_ssl.sh --cmd "$cmd" --num-threads "$num_threads" \
  "conf/$method.yaml" "$data" "exp/$method"
