#!/usr/bin/env bash
# The README's main job: install (once), then despeckle the bundled Sentinel-1 sample scene with SAR-DPS
# on the CPU (about two minutes on 2 cores), write a before/after quick-look and print the QA.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mkdir -p out
IN=geodiff/data/sample_s1_vv_gamma0.tif
OUT=out/sample_s1_vv_gamma0_sar_dps.tif
time .venv/bin/geodiff despeckle "$IN" "$OUT" --overwrite
.venv/bin/geodiff quicklook "$IN" "$OUT" out/before_after.png --labels "Sentinel-1 VV (input)" "SAR-DPS (default profile)"
.venv/bin/geodiff qa "$IN" "$OUT"
