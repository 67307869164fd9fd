# shellcheck shell=bash
# parse_options.sh: Kaldi-style command-line options for recipes and step scripts.
#
# Source it (with no arguments) after the script has defined its defaults:
#
#     nj=4
#     use_gpu=false
#     help_message="Usage: $0 [options] <data-dir>"
#     . utils/parse_options.sh
#
# The rules are those of Kaldi's utils/parse_options.sh:
#   --foo-bar VALUE, --foo-bar=VALUE  set foo_bar, which must already be defined: an option
#                                     the script does not declare is an error, so typos fail.
#   a variable whose value is true or false only accepts true or false.
#   --config FILE                     sources FILE (bash assignments such as `nj=8`) before
#                                     any other option is applied, wherever it appears, so
#                                     options on the command line override the config file.
#   --help, -h                        print $help_message to stderr and exit 0.
#   parsing stops at the first argument that does not start with `--`, or after `--`.
# The caller's positional parameters are left holding the remaining arguments. Errors print
# "$0: ..." with the caller's name and exit 1; it works under `set -euo pipefail`.
# Internal variables start with _po_ and are unset before returning.

# Pass 1 walks the options (not the positional arguments after them) to honour --help and
# collect --config files, so that the configs are sourced before any option is applied.
_po_args=("$@")
_po_configs=()
_po_i=0
while [ "$_po_i" -lt "${#_po_args[@]}" ]; do
  case ${_po_args[_po_i]} in
    --help | -h)
      printf '%s\n' "${help_message:-}" >&2
      exit 0
      ;;
    --config=*)
      _po_configs+=("${_po_args[_po_i]#--config=}")
      _po_i=$((_po_i + 1))
      ;;
    --config)
      if [ $((_po_i + 1)) -ge "${#_po_args[@]}" ]; then
        echo "$0: option --config needs a value" >&2
        exit 1
      fi
      _po_configs+=("${_po_args[_po_i + 1]}")
      _po_i=$((_po_i + 2))
      ;;
    --) break ;;
    --*=*) _po_i=$((_po_i + 1)) ;;
    --*) _po_i=$((_po_i + 2)) ;;
    *) break ;;
  esac
done
# ${a[@]+"${a[@]}"} keeps an empty array safe under `set -u` in bash older than 4.4.
for _po_config in ${_po_configs[@]+"${_po_configs[@]}"}; do
  if [ ! -r "$_po_config" ]; then
    echo "$0: cannot read config file '$_po_config'" >&2
    exit 1
  fi
  # shellcheck disable=SC1090  # the config file is chosen by the user at run time
  . "$_po_config"
done

# Pass 2 applies the options in order and shifts them off the caller's arguments.
while [ $# -gt 0 ]; do
  case $1 in
    --)
      shift
      break
      ;;
    --*=*)
      _po_option=${1%%=*}
      _po_value=${1#*=}
      shift
      ;;
    --*)
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2
        exit 1
      fi
      _po_option=$1
      _po_value=$2
      shift 2
      ;;
    *) break ;;
  esac
  _po_name=${_po_option#--}
  _po_name=${_po_name//-/_}
  if [ "$_po_name" = config ]; then
    continue  # already sourced in pass 1
  fi
  if [[ ! $_po_name =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || [ -z "${!_po_name+x}" ]; then
    echo "$0: invalid option $_po_option" >&2
    exit 1
  fi
  case ${!_po_name} in
    true | false)
      if [ "$_po_value" != true ] && [ "$_po_value" != false ]; then
        echo "$0: expected \"true\" or \"false\": $_po_option $_po_value" >&2
        exit 1
      fi
      ;;
  esac
  if ! printf -v "$_po_name" '%s' "$_po_value"; then
    echo "$0: cannot set option $_po_option (is $_po_name read-only?)" >&2
    exit 1
  fi
done

# Kaldi's check: an empty --cmd is almost always an unset variable in the calling script.
if [ -n "${cmd+x}" ] && [ -z "$cmd" ]; then
  echo "$0: empty argument to the --cmd option" >&2
  exit 1
fi

unset _po_args _po_configs _po_config _po_i _po_option _po_value _po_name
