#!/usr/bin/env bash
# egs/voxceleb: speaker embeddings learnt without labels on VoxCeleb2 dev (or VoxCeleb1 dev
# without --voxceleb2), scored by cosine similarity on VoxCeleb1-O (cleaned), and on -E and
# -H (cleaned) when training did not see VoxCeleb1: EER and minDCF (p_target 0.01, 0.001).
#
# Published, VoxCeleb1-O, cosine scoring, trained on VoxCeleb2 dev without labels with
# MUSAN and RIR augmentation (sslsv, Lepage & Dehak; Fast ResNet-34 on 40 mels):
#   VICReg 11.33% EER / 0.666 minDCF(0.01); SimCLR 9.05%, Barlow Twins 13.22%, CPC
#   12.77%, LIM 16.13%, DINO 6.04%; supervised 2.95%.  ECAPA-TDNN: VICReg 7.42%, DINO 2.82%.
# conf/vicreg.yaml is the published VICReg setup with the full Thin-ResNet34 (1024-d);
# sslsv's Fast ResNet-34 has half its channels: model.resnet {channels: [16, 32, 64, 128],
# embedding_dim: 512}.  The pooled-fbank baseline (mean + std of 80 log-mel bins) is the
# reference of features that learnt nothing.
#
#   ./run.sh --voxceleb1 /corpora/voxceleb1 --voxceleb2 /corpora/voxceleb2 \
#            --musan /corpora/musan --rirs /corpora/RIRS_NOISES
#   ./run.sh --stage 3        extract and score again (e.g. after more training)
set -euo pipefail

voxceleb1=corpus/voxceleb1  # wav/ (or dev/wav, test/wav), veri_test2.txt, vox1_meta.csv
voxceleb2=                  # dev/aac/ (m4a; needs ffmpeg): training data; empty: VoxCeleb1 dev
musan=                      # music/ noise/ speech/; empty: synthetic noise
rirs=                       # RIRS_NOISES: simulated_rirs/; empty: synthetic reverberation
vox2_wav=wav/voxceleb2      # where VoxCeleb2's m4a are decoded to, once (about 270 GB)
stage=0
stop_stage=100
nj=8
methods="vicreg"            # utterance-level methods, conf/<method>.yaml each
nproc=1                     # training processes (one per GPU)
device=auto                 # auto (cuda if available, else cpu), cpu or cuda: extraction

help_message="Usage: $0 [options]
e.g.: $0 --voxceleb1 /corpora/voxceleb1 --voxceleb2 /corpora/voxceleb2 --musan /corpora/musan --rirs /corpora/RIRS_NOISES
Stages:
  0  data/voxceleb1_dev, data/voxceleb1_test (trials: VoxCeleb1-O cleaned), data/voxceleb2_dev
     (m4a decoded to wav), data/voxceleb1 (trials_e, trials_h) when training on VoxCeleb2
  1  augmentation lists: data/musan_{noise,music,speech}, data/rirs
  2  self-supervised training of each method on VoxCeleb2 dev (else VoxCeleb1 dev): exp/<method>
  3  embeddings of the evaluation sets: data/voxceleb1_test_<method>, and pooled-fbank
     features data/voxceleb1_test_fbank (and of data/voxceleb1 for E and H)
  4  cosine scoring: exp/<features>/eval/sv_cosine/{results.json,det.png} (O), sv_cosine_e, sv_cosine_h
  5  one results table: exp/results/results.md
Options:
  --voxceleb1 <dir>        VoxCeleb1 root ($voxceleb1)
  --voxceleb2 <dir>        VoxCeleb2 root, training data (${voxceleb2:-none: train on VoxCeleb1 dev})
  --musan <dir>            MUSAN root (${musan:-none: synthetic noise})
  --rirs <dir>             RIRS_NOISES root (${rirs:-none: synthetic reverberation})
  --vox2-wav <dir>         decoded VoxCeleb2 wavs ($vox2_wav)
  --stage <n>              first stage to run ($stage)
  --stop-stage <n>         last stage to run ($stop_stage)
  --nj <n>                 parallel jobs ($nj)
  --methods '<m> ...'      SSL methods, conf/<m>.yaml each ($methods)
  --nproc <n>              training processes, torchrun for more than one ($nproc)
  --device <auto|cpu|cuda> for extraction ($device)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

