#!/usr/bin/env bash
# Flat-start monophone GMM-HMM training, as Kaldi's steps/train_mono.sh (same arguments,
# options and defaults): gmm-init-mono on the first 10 utterances of job 1, equal
# alignment, --num-iters passes of EM realigning on --realign-iters, Gaussians grown to
# --totgauss.  The features are read as <data-dir>/eval_opts says (speaker CMVN, deltas:
# for MFCC, apply-cmvn + add-deltas as Kaldi's script) unless --cmvn/--delta-order say
# otherwise; <exp-dir>/feature_opts records it for align_si.sh and decoding.
# One training process runs the --nj jobs (data/split<nj>) as worker processes that keep
# their features in memory (see speechssl.asr.gmm); its log, with the average
# log-likelihood per frame of every pass, is <exp-dir>/log/train_mono.log.
# Writes <exp-dir>/{final.mdl (Kaldi text format),tree,ali.JOB.gz,num_jobs,phones.txt,
# feature_opts,cmvn_opts,delta_opts}; final.mdl appears last, only on success.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
nj=4
cmd=run_local.sh
num_iters=40      # number of passes of training
max_iter_inc=30   # last pass that increases the number of Gaussians
totgauss=1000     # target number of Gaussians
careful=false
boost_silence=1.0 # factor by which to boost silence likelihoods in alignment
realign_iters="1 2 3 4 5 6 7 8 9 10 12 14 16 18 20 23 26 29 32 35 38"
power=0.25        # exponent to determine the number of Gaussians from occupation counts
max_fail_fraction=0.1  # fail if more of the utterances than this fail to align
cmvn=             # speaker mean normalisation; empty: <data-dir>/eval_opts' (else false)
delta_order=      # deltas to append; empty: <data-dir>/eval_opts' (else 0)
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> <lang-dir> <exp-dir>
e.g.: $0 --nj 4 data/train_mfcc data/lang exp/mono
Options:
  --nj <n>                 # parallel jobs ($nj)
  --cmd <job-runner>       # how to run the job, e.g. run_local.sh or run_slurm.sh ($cmd)
  --num-iters <n>          # passes of training ($num_iters)
  --max-iter-inc <n>       # last pass that adds Gaussians ($max_iter_inc)
  --totgauss <n>           # target number of Gaussians ($totgauss)
  --realign-iters <list>   # passes that realign (\"$realign_iters\")
  --boost-silence <x>      # silence likelihood boost in alignment ($boost_silence)
  --careful <true|false>   # gmm-align-compiled --careful ($careful)
  --power <x>              # Gaussian allocation exponent ($power)
  --max-fail-fraction <x>  # most utterances allowed to fail alignment ($max_fail_fraction)
  --cmvn <true|false>      # speaker CMVN (default: <data-dir>/eval_opts')
  --delta-order <n>        # deltas (default: <data-dir>/eval_opts')"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
lang=$2
dir=$3

for f in "$data/feats.scp" "$data/text" "$lang/phones.txt" "$lang/L.fst" "$lang/topo" \
         "$lang/oov.int" "$lang/words.txt"; do
  [ -f "$f" ] || { echo "$0: expected file $f to exist" >&2; exit 1; }
done
cmvn=${cmvn:-$(eval_opt "$data" cmvn false)}
delta_order=${delta_order:-$(eval_opt "$data" delta-order 0)}
check_cmvn "$data" "$cmvn"

mkdir -p "$dir/log"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
# A failed run must not leave the last run's model looking current.
rm -f "${dir:?}"/{final.mdl,tree,num_jobs,phones.txt,feature_opts,cmvn_opts,delta_opts} \
      "$dir"/ali.*.gz
sdata=$data/split$nj
if [ ! -d "$sdata" ] || [ "$data/feats.scp" -nt "$sdata" ]; then
  "$SPEECHSSL_ROOT/utils/split_data.sh" "$data" "$nj" >/dev/null
fi

log "training a monophone system on $data (--cmvn $cmvn --delta-order $delta_order)"
$cmd "$dir/log/train_mono.log" \
  python -m speechssl.bin.train_mono --nj "$nj" --cmvn "$cmvn" --delta-order "$delta_order" \
    --num-iters "$num_iters" --max-iter-inc "$max_iter_inc" --totgauss "$totgauss" \
    --realign-iters "$realign_iters" --boost-silence "$boost_silence" --careful "$careful" \
    --power "$power" --max-fail-fraction "$max_fail_fraction" "$data" "$lang" "$dir"

[ -f "$dir/final.mdl" ] || { echo "$0: no $dir/final.mdl; see $dir/log/train_mono.log" >&2; exit 1; }
log "done training the monophone system in $dir"
