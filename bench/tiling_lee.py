"""Benchmark: Lee filter through the tiling engine vs on the whole array in memory.

Synthetic single-band intensity scenes (smooth reflectivity x 4-look gamma speckle) of 1k², 4k²
and 16k² px are written block by block to tiled GeoTIFFs (16k² float32 = 1 GiB, never held in
memory). Each measurement runs in its own subprocess; peak RSS is that child's ru_maxrss.

* tiled:     tiling.runner.run_raster (read block + halo, Lee 7x7, write window, COG at the end)
* in-memory: read the whole band, Lee on the whole array, write it in one window (same COG path)

Throughput is megapixels per second of wall time, end to end (read, filter, write, COG).

    nice -n 10 .venv/bin/python bench/tiling_lee.py [--sizes 1024 4096 16384] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOOKS, WINDOW, BLOCK = 4.0, 7, 1024
IN_MEMORY_MAX = 4096  # 16k² in memory needs ~1 GiB input + ~10 GiB float64 temporaries: not on a shared box


def make_scene(path: Path, size: int, block: int = 1024) -> None:
    """Write a size x size float32 speckled scene block by block (deterministic per block)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    prof = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32",
        "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER",
        "crs": "EPSG:32632", "transform": from_origin(500000, 5200000, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **prof) as dst:
        for r0 in range(0, size, block):
            for c0 in range(0, size, block):
                h, w = min(block, size - r0), min(block, size - c0)
                yy, xx = np.mgrid[r0 : r0 + h, c0 : c0 + w].astype(np.float32)
                clean = 1.0 + 0.8 * np.sin(yy / 97.0) * np.cos(xx / 53.0) + (xx > size / 2)
                rng = np.random.default_rng([r0, c0])
                speckle = rng.gamma(LOOKS, 1.0 / LOOKS, (h, w)).astype(np.float32)
                dst.write((clean * speckle)[None], window=Window(c0, r0, w, h))


def child(mode: str, src: str, out: str) -> None:
    """Run one measurement and print its wall time as JSON (peak RSS is read by the parent)."""
    import functools

    from geodiff.apps.despeckle.methods import _classical_block
    from tiling.cog import CogWriter
    from tiling.geometry import PixelWindow
    from tiling.plan import TileSpec
    from tiling.raster_io import open_raster, read_meta
    from tiling.runner import RasterOutput, run_raster

    fn = functools.partial(_classical_block, name="lee", looks=LOOKS, window=WINDOW, units="intensity")
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "tiled":
        spec = TileSpec(tile=BLOCK, overlap=0, halo=WINDOW // 2, block_tiles=1)
        run_raster(src, out, fn, spec, kind="array", output=RasterOutput(overwrite=True))
    else:
        with open_raster(src) as ds:
            meta, data = read_meta(ds), ds.read()
        r = WINDOW // 2
        padded = np.pad(data, ((0, 0), (r, r), (r, r)), mode="reflect")
        result = fn(padded, np.ones(padded.shape, bool))[:, r:-r, r:-r]
        with CogWriter(out, meta, overwrite=True) as w:
            w.write(result, PixelWindow(0, 0, meta.height, meta.width))
    print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}))


def measure(mode: str, src: Path, out: Path) -> dict:
    """Run one child under a fresh wrapper process, whose RUSAGE_CHILDREN peak is that child's alone."""
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH, __file__, mode, str(src), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "tiling_lee.json")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="geodiff-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        src = work / f"scene_{size}.tif"
        make_scene(src, size)
        row = {"size": size, "mpx": size * size / 1e6}
        for mode in ("tiled", "memory"):
            if mode == "memory" and size > IN_MEMORY_MAX:
                row[mode] = None
                continue
            out = work / f"out_{mode}_{size}.tif"
            res = measure(mode, src, out)
            res["mpx_per_s"] = row["mpx"] / res["seconds"]
            res["mpx_per_cpu_s"] = row["mpx"] / res["cpu_seconds"]
            row[mode] = res
            out.unlink(missing_ok=True)
        src.unlink(missing_ok=True)
        rows.append(row)
        print(_fmt(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"looks": LOOKS, "window": WINDOW, "block": BLOCK, "cpus": os.cpu_count(), "rows": rows}
    args.json.write_text(json.dumps(meta, indent=2))
    print("\n" + table(rows))


_FRESH = """
import json, resource, subprocess, sys
bench, mode, src, out = sys.argv[1:]
cmd = [sys.executable, bench, "--child", mode, src, out]
p = subprocess.run(cmd, capture_output=True, text=True, check=True)
r = json.loads(p.stdout.strip().splitlines()[-1])
r["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(r))
"""


def _fmt(row: dict) -> str:
    def cell(r: dict | None) -> str:
        if r is None:
            return "n/a"
        return (
            f"{r['peak_rss_kib'] / 1024:.0f} MiB, {r['mpx_per_s']:.2f} Mpx/s wall ({r['seconds']:.1f} s), "
            f"{r['mpx_per_cpu_s']:.2f} Mpx/CPU-s"
        )

    return f"{row['size']}²: tiled {cell(row['tiled'])}; in memory {cell(row['memory'])}"


def table(rows: list[dict]) -> str:
    lines = [
        "| scene | Mpx | tiled peak RSS | tiled Mpx/s wall | tiled Mpx/CPU-s "
        "| in-memory peak RSS | in-memory Mpx/s wall | in-memory Mpx/CPU-s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        t, m = row["tiled"], row["memory"]
        mem = (
            ("not run", "n/a", "n/a")
            if m is None
            else (f"{m['peak_rss_kib'] / 1024:.0f} MiB", f"{m['mpx_per_s']:.2f}", f"{m['mpx_per_cpu_s']:.2f}")
        )
        lines.append(
            f"| {row['size']}² | {row['mpx']:.1f} | {t['peak_rss_kib'] / 1024:.0f} MiB "
            f"| {t['mpx_per_s']:.2f} | {t['mpx_per_cpu_s']:.2f} | {mem[0]} | {mem[1]} | {mem[2]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
