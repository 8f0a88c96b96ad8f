#!/usr/bin/env bash
# The README's main job: install (once), then process the bundled Sentinel-1 sample scene.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mkdir -p out
.venv/bin/geodiff despeckle geodiff/data/sample_s1_vv_gamma0.tif out/sample_s1_vv_gamma0_refined_lee.tif \
    --method refined-lee --overwrite
