# shellcheck shell=bash
# Sourced by the download scripts of local/librispeech.
# fetch <url> <file>: download <url> to <file> through <file>.part, resuming a partial
# <file>.part; returns non-zero on failure (callers say what to do instead).
fetch() {
  if command -v wget > /dev/null; then
    wget --continue --no-verbose -O "$2.part" "$1" || return 1
  elif command -v curl > /dev/null; then
    curl --fail --location --continue-at - --output "$2.part" "$1" || return 1
  else
    echo "$0: neither wget nor curl is installed" >&2
    return 1
  fi
  mv "$2.part" "$2"
}
