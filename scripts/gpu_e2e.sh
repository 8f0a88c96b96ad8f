#!/usr/bin/env bash
# The prepared GPU job of issue 17, in stages that each fit one device call:
#   speed   the network's throughput by tiles per evaluation and precision, bf16's error, and the quality
#           of each setting on dev images (bench/gpu_speed.py); picks the e2e stage's precision
#   e2e     whole scenes (16,384² and 25,000 x 17,000, made on the device) through `geodiff despeckle` at the
#           CLI's default profile, against 1.4 Mpx/s, with Lee on the CPUs and reference DPS (bench/gpu_e2e.py)
#   priors  a longer-trained `gray` successor (gray2) and a SAR-domain prior (sar), both fine-tuned from the
#           shipped gray (geodiff train --init, bf16 autocast on CUDA, 128² crops, dev images excluded),
#           resumable, then bench/prior_denoise.py + bench/solvers_dev.py for gray, gray2 and sar and the
#           shipping verdict (bench/prior_verdict.py: better on both and fp16 weights <= 48 MB)
# Everything worth keeping lands in $OUT (at most 8 files): gpu_e2e.json + .log, prior_verdict.json, results.tgz
# (logs, loss curves, benchmark JSON) and the two exported priors (+ JSON configs), re-packed after every
# step, so a call cut short still returns what it measured.
#
# Prepare here (CPU machine), from the repository root:
#   scripts/device_wheels.sh        # .whl/: rasterio, dask, distributed ... for CPython 3.12 (~37 MiB)
#   scripts/pack_device_data.sh     # .device/: training data, dev images, BM3D-log cache (~41 MiB)
# The device tool carries at most 64 MiB per call (working tree included), so the two stages are two calls,
# the second right after the first (the machine stays warm for 30 s). The exact tool calls:
#   run(command="STAGES=e2e E2E_BUDGET=300 scripts/gpu_e2e.sh", carry=[".whl"], timeout_s=360)
#   run(command="STAGES=priors PRIOR_BUDGET=280 scripts/gpu_e2e.sh", carry=[".device"], timeout_s=330)
# then give_back. While other people edit the working tree, run a clean export of the commit instead (what
# travels is the working tree as it is): git archive HEAD geodiff tiling sensors bench scripts pyproject.toml
# README.md | tar -x -C .gpu/src (.gpu ignored, ~10 MiB without bench/results), dev images in .gpu/dev, and
#   run(command="cd .gpu/src && ln -sfn ../../.whl .whl && STAGES=speed,e2e DEV_IMAGES=../dev SPEED_LIMIT=4
#       E2E_BUDGET=165 bash scripts/gpu_e2e.sh", carry=[".whl", ".gpu"], timeout_s=240)
# A later call continues the priors: copy the returned gray2.* and sar.* into
# .device/resume/ here, carry .device again (the run restarts from those weights; on the same warm machine
# it resumes the exact checkpoint in $RUNS instead).
# Dry run on a CPU (tiny sizes, the tiny prior, a few training images; needs .device from
# pack_device_data.sh for the priors stage):
#   SMOKE=1 DEVICE=cpu OUT=/tmp/gpu_e2e_smoke scripts/gpu_e2e.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
SMOKE=${SMOKE:-0}
PY=${PY:-$([[ $SMOKE == 1 && -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
DEVICE=${DEVICE:-cuda}                 # training and the prior benchmarks
E2E_DEVICE=${E2E_DEVICE:-auto}         # the CLI's own choice (its default profile for that device)
STAGES=${STAGES:-e2e,priors}
R=${OUT:-out/gpu_e2e}
RES=${RES:-/tmp/geodiff_e2e_res}       # logs and benchmark JSON (packed into $OUT/results.tgz)
WORK=${WORK:-/tmp/geodiff_e2e_work}    # synthetic scenes and outputs
RUNS=${RUNS:-/tmp/geodiff_prior_runs}  # training runs: kept, so a second call on the same machine resumes
E2E_BUDGET=${E2E_BUDGET:-300}          # seconds for bench/gpu_e2e.py
PRIOR_BUDGET=${PRIOR_BUDGET:-280}      # seconds for the priors stage (training gets what evaluation leaves)
EVAL_RESERVE=${EVAL_RESERVE:-90}       # seconds kept for export, benchmarks and verdict
LEE_WORKERS=${LEE_WORKERS:-8}          # Lee row: dask worker processes (falls back to in-process)
# E2E_SIZES: the large scenes, in order (default "16384x16384 25000x17000"; "25000x17000" for the IW size alone)
DEV_VARIANTS=${DEV_VARIANTS:-jf-log-nfe100-lee-ens,jf-log-nfe40-bm3d-ens}  # bench/solvers_dev.py names
DEV_LOOKS=${DEV_LOOKS:-1 4}
# gray2 starts from the shipped gray (longer-trained successor); GRAY2_INIT= (empty) trains it from scratch
# with GRAY2_ARCH instead (a larger network; keep its fp16 weights <= 48 MB, e.g. width 48: 7.3 M, 15 MB)
GRAY2_ARCH=${GRAY2_ARCH:---width 48 --mult 1,2,2,3 --res-blocks 2 --attention}
mkdir -p "$R" "$RES" "$WORK" "$RUNS"
T0=$(date +%s)
say() { echo "[$(date +%T) +$(( $(date +%s) - T0 ))s] $*"; }
pack() {
  [[ -f $RES/prior_verdict.json ]] && cp "$RES/prior_verdict.json" "$R/"
  tar -czf "$R/results.tgz" -C "$RES" . && say "packed: $*"
}

# the carried wheels (only the e2e stage needs them: the priors stage reads images, caches and .npy)
if [[ $SMOKE != 1 && ($STAGES == *e2e* || $STAGES == *speed*) ]] && ls .whl/*.whl >/dev/null 2>&1; then  # the device README's line
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=/tmp/site || exit
  say "installed $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # geodiff itself from the working tree (no install)
nvidia-smi -L 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# ---- stage 0: network speed by batch and precision, and the quality of each setting (bench/gpu_speed.py) --
# DEV_IMAGES: a folder of PROTOCOL §1 dev .jpg images (the first SPEED_LIMIT are despeckled per setting).
# With E2E_PRECISION=auto the e2e stage then runs bf16 when it cost at most 0.02 dB PSNR (mean, each L)
# against fp32 at the same chunk and ran the network faster; otherwise fp32.
if [[ $STAGES == *speed* ]]; then
  say "stage speed"
  # shellcheck disable=SC2206  # the two lists split into words
  SPEED=(--chunks ${SPEED_CHUNKS:-16 64} --precisions ${SPEED_MODES:-fp32 bf16 bf16w compile graph} --repeat 10
         --limit "${SPEED_LIMIT:-8}" --looks 1 4)
  [[ $SMOKE == 1 ]] && SPEED=(--prior tiny --chunks 1 2 --precisions fp32 bf16 --tile 64 --repeat 2 --limit 1
                              --looks 1 --profile fast --settings fp32:1 bf16:1)
  [[ -n ${DEV_IMAGES:-} ]] && SPEED+=(--images "$DEV_IMAGES")
  $PY bench/gpu_speed.py --device "$DEVICE" "${SPEED[@]}" --out "$R/gpu_speed.json" 2>"$RES/gpu_speed.log" \
    | tee "$RES/gpu_speed_table.md"
  tail -n 4 "$RES/gpu_speed.log"
  cp "$R/gpu_speed.json" "$RES/" 2>/dev/null
  if [[ ${E2E_PRECISION:-auto} == auto ]]; then
    E2E_PRECISION=$($PY - "$R/gpu_speed.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
q = {(r["L"], r["precision"], r["chunk"]): r for r in d.get("quality", [])}
tp = {(r["precision"], r["chunk"]): r["ms_per_call"] for r in d["throughput"] if "ms_per_call" in r}
ok = bool(q) and all(abs(q[(L, "bf16", c)]["PSNR"] - q[(L, "fp32", c)]["PSNR"]) <= 0.02
                     for (L, p, c) in q if p == "bf16" and (L, "fp32", c) in q)
fast = all(tp[("bf16", c)] < tp[("fp32", c)] for (p, c) in tp if p == "bf16" and ("fp32", c) in tp)
print("bf16" if ok and fast else "fp32")
PYEOF
)
  fi
  say "e2e precision: ${E2E_PRECISION}"
  pack speed
fi
[[ -n ${E2E_PRECISION:-} && ${E2E_PRECISION} != auto ]] && export GEODIFF_GPU_PRECISION=$E2E_PRECISION

# ---- stage 1: end to end ------------------------------------------------------------------------------
if [[ $STAGES == *e2e* ]]; then
  if [[ $SMOKE == 1 ]]; then
    E2E=(--calib "" --sizes 256x192 100000x100000 --despeckle-args "--prior tiny --steps 1 --samples 1"
         --ref-prior tiny --ref-steps 1 --ref-tile 64 --lee-workers 0 --lee-share 0.2)
  else
    # shellcheck disable=SC2086  # E2E_SIZES is a list
    E2E=(--calib 2048x2048 --sizes ${E2E_SIZES:-16384x16384 25000x17000} --lee-workers "$LEE_WORKERS")
  fi
  [[ $SMOKE == 1 && $E2E_DEVICE == auto ]] && E2E_DEVICE=$DEVICE
  if ! $PY -c "import rasterio, dask" 2>/dev/null; then
    say "rasterio/dask missing: run scripts/device_wheels.sh on the CPU machine and carry .whl"; exit 2
  fi
  say "stage e2e (budget ${E2E_BUDGET}s)"
  # JSON and log straight into $OUT (rewritten after every row): a call cut short keeps what was measured
  $PY bench/gpu_e2e.py "${E2E[@]}" --budget "$E2E_BUDGET" --device "$E2E_DEVICE" --workdir "$WORK" \
    --out "$R/gpu_e2e.json" 2>"$R/gpu_e2e.log" | tee "$RES/gpu_e2e_table.md"
  tail -n 5 "$R/gpu_e2e.log"
  cp "$R/gpu_e2e.json" "$R/gpu_e2e.log" "$RES/" 2>/dev/null
  rm -f "$WORK"/scene_*.tif  # a later call makes its scenes again (disk)
  pack e2e
fi

# ---- stage 2: stronger priors -------------------------------------------------------------------------
if [[ $STAGES == *priors* ]]; then
  TP=$(date +%s)
  D=$PWD/.device/data
  export GEODIFF_SHARED_DATA=$D GEODIFF_BM3D_CACHE=$PWD/.device/bm3d_cache
  if [[ ! -d $D ]]; then
    say "no .device/data: run scripts/pack_device_data.sh on the CPU machine and carry .device"; exit 2
  fi
  M=$D/mva_multitemporal_reference/despeckled_renderings_uint8
  # training data: the shared training set without the dev images (virtual_sar_clean_gray 01900-01949 and
  # the two multi-temporal references, which are PROTOCOL §1 dev images); 01850-01859 validate gray2
  GRAY_SRC=("$D/virtual_sar_clean_gray" "$D/packed" "$M")
  SAR_SRC=("$M")
  GRAY_VAL=(); for f in "$D"/virtual_sar_clean_gray/0185?.jpg; do GRAY_VAL+=(--val "$f"); done
  SAR_VAL=(--val "$M/tiles/marais1_24_tile7.png" --val "$M/lely_dates/lely_30.png")
  INIT=gray; CURRENT=gray
  TRAIN=(--tile 128 --batch 64 --lr 2e-4 --warmup 100 --ema 0.999 --val-every 250 --save-every 500 --threads 4)
  DENOISE=(); DEV=(--batch 26)
  if [[ $SMOKE == 1 ]]; then  # same paths, toy sizes
    GRAY_SRC=("$D"/virtual_sar_clean_gray/0100[0-5].jpg "$M/tiles/marais1_24_tile0.png")
    SAR_SRC=("$M/tiles/marais1_24_tile0.png" "$M/tiles/marais1_24_tile1.png")
    GRAY_VAL=(--val "$D/virtual_sar_clean_gray/01850.jpg")
    INIT=tiny; CURRENT=tiny
    TRAIN=(--tile 32 --batch 4 --lr 2e-4 --warmup 2 --ema 0.9 --val-every 2 --save-every 2 --threads 1 --steps 4)
    DENOISE=(--limit 2 --sigmas 25); DEV=(--limit 1 --batch 1); DEV_VARIANTS=jf-log-nfe20-bm3d; DEV_LOOKS=1
  fi
  left=$(( PRIOR_BUDGET - ($(date +%s) - TP) - EVAL_RESERVE - 30 ))  # 30 s: data loading before the clock
  MIN=$($PY -c "print(max(0.1, $left / 60))")
  say "stage priors (budget ${PRIOR_BUDGET}s): training ${MIN} min per prior, both at once"
  start_args() {  # resume the exact checkpoint, else continue from returned weights, else from $2
    local m=$1 init=$2
    if [[ -f $RUNS/$m/state.json ]]; then
      local done_min
      done_min=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['elapsed_s'] / 60)" \
        "$RUNS/$m/state.json")
      echo "--resume --max-minutes $($PY -c "print($done_min + $MIN)")"
    elif [[ -f .device/resume/$m.safetensors ]]; then
      echo "--init .device/resume/$m.safetensors --max-minutes $MIN"
    elif [[ -n $init ]]; then
      echo "--init $init --max-minutes $MIN"
    else
      echo "$GRAY2_ARCH --lr 5e-4 --warmup 500 --max-minutes $MIN"
    fi
  }
  # shellcheck disable=SC2046  # start_args's words are options
  $PY -m geodiff.cli train "${GRAY_SRC[@]}" "${GRAY_VAL[@]}" --exclude '019[0-4]?.jpg' --data-root "$D" \
    --name gray2 --out "$RUNS/gray2" --device "$DEVICE" --steps 1000000 "${TRAIN[@]}" --weights-dtype float16 \
    --seed 1 --quiet $(start_args gray2 "${GRAY2_INIT-$INIT}") >"$RES/train_gray2.log" 2>&1 &
  # shellcheck disable=SC2046
  $PY -m geodiff.cli train "${SAR_SRC[@]}" "${SAR_VAL[@]}" --data-root "$D" \
    --name sar --out "$RUNS/sar" --device "$DEVICE" --steps 1000000 "${TRAIN[@]}" --weights-dtype float16 \
    --seed 2 --quiet $(start_args sar "$INIT") >"$RES/train_sar.log" 2>&1 &
  while [[ -n $(jobs -r) ]]; do
    sleep 5; say "$(tail -qn1 "$RES"/train_*.log 2>/dev/null | cut -c1-120 | tr '\n' '|')"
  done
  wait
  WEIGHTS=(); NAMES=()
  export GEODIFF_MODELS=$RUNS/models  # the benchmarks load the new priors by name (no paths in their JSON)
  mkdir -p "$GEODIFF_MODELS"
  for m in gray2 sar; do
    if [[ -f $RUNS/$m/state.json ]]; then
      say "$m: $($PY -m geodiff.cli models export "$RUNS/$m" 2>&1 | tail -n 1)"
      cp "$RUNS/$m/$m.safetensors" "$RUNS/$m/$m.json" "$R/"
      cp "$RUNS/$m/loss_log.csv" "$RES/loss_$m.csv"
      cp "$RUNS/$m/$m.safetensors" "$RUNS/$m/$m.json" "$GEODIFF_MODELS/"
      WEIGHTS+=("$GEODIFF_MODELS/$m.safetensors"); NAMES+=("$m")
    else
      say "$m: training failed: $(tail -n 3 "$RES/train_$m.log")"
    fi
  done
  pack training
  # the benchmarks of the three priors at once (the GPU has room; each writes its own JSON and log)
  $PY bench/prior_denoise.py --priors "$CURRENT" "${NAMES[@]}" --no-bm3d --n-samples 0 --device "$DEVICE" \
    --threads 4 "${DENOISE[@]}" --out "$RES/prior_denoise.json" >"$RES/prior_denoise.md" \
    2>"$RES/prior_denoise.log" &
  DEVJ=()
  for n in "$CURRENT" "${NAMES[@]}"; do
    # shellcheck disable=SC2086  # DEV_LOOKS is a list
    $PY bench/solvers_dev.py --prior "$n" --variants "$DEV_VARIANTS" --looks $DEV_LOOKS --device "$DEVICE" \
      "${DEV[@]}" --threads 2 --out "$RES/solvers_dev_$n.json" >"$RES/solvers_dev_$n.md" \
      2>"$RES/solvers_dev_$n.log" &
    DEVJ+=("$RES/solvers_dev_$n.json")
  done
  wait
  tail -n 8 "$RES/prior_denoise.md"
  for n in "$CURRENT" "${NAMES[@]}"; do grep '^| sar-dps' "$RES/solvers_dev_$n.md" | sed "s/^/$n /"; done
  $PY bench/prior_verdict.py --current "$CURRENT" --candidates gray2 sar --denoise "$RES/prior_denoise.json" \
    --dev "${DEVJ[@]}" --weights "${WEIGHTS[@]}" --out "$RES/prior_verdict.json"
  pack priors
fi
say "done"
