#!/usr/bin/env bash
# Download LibriSpeech's language-model resources from openslr.org/11 into <lm-dir>, as
# Kaldi's egs/librispeech/s5/local/download_lm.sh: the pronunciation lexicon and the ARPA
# LMs estimated on the same normalised text with the same vocabulary, each checked against
# its published size, then Kaldi's names linked to them:
#   lm_tgsmall.arpa.gz -> 3-gram.pruned.3e-7.arpa.gz  (13.6 MB; decoding graphs)
#   lm_tgmed.arpa.gz   -> 3-gram.pruned.1e-7.arpa.gz  (34 MB)
#   lm_tglarge.arpa.gz -> 3-gram.arpa.gz              (760 MB; Kaldi rescores lattices with
#                                                      it, which our best-path decoder cannot)
# A file already there is kept (a wrong size is an error), so with the files fetched by hand
# this only checks them and makes the links; an interrupted download resumes.
set -euo pipefail

# Configuration (each one is an option).
url_base=https://www.openslr.org/resources/11
files="librispeech-lexicon.txt 3-gram.pruned.3e-7.arpa.gz 3-gram.pruned.1e-7.arpa.gz"

help_message="Usage: $0 [options] <lm-dir>
e.g.: $0 corpus/lm
Options:
  --url-base URL        mirror (default: $url_base)
  --files '<f> ...'     what to fetch (default: $files; add 3-gram.arpa.gz for tglarge)"

echo "$0 $*"
. ./path.sh
. utils/parse_options.sh

if [ $# -ne 1 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
dir=$1

size_of() {  # size_of <file>: bytes, as published (Kaldi's download_lm.sh)
  case $1 in
    librispeech-lexicon.txt) echo 5627646 ;;
    librispeech-vocab.txt) echo 1737588 ;;
    3-gram.arpa.gz) echo 759636181 ;;
    3-gram.pruned.1e-7.arpa.gz) echo 34094057 ;;
    3-gram.pruned.3e-7.arpa.gz) echo 13654242 ;;
    4-gram.arpa.gz) echo 1355172078 ;;
    *) return 1 ;;
  esac
}

# shellcheck source=fetch.sh
. local/librispeech/fetch.sh

for f in $files; do
  size_of "$f" > /dev/null || {
    echo "$0: unknown file '$f'; expected librispeech-lexicon.txt, librispeech-vocab.txt," \
      "3-gram.arpa.gz, 3-gram.pruned.1e-7.arpa.gz, 3-gram.pruned.3e-7.arpa.gz or" \
      "4-gram.arpa.gz" >&2
    exit 1
  }
done
mkdir -p "$dir"
for f in $files; do
  if [ ! -f "$dir/$f" ]; then
    if ! fetch "$url_base/$f" "$dir/$f"; then
      echo "$0: cannot download $url_base/$f (is this machine offline?). Download it" \
        "elsewhere from https://www.openslr.org/11 into $dir." >&2
      exit 1
    fi
  fi
  if [ "$(stat -c %s "$dir/$f")" != "$(size_of "$f")" ]; then
    echo "$0: $dir/$f has $(stat -c %s "$dir/$f") bytes, expected $(size_of "$f"):" \
      "a damaged or incomplete download; delete it and run again" >&2
    exit 1
  fi
done
for pair in tgsmall:3-gram.pruned.3e-7 tgmed:3-gram.pruned.1e-7 tglarge:3-gram \
    fglarge:4-gram; do
  if [ -f "$dir/${pair#*:}.arpa.gz" ]; then
    ln -sf "${pair#*:}.arpa.gz" "$dir/lm_${pair%%:*}.arpa.gz"
  fi
done
echo "$0: succeeded: $(cd "$dir" && echo lm_*.arpa.gz) in $dir"
