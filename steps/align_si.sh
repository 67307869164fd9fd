#!/usr/bin/env bash
# Align a data dir with a GMM-HMM, as Kaldi's steps/align_si.sh (same arguments, options
# and defaults): training graphs from <data-dir>/text through <lang-dir>/L.fst, then
# gmm-align-compiled with <src-dir>/final.mdl, reading the features as the model was
# trained (<src-dir>/feature_opts).  <lang-dir> must have <src-dir>'s phones.txt.
# Writes <ali-dir>/{ali.JOB.gz,num_jobs} and copies final.mdl, tree, phones.txt and the
# feature options there; final.mdl appears last, only on success.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
nj=4
cmd=run_local.sh
beam=10
retry_beam=40
careful=false
boost_silence=1.0 # factor by which to boost silence during alignment
max_fail_fraction=0.1  # fail if more of the utterances than this fail to align
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> <lang-dir> <src-dir> <align-dir>
e.g.: $0 --nj 4 data/train_mfcc data/lang exp/mono exp/mono_ali
Options:
  --nj <n>                 # parallel jobs ($nj)
  --cmd <job-runner>       # how to run the job, e.g. run_local.sh or run_slurm.sh ($cmd)
  --beam <x>               # alignment beam ($beam)
  --retry-beam <x>         # beam of the second try ($retry_beam)
  --careful <true|false>   # gmm-align-compiled --careful ($careful)
  --boost-silence <x>      # silence likelihood boost ($boost_silence)
  --max-fail-fraction <x>  # most utterances allowed to fail alignment ($max_fail_fraction)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -ne 4 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
lang=$2
srcdir=$3
dir=$4

for f in "$data/feats.scp" "$data/text" "$lang/oov.int" "$lang/L.fst" "$srcdir/tree" \
         "$srcdir/final.mdl" "$srcdir/phones.txt" "$srcdir/feature_opts"; do
  [ -f "$f" ] || { echo "$0: expected file $f to exist" >&2; exit 1; }
done
if grep -q -- '--cmvn=true' "$srcdir/feature_opts" && [ ! -f "$data/cmvn.scp" ]; then
  echo "$0: the model was trained with CMVN: needs $data/cmvn.scp (run steps/compute_cmvn_stats.sh $data)" >&2
  exit 1
fi

mkdir -p "$dir/log"
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$dir"
if [ "$(readlink -f "$srcdir")" != "$(readlink -f "$dir")" ]; then
  rm -f "${dir:?}"/{final.mdl,tree,num_jobs,phones.txt,feature_opts,cmvn_opts,delta_opts}
fi
rm -f "$dir"/ali.*.gz
sdata=$data/split$nj
if [ ! -d "$sdata" ] || [ "$data/feats.scp" -nt "$sdata" ]; then
  "$SPEECHSSL_ROOT/utils/split_data.sh" "$data" "$nj" >/dev/null
fi

log "aligning $data with $srcdir/final.mdl into $dir"
$cmd "$dir/log/align.log" \
  python -m speechssl.bin.align_si --nj "$nj" --beam "$beam" --retry-beam "$retry_beam" \
    --careful "$careful" --boost-silence "$boost_silence" \
    --max-fail-fraction "$max_fail_fraction" "$data" "$lang" "$srcdir" "$dir"

[ -f "$dir/num_jobs" ] || { echo "$0: no $dir/num_jobs; see $dir/log/align.log" >&2; exit 1; }
log "done aligning $data into $dir"
