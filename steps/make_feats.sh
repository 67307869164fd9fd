#!/usr/bin/env bash
# Compute Kaldi fbank or MFCC features for a data dir with kaldi-native-fbank.
# steps/make_fbank.sh and steps/make_mfcc.sh are this script with --feat-type set.
# Writes <feat-dir>/raw_<type>_<set>.JOB.{ark,scp} (absolute paths), then feats.scp,
# utt2num_frames, utt2dur, frame_shift and eval_opts (how evaluations read the features:
# --cmvn=true, MFCC --delta-order=2) in the data dir; a failed run changes neither.
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
[ -d "$data" ] || { echo "$0: no such data dir: $data" >&2; exit 1; }
name=$(basename "$data")
# One step at a time writes the data dir (another make_feats would swap its tables mid-run).
# shellcheck source=../utils/lock_dir.sh
. "$SPEECHSSL_ROOT/utils/lock_dir.sh" "$data"
python -m speechssl.bin.compute_feats --check-config --kind "$feat_type" --config "$config"

# The tables this step writes, and the CMVN stats they make stale: an earlier run's copies
# are about to be replaced, so they are neither checked nor split.
outputs=(utt2num_frames utt2dur frame_shift feats.scp)
ignore=()
for f in "${outputs[@]}" cmvn.scp; do ignore+=(--ignore "$f"); done
"$SPEECHSSL_ROOT/utils/validate_data_dir.sh" --no-text "${ignore[@]}" "$data"
num_utts=$(wc -l < "$data/utt2spk")
if ! [[ $nj =~ ^[0-9]+$ ]] || [ "$nj" -lt 1 ] || [ "$nj" -gt "$num_utts" ]; then
  echo "$0: --nj must be between 1 and $num_utts (utterances in $data), got '$nj'" >&2
  exit 1
fi
mkdir -p "$logdir" "$featdir"
featdir=$(cd "$featdir" && pwd)  # scp files must hold absolute paths
sdata=$("$SPEECHSSL_ROOT/utils/split_data.sh" --per-utt "${ignore[@]}" "$data" "$nj")

# A failed run changes nothing. Each job writes $ark.new and $scp.new, whose lines already
# name the final $ark; the data-dir tables are merged in $new. The archives of an earlier
# run, which its feats.scp points into, are overwritten (by renames) only once the 95%
# rule has passed; on any failure the trap removes what this run staged (also the .tmp
# files of a job that was killed before it could remove them itself).
ark=$featdir/raw_${feat_type}_$name.JOB.ark
scp=$featdir/raw_${feat_type}_$name.JOB.scp
new=$data/.make_feats.new
remove_staged() {
  local n
  for n in $(seq "$nj"); do
    rm -f "${ark//JOB/$n}".new{,.tmp} "${scp//JOB/$n}".new{,.tmp} || true
  done
  rm -rf "$new"
}
trap remove_staged EXIT
rm -rf "$new"  # left by a killed run
mkdir "$new"
opts=(--kind "$feat_type" --config "$config" --seed "$seed")
if $compress; then opts+=(--compress); fi
if $allow_resample; then opts+=(--allow-resample); fi

log "computing $feat_type for $data with $nj jobs"
job_log=$logdir/make_${feat_type}_$name.JOB.log
if ! $cmd JOB=1:"$nj" "$job_log" \
  python -m speechssl.bin.compute_feats "${opts[@]}" \
    --utt2num-frames "$new/utt2num_frames.JOB" --utt2dur "$new/utt2dur.JOB" \
    --frame-shift "$new/frame_shift.JOB" --ark-in-scp "$ark" \
    "$sdata/JOB" "$ark.new" "$scp.new"; then
  # The runner has printed each failed job's ERROR line (e.g. which file it could not write).
  echo "$0: feature jobs failed; $data is unchanged" >&2
  exit 1
fi

merge_jobs() {  # merge_jobs <output> <input path with JOB in it>
  local n
  for n in $(seq "$nj"); do cat "${2//JOB/$n}"; done | sort > "$1"
}
merge_jobs "$new/utt2num_frames" "$new/utt2num_frames.JOB"
merge_jobs "$new/utt2dur" "$new/utt2dur.JOB"
cp "$new/frame_shift.1" "$new/frame_shift"
merge_jobs "$new/feats.scp" "$scp.new"

# Kaldi's rule: fewer than 95% of the utterances with features is a failure.
num_feats=$(wc -l < "$new/feats.scp")
if [ "$num_feats" -lt "$num_utts" ]; then
  # awk reads the whole listing: `head` would exit early, and the listing, killed by
  # SIGPIPE, would end the step (pipefail) before it could say anything.
  failed=$("$SPEECHSSL_ROOT/utils/filter_scp.sh" --exclude "$new/feats.scp" "$data/utt2spk" \
             | awk 'NR <= 10 {printf "%s ", $1}')
  if [ $((num_feats * 100)) -lt $((num_utts * 95)) ]; then
    echo "$0: only $num_feats of $num_utts utterances of $data got features (under 95%)." >&2
    echo "$0: failed (first 10): $failed; see $logdir/make_${feat_type}_$name.*.log" >&2
    echo "$0: $data is unchanged; fix the audio (or --allow-resample) and run again" >&2
    exit 1
  fi
  log "skipped $((num_utts - num_feats)) of $num_utts utterances (first 10: $failed);" \
      "see $logdir/make_${feat_type}_$name.*.log and run utils/fix_data_dir.sh $data"
fi

# Success. Copies first (a full disk fails them with the dir intact): the old outputs, and
# the CMVN stats computed from them, go to .backup as in Kaldi. Then only renames put the
# new files in place, archives first and feats.scp last.
mkdir -p "$data/.backup" "$data/conf"
for f in "${outputs[@]}" cmvn.scp; do
  if [ -f "$data/$f" ]; then cp -p "$data/$f" "$data/.backup/$f"; fi
done
cp "$config" "$new/$feat_type.conf"
# How the frame-level evaluations read these features: speaker CMVN, MFCC with deltas (39-d,
# Kamper's baseline); the CAE-RNN also normalises variances (on raw MFCC its loss stalls).
delta_order=$([ "$feat_type" = mfcc ] && echo 2 || echo 0)
printf '%s\n' --cmvn=true "--delta-order=$delta_order" --awe-norm-vars=true > "$new/eval_opts"
for n in $(seq "$nj"); do
  mv "${ark//JOB/$n}.new" "${ark//JOB/$n}"
  mv "${scp//JOB/$n}.new" "${scp//JOB/$n}"
done
for f in "${outputs[@]}"; do mv "$new/$f" "$data/$f"; done
mv "$new/$feat_type.conf" "$data/conf/$feat_type.conf"
mv "$new/eval_opts" "$data/eval_opts"
rm -f "$data/cmvn.scp"
log "succeeded creating $feat_type features for $name ($num_feats utterances)"
