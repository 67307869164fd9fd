#!/usr/bin/env bash
# Compute Kaldi fbank or MFCC features for a data dir with kaldi-native-fbank.
# steps/make_fbank.sh and steps/make_mfcc.sh are this script with --feat-type set.
# Writes <feat-dir>/raw_<type>_<set>.JOB.{ark,scp} (absolute paths), then feats.scp,
# utt2num_frames, utt2dur and frame_shift in the data dir.
set -euo pipefail
# shellcheck source=../path.sh
. "$(dirname "$(readlink -f "$0")")/../path.sh"

# Begin configuration section.
feat_type=fbank
nj=4
cmd=run_local.sh
fbank_config=conf/fbank.conf
mfcc_config=conf/mfcc.conf
compress=false         # Kaldi-compressed matrices: 4x smaller, but lossy, and slower to
                       # write here and to read in training (Kaldi itself defaults to true)
seed=0                 # dither seed; mixed with each utterance id
allow_resample=false   # true: resample other sample rates instead of failing
# End configuration section.

echo "$0 $*"
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<feat-dir>]]
e.g.: $0 --nj 8 --fbank-config conf/fbank.conf data/train exp/make_fbank/train fbank
<log-dir> defaults to <data-dir>/log, <feat-dir> to <data-dir>/data.
Options:
  --nj <n>                  # number of parallel jobs ($nj)
  --cmd <job-runner>        # how to run jobs, e.g. run_local.sh or run_slurm.sh ($cmd)
  --fbank-config <file>     # Kaldi option file for fbank ($fbank_config)
  --mfcc-config <file>      # Kaldi option file for MFCC ($mfcc_config)
  --compress <true|false>   # Kaldi-compressed output ($compress)
  --seed <int>              # dither seed ($seed)
  --allow-resample <bool>   # resample audio at other rates instead of failing ($allow_resample)"
# shellcheck source=../utils/parse_options.sh
. "$SPEECHSSL_ROOT/utils/parse_options.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
logdir=${2:-$data/log}
featdir=${3:-$data/data}
case $feat_type in
  fbank) config=$fbank_config ;;
  mfcc) config=$mfcc_config ;;
  *) echo "$0: --feat-type must be fbank or mfcc, got '$feat_type'" >&2; exit 1 ;;
esac
[ -f "$config" ] || { echo "$0: no such config file: $config (--${feat_type}-config)" >&2; exit 1; }
name=$(basename "$data")
python -m speechssl.bin.compute_feats --check-config --kind "$feat_type" --config "$config"

"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text "$data"
mkdir -p "$logdir" "$featdir"
featdir=$(cd "$featdir" && pwd)  # scp files must hold absolute paths

# Outputs of an earlier run no longer describe this one: keep them out of the way.
mkdir -p "$data/.backup"
for f in feats.scp utt2num_frames utt2dur frame_shift cmvn.scp; do
  if [ -f "$data/$f" ]; then mv "$data/$f" "$data/.backup/$f"; fi
done

sdata=$("$SPEECHSSL_ROOT/utils/split_data.sh" --per-utt "$data" "$nj")
opts=(--kind "$feat_type" --config "$config" --seed "$seed")
if $compress; then opts+=(--compress); fi
if $allow_resample; then opts+=(--allow-resample); fi

log "computing $feat_type for $data with $nj jobs"
$cmd JOB=1:"$nj" "$logdir/make_${feat_type}_$name.JOB.log" \
  python -m speechssl.bin.compute_feats "${opts[@]}" \
    --utt2num-frames "$logdir/utt2num_frames.JOB" --utt2dur "$logdir/utt2dur.JOB" \
    --frame-shift "$logdir/frame_shift.JOB" \
    "$sdata/JOB" "$featdir/raw_${feat_type}_$name.JOB.ark" "$featdir/raw_${feat_type}_$name.JOB.scp"

# Merge the jobs' outputs; each file appears under its final name only when complete,
# and feats.scp, the one later steps look for, comes last.
merge_jobs() {  # merge_jobs <output> <input path with JOB in it>
  local out=$1 pattern=$2 n
  for n in $(seq "$nj"); do cat "${pattern//JOB/$n}"; done | sort > "$out.tmp"
  mv "$out.tmp" "$out"
}
merge_jobs "$data/utt2num_frames" "$logdir/utt2num_frames.JOB"
merge_jobs "$data/utt2dur" "$logdir/utt2dur.JOB"
cp "$logdir/frame_shift.1" "$data/frame_shift"
merge_jobs "$data/feats.scp" "$featdir/raw_${feat_type}_$name.JOB.scp"
rm -f "$logdir"/utt2num_frames.* "$logdir"/utt2dur.* "$logdir"/frame_shift.*
mkdir -p "$data/conf"
cp "$config" "$data/conf/$feat_type.conf"

# Kaldi's rule: fewer than 95% of the utterances with features is a failure.
num_utts=$(wc -l < "$data/utt2spk")
num_feats=$(wc -l < "$data/feats.scp")
if [ "$num_feats" -lt "$num_utts" ]; then
  failed=$("$SPEECHSSL_ROOT/utils/filter_scp.sh" --exclude "$data/feats.scp" "$data/utt2spk" \
             | cut -d' ' -f1 | head -n 10 | tr '\n' ' ')
  if [ $((num_feats * 100)) -lt $((num_utts * 95)) ]; then
    echo "$0: only $num_feats of $num_utts utterances of $data got features (under 95%)." >&2
    echo "$0: failed (first 10): $failed; see $logdir/make_${feat_type}_$name.*.log" >&2
    exit 1
  fi
  log "skipped $((num_utts - num_feats)) of $num_utts utterances (first 10: $failed);" \
      "see $logdir/make_${feat_type}_$name.*.log and run utils/fix_data_dir.sh $data"
fi
log "succeeded creating $feat_type features for $name ($num_feats utterances)"
