# shellcheck shell=bash
# Sourced by a step, after its arguments are checked and before it reads or writes <dir>:
#   . "$SPEECHSSL_ROOT/utils/lock_dir.sh" <dir>
# Takes an exclusive lock on <dir> (the file <dir>/.lock) for as long as the step runs, or
# fails at once naming the step that holds it, so two steps never write one dir together.
# The lock is flock(2) on a descriptor of the step's shell (see speechssl.bin.lock_dir):
# the kernel releases it when the step ends, however it ends. The step's foreground
# commands inherit the descriptor while they run (so a job runner still running after its
# step was killed keeps the dir locked until its jobs end); the jobs themselves do not
# (the runner, like Python's subprocess, closes descriptors it does not pass on).
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "$0: utils/lock_dir.sh needs one existing directory, got: $*" >&2
  exit 1
fi
# exit, not return: a step must not go on without its lock, set -e or not.
exec {speechssl_lock_fd}<> "$1/.lock" || exit 1
python -m speechssl.bin.lock_dir --fd "$speechssl_lock_fd" --pid $$ --script "$0" "$1" || exit 1
