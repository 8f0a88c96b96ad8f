#!/usr/bin/env bash
# The README's main job: install (once), then process the bundled Sentinel-1 sample scene.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mkdir -p out
.venv/bin/geodiff despeckle geodiff/data/sample_s1_vv_gamma0.tif out/sample_s1_vv_gamma0_refined_lee.tif \
    --method refined-lee --overwrite
.venv/bin/python -c "from geodiff.quicklook import before_after_png as q; print(q('geodiff/data/sample_s1_vv_gamma0.tif', 'out/sample_s1_vv_gamma0_refined_lee.tif', 'out/before_after.png', labels=('Sentinel-1 VV (input)', 'refined Lee')))"
.venv/bin/geodiff qa geodiff/data/sample_s1_vv_gamma0.tif out/sample_s1_vv_gamma0_refined_lee.tif
