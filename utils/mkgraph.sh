#!/usr/bin/env bash
# Kaldi's utils/mkgraph.sh for our monophone models: the decoding graph HCLG.fst
# (H: HMMs of the model's transition model, C: the tree's phone context, L: the lexicon,
# G: the LM) with self-loops, its input labels transition ids, its outputs words.
# <lang-dir> needs G.fst (utils/format_lm.sh); <model-dir> needs final.mdl and tree, and
# its phones.txt must be the lang's (a graph of another lang dir is an error). Writes
# <graph-dir>/{HCLG.fst,words.txt,phones.txt,phones/,num_pdfs,disambig_tid.int}, all at
# once. HCLG.fst is an OpenFst vector FST, which Kaldi's decoders read.
# The logic lives in speechssl.bin.mkgraph (speechssl.asr.graph).
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
transition_scale=1.0  # scale of transition probabilities in H
self_loop_scale=0.1   # scale of self-loop probabilities (Kaldi: 0.1; chain models 1.0)
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <lang-dir> <model-dir> <graph-dir>
e.g.: $0 data/lang_test exp/mono exp/mono/graph
Options:
  --transition-scale <x>   # transition probability scale ($transition_scale)
  --self-loop-scale <x>    # self-loop probability scale ($self_loop_scale)"
# shellcheck source=parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
lang=$1
model_dir=$2
dir=$3
for f in "$lang/L_disambig.fst" "$lang/G.fst" "$lang/phones.txt" "$model_dir/final.mdl" \
         "$model_dir/tree"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
mkdir -p "$(dirname "$dir")"

python -m speechssl.bin.mkgraph --transition-scale "$transition_scale" \
  --self-loop-scale "$self_loop_scale" "$lang" "$model_dir" "$dir"
log "succeeded making $dir/HCLG.fst"
