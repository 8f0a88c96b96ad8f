#!/usr/bin/env bash
# GPU sweep of SAR-DPS settings on the full PROTOCOL §1 dev set with the shipped gray prior
# (BM3D-log inits from the carried cache; see scripts/pack_device_data.sh). Results: $OUT/sweep.json.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export GEODIFF_SHARED_DATA=$PWD/.device/data GEODIFF_BM3D_CACHE=$PWD/.device/bm3d_cache
PY=${PY:-python3}
R=${OUT:-out/gpu}; mkdir -p "$R"
V=jf-log-nfe40-bm3d-ens,jf-log-nfe100-bm3d-ens,jf-log-nfe100-bm3d,jf-log-nfe100-5x20-ens
V=$V,jf-log-nfe100-s15-ens,jf-log-nfe100-z2-ens,jf-log-nfe100-s07-ens,jf-log-nfe100-z05-ens
V=$V,jf-log-nfe100-20x5-ens,jf-log-nfe100-s20-ens,jf-log-nfe100-s15-z2-ens,jf-log-nfe100-eta5-ens
V=$V,jf-log-nfe100-ds03-ens,jf-log-nfe100-n1-ens,jf-int-nfe100-bm3d-ens,jac-log-nfe40-bm3d-ens
V=$V,jf-log-nfe100-lee-ens,jf-log-nfe100-noise
for L in 4 1; do
  $PY bench/solvers_dev.py --prior gray --variants "$V" --looks $L --batch 26 --device "${DEVICE:-cuda}" \
    ${LIMIT:+--limit $LIMIT} --out "$R/sweep_L$L.json" 2>&1 | grep '^|'
done