# Training data: VoxCeleb2 dev once stage 0 has prepared it. The E and H lists use
# VoxCeleb1 dev speakers, so they are only scored when training has not seen them.
if [ -n "$voxceleb2" ] || [ -f data/voxceleb2_dev/utt2spk ]; then
  train_set=voxceleb2_dev
  eval_sets="voxceleb1_test voxceleb1"
else
  train_set=voxceleb1_dev
  eval_sets="voxceleb1_test"
fi
column_of() {  # column_of <trials file name>: the results folder of a trial list
  case $1 in
    trials) echo sv_cosine ;;
    trials_*) echo "sv_cosine_${1#trials_}" ;;
  esac
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  # Kaldi data dirs; utterance ids id10001-1zcIwhmdeo4-00001 (speaker-video-segment).
  local/voxceleb/prepare_voxceleb1.sh --nj "$nj" \
    --extended-trials "$([ "$train_set" = voxceleb2_dev ] && echo true || echo false)" \
    "$voxceleb1" data
  if [ -n "$voxceleb2" ]; then
    local/voxceleb/prepare_voxceleb2.sh --nj "$nj" "$voxceleb2" "$vox2_wav" data
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  # Noise and impulse-response lists; conf/vicreg.yaml holds the SNR range of each category.
  opts=()
  if [ -n "$musan" ]; then opts+=(--musan "$musan"); fi
  if [ -n "$rirs" ]; then opts+=(--rirs "$rirs"); fi
  if [ ${#opts[@]} -gt 0 ]; then
    local/voxceleb/prepare_noise_lists.sh --nj "$nj" "${opts[@]}" data
  fi
  [ -n "$musan" ] || log "no --musan: training adds the synthetic coloured noise of speechssl.train.view_augment"
  [ -n "$rirs" ] || log "no --rirs: training uses the synthetic room reverberation of speechssl.train.view_augment"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  # Training on the audio alone (utt2spk is never read); re-running resumes. Lists that
  # stage 1 did not make are replaced by the synthetic noise or reverberation.
  [ -f "data/$train_set/wav.scp" ] || { echo "$0: no data/$train_set: run stage 0" >&2; exit 1; }
  overrides=""
  if [ -f data/musan_noise/wav.scp ]; then
    log "training with the MUSAN noise, music and babble of data/musan_*"
  else
    overrides="data.augment.noises=[]"
    log "no data/musan_*: training with synthetic coloured noise"
  fi
  if [ -f data/rirs/wav.scp ]; then
    log "training with the room impulse responses of data/rirs"
  else
    overrides="$overrides data.augment.rir_scp=''"
    log "no data/rirs: training with synthetic room reverberation"
  fi
  for m in $methods; do
    steps/train_ssl.sh --cmd "$cuda_cmd" --nproc "$nproc" --overrides "$overrides" \
      "conf/$m.yaml" "data/$train_set" "exp/$m"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  # One embedding per utterance of each evaluation set; the baseline's fbank frames are
  # pooled to mean + std when scored.
  for x in $eval_sets; do
    [ -f "data/$x/wav.scp" ] || continue  # data/voxceleb1: only with the E or H list
    utils/copy_data_dir.sh "data/$x" "data/${x}_fbank"
    steps/make_fbank.sh --cmd "$train_cmd" --nj "$nj" "data/${x}_fbank" "exp/make_fbank/$x" fbank
    for m in $methods; do
      steps/extract_ssl.sh --cmd "$train_cmd" --nj "$nj" --device "$device" "exp/$m" \
        "data/$x" "data/${x}_$m"
    done
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  # Cosine scoring of every trial list, the mean of the evaluated embeddings removed.
  for x in $eval_sets; do
    for trials in "data/$x"/trials*; do
      [ -f "$trials" ] || continue
      for f in fbank $methods; do
        steps/score_sv.sh --backend cosine "data/${x}_$f" "$trials" \
          "exp/$f/eval/$(column_of "$(basename "$trials")")"
      done
    done
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # One table: EER of each list (O, and E and H when scored) per features.
  utils/gather_results.sh --rows "fbank $methods" exp exp/results
fi

log "done: stages $stage to $stop_stage"
