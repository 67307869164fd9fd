#!/usr/bin/env bash
# egs/mini on two corpus seeds, side by side: each seed's whole recipe (the corpus, its
# split and every model change with the seed) in <work-dir>/seed<N>, then
# bench/compare_results.py on the two results tables: per-cell differences, and which
# claims of the first seed (intervals apart) hold on the second.  Not a test: about 15
# minutes of a 2-core machine per seed.  A finished seed is not run again.
#   bench/compare_seeds.sh --seeds "0 1" /tmp/seeds
#   bench/compare_seeds.sh --reuse 0:egs/mini /tmp/seeds   # seed 0 from make demo's run
set -euo pipefail

seeds="0 1"
reuse=        # <seed>:<recipe dir> whose exp/results is that seed's (e.g. 0:egs/mini)
run_opts=     # more options of run.sh, e.g. "--nj 4"

ROOT="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
. "$ROOT/path.sh"
help_message="Usage: $0 [--seeds '<a> <b>'] [--reuse <seed>:<dir>] [--run-opts '<opts>'] <work-dir>"
. "$ROOT/utils/parse_options.sh"
if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
work=$(mkdir -p "$1" && cd "$1" && pwd)
read -r -a seed_list <<< "$seeds"
[ ${#seed_list[@]} -eq 2 ] || { echo "$0: --seeds takes two seeds, got '$seeds'" >&2; exit 1; }

results_of() {  # results_of <seed>: the seed's results.json, running the recipe if needed
  local dir=$work/seed$1
  if [ -n "$reuse" ] && [ "${reuse%%:*}" = "$1" ]; then
    dir=${reuse#*:}
    grep -q "\"seed\": $1," "$dir/data/corpus_config.json" \
      || { echo "$0: $dir's corpus is not of seed $1" >&2; exit 1; }
  elif [ ! -f "$dir/exp/results/results.json" ]; then
    mkdir -p "$dir"
    cp "$ROOT"/egs/mini/{run.sh,cmd.sh} "$dir/"
    cp -r "$ROOT/egs/mini/conf" "$dir/"
    for x in local path.sh steps utils; do ln -sfn "$ROOT/$x" "$dir/$x"; done
    log "seed $1: egs/mini in $dir (log: $dir/run.log)"
    # shellcheck disable=SC2086  # $run_opts: several words
    (cd "$dir" && ./run.sh --seed "$1" $run_opts) > "$dir/run.log" 2>&1 \
      || { echo "$0: seed $1 failed; see $dir/run.log" >&2; exit 1; }
  fi
  echo "$dir/exp/results/results.json"
}

first=$(results_of "${seed_list[0]}")
second=$(results_of "${seed_list[1]}")
python "$ROOT/bench/compare_results.py" --names "seed${seed_list[0]},seed${seed_list[1]}" \
  --json "$work/comparison.json" "$first" "$second" | tee "$work/comparison.txt"
