"""Benchmark: peak RSS of the DPS fusion job (`geodiff fuse`) as the optical scene grows.

Synthetic co-registered pairs (UTM, 10 m): a 4-band uint16 optical scene (B02, B03, B04, B08, nodata 0,
reflectance x 10000) and a 1-band float32 VV dB scene (4-look speckle), tiled GeoTIFFs written block
by block, of 1024², 4096² and 8192² px, go through ``geodiff.apps.fuse.scene.fuse_scene`` with the
default pipeline (Lee on the SAR in its own geometry, per-pixel weights, Laplacian start, DPS streamed
block by block through the tiling runner with per-step blending, COG written block by block). To keep
the 8192² run short on a CPU the sampler is cut down: the ``tiny`` prior, 1 step, 5 prox iterations
(the per-tile working set is the same shape; the default's is that of one 256² tile batch). Each
case runs in its own subprocess and reports its own peak RSS (``ru_maxrss``), wall time and whether
the output kept the optical CRS, transform, band names, dtype and nodata.

    nice -n 10 .venv/bin/python bench/fusion_memory.py [--sizes 1024 4096 8192] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "fusion_memory.json"
SETTINGS = {"prior": "tiny", "steps": 1, "prox_iters": 5}


def make_pair(optical: Path, sar: Path, size: int, block: int = 1024) -> None:
    """Write the optical and SAR scenes block by block (deterministic per block)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    common = {
        "driver": "GTiff", "width": size, "height": size, "tiled": True, "blockxsize": 512,
        "blockysize": 512, "BIGTIFF": "IF_SAFER", "crs": "EPSG:32632",
        "transform": from_origin(500000, 5200000, 10, 10),
    }  # fmt: skip
    with (
        rasterio.open(optical, "w", count=4, dtype="uint16", nodata=0, **common) as o,
        rasterio.open(sar, "w", count=1, dtype="float32", **common) as s,
    ):
        o.descriptions = ("B02", "B03", "B04", "B08")
        for r0 in range(0, size, block):
            for c0 in range(0, size, block):
                h, w = min(block, size - r0), min(block, size - c0)
                yy, xx = np.mgrid[r0 : r0 + h, c0 : c0 + w].astype(np.float32)
                field = 0.5 + 0.3 * np.sin(yy / 41.0) * np.cos(xx / 67.0) + 0.2 * ((xx // 128 + yy // 96) % 2)
                rng = np.random.default_rng([r0, c0])
                bands = [field * k + 0.01 * rng.standard_normal((h, w)) for k in (0.08, 0.1, 0.12, 0.3)]
                o.write(
                    np.clip(np.stack(bands) * 10000, 1, 65535).astype(np.uint16), window=Window(c0, r0, w, h)
                )
                sigma0 = 0.05 * (1.2 - field + 0.5 * ((xx // 200) % 2)) * rng.gamma(4.0, 0.25, (h, w))
                s.write((10 * np.log10(sigma0))[None].astype(np.float32), window=Window(c0, r0, w, h))


def child(optical: str, sar: str, out: str) -> None:
    """Run one fusion and print its wall time, peak RSS (MiB) and what the output kept, as JSON."""
    import rasterio
    import torch

    from geodiff.apps.fuse.scene import fuse_scene

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    summary = fuse_scene(optical, sar, out, overwrite=True, **SETTINGS)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    with rasterio.open(optical) as a, rasterio.open(out) as b:
        kept = {
            "crs": a.crs == b.crs, "transform": a.transform == b.transform,
            "descriptions": a.descriptions == b.descriptions, "dtype": a.dtypes == b.dtypes,
            "nodata": a.nodata == b.nodata,
        }  # fmt: skip
    print(json.dumps({"wall_s": wall, "peak_rss_mib": peak, "kept": kept, "blocks": summary.get("blocks")}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="geodiff_fusemem_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        opt, sar = work / f"s2_{size}.tif", work / f"s1_{size}.tif"
        if not opt.exists():
            make_pair(opt, sar, size)
        out = work / f"fused_{size}.tif"
        cmd = [sys.executable, __file__, "--child", str(opt), str(sar), str(out)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({"size": size, "mpx": size * size / 1e6, **r})
        print(f"{size}²: {r['peak_rss_mib']:.0f} MiB, {r['wall_s']:.1f} s, kept {r['kept']}", flush=True)
    print("| optical scene | Mpx | blocks | peak RSS | wall | CRS, transform, names, dtype, nodata kept |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        kept = "yes" if all(r["kept"].values()) else f"NO: {r['kept']}"
        print(
            f"| {r['size']}² | {r['mpx']:.1f} | {r['blocks']} | {r['peak_rss_mib']:.0f} MiB | "
            f"{r['wall_s']:.1f} s | {kept} |"
        )
    peaks = [r["peak_rss_mib"] for r in rows]
    ratio = max(peaks) / peaks[0] if len(peaks) > 1 else None
    if ratio is not None:
        print(f"largest / first scene peak RSS: {ratio:.2f}x")
    RESULTS.parent.mkdir(exist_ok=True)
    doc = {"settings": SETTINGS, "rows": rows, "peak_ratio_vs_first": ratio}
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
