#!/usr/bin/env bash
# Decode a data dir with a hybrid DNN-HMM system (Kaldi's steps/nnet/decode.sh:
# nnet-forward --class-frame-counts | latgen-faster-mapped): the DNN of <exp-dir>/final.pt
# (steps/train_hybrid.sh) gives log-posteriors minus log-priors (ali_train_pdf.counts), which
# the transition model of <exp-dir>/final.mdl maps to transition ids.  The features are read
# with the protocol the DNN was trained with (stored in final.pt).  Options as steps/decode.sh,
# which does the work; --loglikes true also writes the log-likelihoods as Kaldi arks.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

if [ $# -lt 4 ] || [ "${1:-}" = --help ]; then
  echo "Usage: $0 [steps/decode.sh options] <graph-dir> <feats-data-dir> <exp-dir> <decode-dir>
e.g.: $0 --nj 4 exp/mono/graph data/test_fbank exp/fbank/hybrid exp/fbank/hybrid/decode_test" >&2
  exit 1
fi
args=("$@")
n=${#args[@]}
graph=${args[n-4]}
data=${args[n-3]}
exp=${args[n-2]}
dir=${args[n-1]}
for f in "$exp/final.pt" "$exp/final.mdl" "$exp/ali_train_pdf.counts"; do
  [ -f "$f" ] || { echo "$0: no such file $f (run steps/train_hybrid.sh)" >&2; exit 1; }
done
exec "$SPEECHSSL_ROOT/steps/decode.sh" "${args[@]:0:n-4}" --model "$exp/final.mdl" \
  --nnet "$exp/final.pt" --class-frame-counts "$exp/ali_train_pdf.counts" "$graph" "$data" "$dir"
