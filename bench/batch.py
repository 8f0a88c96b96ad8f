"""Batch throughput: N scenes x {in-process, 1 worker, 2 workers} with Lee and SAR-DPS (tiny prior).

Every configuration runs in a fresh Python process (so peak RSS is its own): the scenes go through
:func:`geodiff.apps.batch.run_batch` into a new folder, on a process-based dask ``LocalCluster``
(one thread per worker) or in-process. Reported: scenes/min, Mpx/s, peak RSS of the client and of
each worker (``ru_maxrss``), and the 2-worker / 1-worker throughput ratio per method. Outputs of 1
and 2 workers must be byte-identical; whether they equal the in-process ones is reported (SAR-DPS
depends on torch's thread count: in-process uses every core, a dask worker one thread).

    python bench/batch.py --scenes 6 --size 1024 --dps-size 512 [--methods lee sar-dps] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = {
    "lee": {"method": "lee", "tile": 256},
    "sar-dps": {"method": "sar-dps", "prior": "tiny", "steps": 1, "samples": 1, "device": "cpu"},
}
MODES = {"in-process": 0, "1 worker": 1, "2 workers": 2}


def make_scenes(folder: Path, n: int, size: int) -> list[Path]:
    """``n`` size x size scenes: the bundled sample mirrored to size, each rolled differently."""
    import rasterio
    from rasterio.transform import from_origin

    import geodiff

    with rasterio.open(geodiff.sample_scene()) as src:
        base, profile, tags = src.read(1), src.profile, src.tags()
    reps = -(-size // base.shape[0])
    big = np.tile(np.concatenate([base, base[::-1]], 0), (reps, reps))[:size, :size]
    paths = []
    for i in range(n):
        data = np.roll(big, 37 * i, axis=(0, 1))
        prof = {**profile, "width": size, "height": size, "transform": from_origin(500000, 5200000, 10, 10)}
        p = folder / f"scene{i:02d}.tif"
        with rasterio.open(p, "w", **prof) as dst:
            dst.write(data[None])
            dst.update_tags(**tags)
        paths.append(p)
    return paths


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(scenes: list[str], out: str, method: str, workers: int) -> dict:
    """One configuration in this process (called in a fresh subprocess by :func:`main`)."""
    from geodiff.apps.batch import run_batch

    cluster = client = None
    if workers:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
    t0, c0 = time.perf_counter(), time.process_time()
    recs = run_batch(scenes, out, client=client, **METHODS[method])
    seconds, client_cpu = time.perf_counter() - t0, time.process_time() - c0
    worker_rss = []
    if client is not None:
        worker_rss = sorted(round(v / 1024, 1) for v in client.run(_worker_rss).values())
        client.close()
        cluster.close()
    assert all(r["status"] == "done" for r in recs), [r.get("error") for r in recs]
    mpx = sum(r["width"] * r["height"] for r in recs) / 1e6
    return {
        "method": method,
        "workers": workers,
        "scenes": len(recs),
        "seconds": round(seconds, 2),
        "scenes_per_min": round(60 * len(recs) / seconds, 2),
        "mpx_per_s": round(mpx / seconds, 3),
        "client_cpu_s": round(client_cpu, 2),
        "client_peak_rss_mb": round(_rss_mb(), 1),
        "worker_peak_rss_mb": worker_rss,
        "sha256": [r["output_sha256"] for r in recs],
    }


def _worker_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--size", type=int, default=1024, help="Lee scenes' edge (px)")
    ap.add_argument("--dps-size", type=int, default=512, help="SAR-DPS scenes' edge (px)")
    ap.add_argument("--methods", nargs="+", default=["lee", "sar-dps"], choices=sorted(METHODS))
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "batch.json"))
    ap.add_argument("--one", nargs=3, metavar=("OUT", "METHOD", "WORKERS"), help=argparse.SUPPRESS)
    ap.add_argument("--inputs", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        out, method, workers = args.one
        print(json.dumps(run_one(args.inputs, out, method, int(workers))))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"lee": args.size, "sar-dps": args.dps_size}
        sets = {}
        for size in sorted(set(sizes.values())):
            (Path(tmp) / str(size)).mkdir()
            sets[size] = [str(p) for p in make_scenes(Path(tmp) / str(size), args.scenes, size)]
        for method in args.methods:
            scenes = sets[sizes[method]]
            for mode, workers in MODES.items():
                out = str(Path(tmp) / f"out-{method}-{workers}")
                cmd = [sys.executable, __file__, "--one", out, method, str(workers), "--inputs", *scenes]
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                row = {"mode": mode, "size": sizes[method], **json.loads(res.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(
                    f"{method:8s} {mode:10s} {row['seconds']:7.2f} s {row['scenes_per_min']:7.2f} scenes/min "
                    f"{row['mpx_per_s']:7.3f} Mpx/s client {row['client_peak_rss_mb']:6.0f} MB "
                    f"workers {row['worker_peak_rss_mb']} MB",
                    file=sys.stderr,
                )
    notes = []
    for method in args.methods:
        by = {r["workers"]: r for r in rows if r["method"] == method}
        assert by[1]["sha256"] == by[2]["sha256"], f"{method}: 1 and 2 workers wrote different outputs"
        same = by[0]["sha256"] == by[1]["sha256"]
        ratio = by[2]["mpx_per_s"] / by[1]["mpx_per_s"]
        notes.append(
            f"{method}: 2 workers / 1 worker = {ratio:.2f}x; outputs of 1 and 2 workers byte-identical, "
            f"{'identical to' if same else 'DIFFERENT from'} in-process"
        )
        for r in rows:
            if r["method"] == method:
                r["ratio_2_over_1"] = round(ratio, 3)
                r["identical_to_in_process"] = same
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(
        "| method | mode | scenes | s | scenes/min | Mpx/s | client CPU s | client peak RSS MB "
        "| worker peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        wrss = ", ".join(map(str, r["worker_peak_rss_mb"])) or "-"
        print(
            f"| {r['method']} | {r['mode']} | {r['scenes']} x {r['size']}² | {r['seconds']} "
            f"| {r['scenes_per_min']} | {r['mpx_per_s']} | {r['client_cpu_s']} "
            f"| {r['client_peak_rss_mb']} | {wrss} |"
        )
    print("\n" + "\n".join(notes))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r["sha256"] = hashlib.sha256("".join(r["sha256"]).encode()).hexdigest()[:16]  # digest of the outputs
    Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
