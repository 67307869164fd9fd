#!/usr/bin/env bash
# Decode a data dir through an HCLG graph (Kaldi's steps/decode.sh): a GMM (gmm-decode-faster)
# or, with --nnet, a hybrid DNN (decode-faster-mapped; steps/decode_hybrid.sh sets it), with
# kaldi-hmm-gmm's FasterDecoder.  Its bindings give best paths, not lattices, so each LM
# weight of --lmwt-range is one decoding pass at acoustic scale 1/lmwt (Kaldi rescales one
# lattice instead).  Writes <decode-dir>/scoring/<lmwt>.tra (utt word-ids) and .phn (best-path
# phones), log/decode.JOB.log, log/decode_stats.JOB.json (RTF), then scores with
# steps/score_wer.sh: wer_<lmwt>, best_wer, results.json.
# The GMM's features are read as it was trained: --cmvn and --delta-order default to the
# model dir's eval_opts, else the data dir's.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
cmd=run_local.sh
nj=4
model=             # default: <decode-dir>/../final.mdl, as Kaldi
nnet=              # a hybrid DNN's final.pt (then --model is its transition model)
class_frame_counts=  # the DNN's priors; default: ali_train_pdf.counts beside --nnet
prior_scale=1.0
cmvn=              # GMM: speaker CMVN; empty: eval_opts (model dir's, else data dir's)
delta_order=       # GMM: deltas; empty: as --cmvn
beam=13.0
max_active=7000
min_active=200
lmwt_range=7:17    # LM weights decoded and scored (local/score.sh's 7..17)
lmwt=              # one LM weight instead (the best one on dev)
loglikes=false     # DNN: also write <decode-dir>/loglikes.JOB.{ark,scp} for latgen-faster-mapped
num_threads=1
skip_scoring=false
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <graph-dir> <data-dir> <decode-dir>
e.g.: $0 --nj 4 exp/mono/graph data/test_mfcc exp/mono/decode_test
Options:
  --cmd <job-runner>      # how to run the jobs ($cmd)
  --nj <n>                # parallel jobs, data split by speaker ($nj)
  --model <final.mdl>     # default: <decode-dir>/../final.mdl
  --nnet <final.pt>       # decode a hybrid DNN (see steps/decode_hybrid.sh)
  --cmvn <true|false>     # GMM features (default: eval_opts)
  --delta-order <n>       # GMM features (default: eval_opts)
  --beam <x>              # decoding beam ($beam)
  --max-active <n>        # ($max_active)
  --min-active <n>        # ($min_active)
  --lmwt-range <min:max[:step]> # LM weights to decode and score ($lmwt_range)
  --lmwt <n>              # decode this LM weight only
  --loglikes <true|false> # DNN: write the log-likelihoods as Kaldi arks ($loglikes)
  --skip-scoring <true|false> # ($skip_scoring)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
graph=$1
data=$2
dir=$3
model=${model:-$dir/../final.mdl}
mkdir -p "$dir/log"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
rm -rf "${dir:?}"/{scoring,jobs} "$dir"/{results.json,best_wer,decode_stats.json,config} \
  "$dir"/wer_* "$dir"/per_* "$dir"/loglikes.* "$dir"/log/decode_stats.*.json

for f in "$graph/HCLG.fst" "$graph/words.txt" "$model" "$data/feats.scp"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
for b in "$loglikes:loglikes" "$skip_scoring:skip-scoring"; do
  case "${b%%:*}" in true|false) ;; *) echo "$0: --${b#*:} must be true or false" >&2; exit 1 ;; esac
done
"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-wav "$data"
opts=(--model "$model" --beam "$beam" --max-active "$max_active" --min-active "$min_active"
      --lmwt-range "${lmwt:-$lmwt_range}"
      --num-threads "$num_threads")
if [ -n "$nnet" ]; then
  class_frame_counts=${class_frame_counts:-$(dirname "$nnet")/ali_train_pdf.counts}
  for f in "$nnet" "$class_frame_counts"; do
    [ -f "$f" ] || { echo "$0: no such file $f (run steps/train_hybrid.sh)" >&2; exit 1; }
  done
  opts+=(--nnet "$nnet" --class-frame-counts "$class_frame_counts" --prior-scale "$prior_scale")
else
  [ "$loglikes" = false ] || { echo "$0: --loglikes true needs --nnet" >&2; exit 1; }
  srcdir=$(dirname "$model")
  opts_dir=$data
  if [ -f "$srcdir/eval_opts" ]; then
    check_same_eval_opts "$srcdir" "$data"
    opts_dir=$srcdir
  fi
  opts+=(--cmvn "${cmvn:-$(eval_opt "$opts_dir" cmvn false)}"
         --delta-order "${delta_order:-$(eval_opt "$opts_dir" delta-order 0)}")
fi
if [ "$loglikes" = true ]; then opts+=(--write-loglikes "$dir/loglikes.JOB.ark"); fi

sdata=$("$SPEECHSSL_ROOT/utils/split_data.sh" "$data" "$nj")
printf '%s\n' "graph=$(readlink -f "$graph")" "data=$(readlink -f "$data")" \
  "model=$(readlink -f "$model")" "nnet=$nnet" "${opts[@]}" > "$dir/config"
log "decoding $data with $nj jobs, LM weights ${lmwt:-$lmwt_range}"
$cmd JOB=1:"$nj" "$dir/log/decode.JOB.log" \
  python -m speechssl.bin.decode "${opts[@]}" "$graph" "$sdata/JOB" "$dir/jobs/JOB"

mkdir -p "$dir/scoring"
for hyp in "$dir"/jobs/1/scoring/*; do  # <lmwt>.tra and <lmwt>.phn of every job, merged
  name=${hyp##*/}
  for n in $(seq "$nj"); do cat "$dir/jobs/$n/scoring/$name"; done | sort > "$dir/scoring/$name.tmp"
  mv "$dir/scoring/$name.tmp" "$dir/scoring/$name"
done
for n in $(seq "$nj"); do mv "$dir/jobs/$n/decode_stats.json" "$dir/log/decode_stats.$n.json"; done
rm -rf "${dir:?}/jobs"
if [ "$loglikes" = true ]; then
  for n in $(seq "$nj"); do cat "$dir/loglikes.$n.scp"; done > "$dir/loglikes.scp"
fi
if [ "$skip_scoring" = false ]; then
  "$SPEECHSSL_ROOT/steps/score_wer.sh" --cmd "$cmd" "$data" "$graph" "$dir"
fi
log "succeeded decoding $data: $dir"
