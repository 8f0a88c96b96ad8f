#!/usr/bin/env bash
# One prepared GPU session: train the shipped gray priors, then measure them (prior quality, solver speed,
# PROTOCOL §1 solver sweep), all on the device. Prepare with scripts/pack_device_data.sh, carry .device.
# Everything worth keeping lands in $OUT: the two exported priors (+ JSON configs) and results.tgz
# (logs, loss curves, sample grids, benchmark JSON), re-packed after every stage so a run cut short
# still returns what it measured.
# Usage (device): OUT=... scripts/gpu_session.sh        smoke test here: SMOKE=1 DEVICE=cpu OUT=/tmp/o ...
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export GEODIFF_SHARED_DATA=$PWD/.device/data GEODIFF_BM3D_CACHE=$PWD/.device/bm3d_cache
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
MIN=${TRAIN_MINUTES:-5.5}
R=${OUT:-out/gpu}
RES=${RES:-/tmp/geodiff_res}
RUNS=${RUNS:-/tmp/geodiff_runs}
D=$GEODIFF_SHARED_DATA
rm -rf "$RES" "$RUNS"; mkdir -p "$R" "$RES" "$RUNS"
pack() { tar -czf "$R/results.tgz" -C "$RES" . ; echo "[$(date +%T)] packed: $*"; }
T0=$(date +%s)
echo "[$(date +%T)] start"; nvidia-smi -L 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

SRC=("$D/virtual_sar_clean_gray" "$D/packed" "$D/mva_multitemporal_reference/groundtruth"
     "$D/mva_multitemporal_reference/despeckled_renderings_uint8")
VAL=(); for f in "$D"/virtual_sar_clean_gray/0185?.jpg; do VAL+=(--val "$f"); done
COMMON=("${SRC[@]}" "${VAL[@]}" --exclude '019[0-4]?.jpg' --data-root "$D" --tile 128 --steps 1000000 --max-minutes "$MIN"
        --val-every 500 --save-every 2000 --threads 4 --device "$DEVICE" --seed 0 --weights-dtype float16
        --warmup 500 --ema 0.999 --quiet)
if [[ ${SMOKE:-0} == 1 ]]; then  # same paths, toy sizes
  G=(--width 8 --mult 1,2,4,4 --res-blocks 1 --attention --batch 4)
  GL=(--width 8 --mult 1,2,2,3 --res-blocks 2 --attention --batch 4)
  LIMIT=(--limit 2); SPEED=(--tile 64 --batch 2 --repeat 1 --ref-steps 2 --nfe 20)
else
  G=(--width 32 --mult 1,2,4,4 --res-blocks 1 --attention --batch 64 --lr 5e-4)
  GL=(--width 48 --mult 1,2,2,3 --res-blocks 2 --attention --batch 48 --lr 4e-4)
  LIMIT=(); SPEED=()
fi
$PY -m geodiff.cli train "${COMMON[@]}" "${G[@]}" --out "$RUNS/gray" --name gray >"$RES/train_gray.log" 2>&1 &
$PY -m geodiff.cli train "${COMMON[@]}" "${GL[@]}" --out "$RUNS/gray-l" --name gray-l >"$RES/train_gray-l.log" 2>&1 &
while [[ -n $(jobs -r) ]]; do
  sleep 30; echo "[$(date +%T)] $(tail -qn1 "$RES"/train_*.log 2>/dev/null | cut -c1-150 | tr '\n' '|')"
done
wait
for m in gray gray-l; do
  echo "$m: $($PY -m geodiff.cli models export "$RUNS/$m")"
  cp "$RUNS/$m/$m.safetensors" "$RUNS/$m/$m.json" "$R/"; cp "$RUNS/$m/loss_log.csv" "$RES/loss_$m.csv"
done
pack training $(( $(date +%s) - T0 ))s
P1=$RUNS/gray/gray.safetensors; P2=$RUNS/gray-l/gray-l.safetensors
$PY bench/prior_denoise.py --priors "$P1" "$P2" tiny --no-bm3d --device "$DEVICE" --samples-prior "$P1" \
  --samples "$RES/samples_gray.png" --sample-size 128 --out "$RES/prior_denoise.json" --threads 4 2>&1 | tail -n 14
$PY bench/prior_denoise.py --priors "$P2" --sigmas 25 --no-bm3d --device "$DEVICE" --samples-prior "$P2" \
  --samples "$RES/samples_gray-l.png" --sample-size 128 --out "$RES/prior_denoise_gray-l.json" --threads 4 >/dev/null 2>&1
pack prior quality $(( $(date +%s) - T0 ))s
$PY bench/solver_speed.py --priors "$P1" "$P2" --device "$DEVICE" "${SPEED[@]}" --out "$RES/solver_speed.json" 2>&1 | tail -n 12
pack speed $(( $(date +%s) - T0 ))s
V1=jf-log-nfe20-bm3d,jf-log-nfe40-bm3d,jf-log-nfe100-bm3d,jf-int-nfe40-bm3d,jac-log-nfe20-bm3d,jf-log-nfe40-lee
$PY bench/solvers_dev.py --prior "$P1" --variants "$V1" --batch 16 --device "$DEVICE" "${LIMIT[@]}" \
  --out "$RES/solvers_dev_gray.json" 2>&1 | grep '^|'
pack solvers gray $(( $(date +%s) - T0 ))s
$PY bench/solvers_dev.py --prior "$P2" --variants jf-log-nfe40-bm3d,jf-log-nfe100-bm3d --batch 16 \
  --device "$DEVICE" "${LIMIT[@]}" --out "$RES/solvers_dev_gray-l.json" 2>&1 | grep '^|'
pack solvers gray-l $(( $(date +%s) - T0 ))s
