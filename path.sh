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

# eval_opt DATA-DIR NAME DEFAULT: the value of the line --NAME=VALUE in DATA-DIR/eval_opts,
# or DEFAULT without one. eval_opts holds how evaluations read the dir's features (speaker
# CMVN, deltas): steps/make_feats.sh and steps/extract_ssl.sh write it, the data-dir tools
# carry it, and the frame-level evaluation steps take their defaults from it.
eval_opt() {
  local value=
  if [ -f "$1/eval_opts" ]; then
    value=$(sed -n "s/^--$2=//p" "$1/eval_opts" | tail -n 1)
  elif [ -f "$1/feats.scp" ]; then
    # Features made before eval_opts existed: say so rather than silently reading MFCC
    # without CMVN and deltas.
    echo "${0##*/}: WARNING: no $1/eval_opts: --$2 defaults to $3 (re-run the step that" \
         "made the features, or give --$2)" >&2
  fi
  echo "${value:-$3}"
}

# check_cmvn DATA-DIR VALUE: --cmvn is true or false, and true needs DATA-DIR/cmvn.scp.
check_cmvn() {
  case "$2" in
    true|false) ;;
    *) echo "${0##*/}: --cmvn must be true or false, got '$2'" >&2; return 1 ;;
  esac
  if [ "$2" = true ] && [ ! -f "$1/cmvn.scp" ]; then
    echo "${0##*/}: --cmvn true needs $1/cmvn.scp (run steps/compute_cmvn_stats.sh $1)" >&2
    return 1
  fi
}

# nth_word N 'WORD ...': the N-th word of the list (1-based, a job runner's JOB), or an
# error naming the list when N is not 1 to its length.
nth_word() {
  local nth_word_list   # a name of its own: shellcheck checks names across sourced files
  read -r -a nth_word_list <<< "$2"
  if [[ ! "$1" =~ ^[1-9][0-9]*$ ]] || [ "$1" -gt "${#nth_word_list[@]}" ]; then
    echo "${0##*/}: <n> must be 1 to ${#nth_word_list[@]} (the list '$2'), got '$1'" >&2
    return 1
  fi
  echo "${nth_word_list[$1 - 1]}"
}

# best_lmwt DECODE-DIR: the LM weight of the decode dir's best WER (steps/score_wer.sh's
# best_wer line ends in <decode-dir>/wer_<lmwt>), to decode the test set at.
best_lmwt() {
  if [ ! -f "$1/best_wer" ]; then
    echo "${0##*/}: no $1/best_wer (run steps/decode.sh on it first)" >&2
    return 1
  fi
  sed 's/.*wer_//' "$1/best_wer"
}

# check_same_eval_opts TRAIN-DIR TEST-DIR: fail when both dirs have an eval_opts and they
# differ (the features were made differently; train and test must be read alike).
check_same_eval_opts() {
  if [ -f "$1/eval_opts" ] && [ -f "$2/eval_opts" ] && ! cmp -s "$1/eval_opts" "$2/eval_opts"; then
    echo "${0##*/}: $1/eval_opts and $2/eval_opts differ: were the features made the same way?" >&2
    return 1
  fi
}
