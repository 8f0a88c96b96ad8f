"""Benchmark: peak RSS of the despeckle job, with and without its QA pass, as the scene grows.

Synthetic single-band intensity scenes (smooth reflectivity x 4-look gamma speckle, tiled float32
GeoTIFFs written block by block, as in ``tiling_lee.py``) of 2048² and 8192² px go through
``geodiff.apps.despeckle.scene.despeckle_scene`` (Lee 7x7, L = 4, units intensity) with ``qa=True``
and ``qa=False``. Each case runs in its own subprocess, which reports its own peak RSS
(``ru_maxrss``) and wall time. ``--sar-dps`` adds the default SAR-DPS run on the bundled 512² sample.

    nice -n 10 .venv/bin/python bench/memory.py [--sizes 2048 8192] [--sar-dps] [--workdir DIR]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiling_lee import make_scene  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"


def child(method: str, src: str, out: str, qa: bool) -> None:
    """Run one job and print its wall time and peak RSS (MiB) as JSON."""
    from geodiff.apps.despeckle.scene import despeckle_scene

    t0 = time.perf_counter()
    extra = {} if method == "sar-dps" else {"units": "intensity", "looks": 4.0}
    despeckle_scene(src, out, method, qa=qa, progress=False, **extra)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"wall_s": wall, "peak_rss_mib": peak}))


def measure(method: str, src: Path, out: Path, qa: bool) -> dict:
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", method, str(src), str(out), "1" if qa else "0"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--sar-dps", action="store_true", help="also the default SAR-DPS run on the sample")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="geodiff_mem_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        src = work / f"scene_{size}.tif"
        if not src.exists():
            make_scene(src, size)
        for qa in (True, False):
            r = measure("lee", src, work / f"out_{size}.tif", qa)
            rows.append({"case": f"lee 7x7, {size}²", "qa": qa, "mpx": size * size / 1e6, **r})
    if args.sar_dps:
        import geodiff

        src = Path(geodiff.sample_scene())
        r = measure("sar-dps", src, work / "out_sample.tif", True)
        rows.append({"case": "sar-dps default, sample 512²", "qa": True, "mpx": 512 * 512 / 1e6, **r})
    print("| case | QA | Mpx | peak RSS | wall |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in rows:
        qa = "yes" if r["qa"] else "no"
        print(f"| {r['case']} | {qa} | {r['mpx']:.1f} | {r['peak_rss_mib']:.0f} MiB | {r['wall_s']:.1f} s |")
    lee_qa = {r["mpx"]: r["peak_rss_mib"] for r in rows if r["case"].startswith("lee") and r["qa"]}
    ratio = max(lee_qa.values()) / min(lee_qa.values()) if len(lee_qa) > 1 else None
    if ratio is not None:
        print(f"Lee with QA, largest / smallest scene peak RSS: {ratio:.2f}x")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "lee_qa_peak_ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")
    else:
        main()
