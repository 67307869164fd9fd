#!/usr/bin/env bash
# Download LibriSpeech subsets from openslr.org/12, check their MD5 sums (as published on
# that page) and unpack them into <dest-dir>, giving <dest-dir>/LibriSpeech/<subset>/.
# Never needed: put the unpacked LibriSpeech/ folder anywhere and point run.sh at it.
# A subset already unpacked here (marked by LibriSpeech/<subset>/.complete) is skipped;
# an interrupted download resumes.
set -euo pipefail

# Configuration (each one is an option).
url_base=https://www.openslr.org/resources/12
remove_archive=false   # true: delete each .tar.gz once unpacked

help_message="Usage: $0 [options] <dest-dir> <subset> [<subset> ...]
e.g.: $0 corpus train-clean-100 dev-clean
Subsets: train-clean-100 (6.3 GB), train-clean-360 (23 GB), train-other-500 (30 GB),
dev-clean, dev-other, test-clean, test-other (about 0.3 GB each).
Options:
  --url-base URL                  mirror (default: $url_base)
  --remove-archive (true|false)   delete the archives after unpacking (default: $remove_archive)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -lt 2 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
dest=$1
shift

md5_of() {  # md5_of <subset>: the sum published on openslr.org/12
  case $1 in
    dev-clean) echo 42e2234ba48799c1f50f24a7926300a1 ;;
    dev-other) echo c8d0bcc9cca99d4f8b62fcc847357931 ;;
    test-clean) echo 32fa31d27d2e1cad72775fee3f4849a9 ;;
    test-other) echo fb5a50374b501bb3bac4815ee91d3135 ;;
    train-clean-100) echo 2a93770f6d5c6c964bc36631d331a522 ;;
    train-clean-360) echo c0e676e450a7ff2f54aeade5171606fa ;;
    train-other-500) echo d1a0fd59409feb2c614ce4d30c387708 ;;
    *) return 1 ;;
  esac
}

# shellcheck source=fetch.sh
. local/librispeech/fetch.sh

for subset in "$@"; do
  md5_of "$subset" > /dev/null || {
    echo "$0: unknown subset '$subset'; expected one of train-clean-100 train-clean-360" \
      "train-other-500 dev-clean dev-other test-clean test-other" >&2
    exit 1
  }
done
mkdir -p "$dest"
for subset in "$@"; do
  if [ -f "$dest/LibriSpeech/$subset/.complete" ]; then
    echo "$0: $dest/LibriSpeech/$subset is already unpacked"
    continue
  fi
  archive=$dest/$subset.tar.gz
  if [ ! -f "$archive" ]; then
    url=$url_base/$subset.tar.gz
    if ! fetch "$url" "$archive"; then
      echo "$0: cannot download $url (is this machine offline?). Download it elsewhere" \
        "from https://www.openslr.org/12 and unpack it into $dest, or point the recipe" \
        "at an unpacked LibriSpeech/ folder." >&2
      exit 1
    fi
  fi
  sum=$(md5sum "$archive" | cut -d' ' -f1)
  if [ "$sum" != "$(md5_of "$subset")" ]; then
    echo "$0: $archive has MD5 $sum, expected $(md5_of "$subset"): a damaged or" \
      "incomplete download; delete it and run again" >&2
    exit 1
  fi
  tar -xzf "$archive" -C "$dest"
  [ -d "$dest/LibriSpeech/$subset" ] || {
    echo "$0: $archive did not unpack to $dest/LibriSpeech/$subset" >&2
    exit 1
  }
  touch "$dest/LibriSpeech/$subset/.complete"
  if $remove_archive; then rm "$archive"; fi
  echo "$0: unpacked $subset into $dest/LibriSpeech/$subset"
done
