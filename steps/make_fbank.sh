#!/usr/bin/env bash
# Kaldi's steps/make_fbank.sh: [options] <data-dir> [<log-dir> [<feat-dir>]].
# One implementation serves fbank and MFCC: see steps/make_feats.sh for the options.
exec "$(dirname "$(readlink -f "$0")")/make_feats.sh" --feat-type fbank "$@"
