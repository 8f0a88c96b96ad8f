"""End-to-end despeckling benchmarks through the CLI (`geodiff despeckle`, in-process via click).

    .venv/bin/python bench/despeckle_e2e.py quality [--limit 12] [--looks 1 4]   # PROTOCOL §1
    .venv/bin/python bench/despeckle_e2e.py real                                  # PROTOCOL §2
    .venv/bin/python bench/despeckle_e2e.py speed                                 # Mpx/s, sample scene

quality: each dev image (PROTOCOL §1: clean a = (g + 1)/256, y = a² · Gamma(L, 1/L), default_rng(1234 + L),
the same draws as bench/solvers_dev.py) is written as an intensity GeoTIFF and despeckled by the CLI with
sar-dps (default settings) and the classical filters; PSNR/SSIM on amplitude in [0, 1]. BM3D-log comes
from bench/solvers_dev.py's cache. real: sar2sar single-look crops (amplitude, L = 1), the S1 RTC scene
(L estimated) and the BigEarthNet S1 bands (dB) through the CLI; QA from the output's GEODIFF_QA tags.
speed: the bundled 512² scene, sar-dps vs Lee vs refined Lee, end to end (read, tile, sample, blend,
write COG, QA), with reference DPS (1000 NFE + back-propagation) extrapolated from bench/solver_speed.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import solvers_dev  # noqa: E402  (dev set, speckle draws, BM3D-log cache)

from geodiff.cli import cli  # noqa: E402

RESULTS = REPO / "bench" / "results"
PROFILE = dict(driver="GTiff", count=1, dtype="float32", crs="EPSG:32632")


def cli_despeckle(src: Path, out: Path, *args: str) -> dict:
    res = CliRunner().invoke(cli, ["despeckle", str(src), str(out), "--overwrite", "--json", *args],
                             env={"GEODIFF_PROGRESS": "none"})  # fmt: skip
    if res.exit_code != 0:
        raise RuntimeError(f"geodiff despeckle failed: {res.output[-800:]}")
    return json.loads(res.stdout)


def write_tif(path: Path, data: np.ndarray, description: str) -> Path:
    h, w = data.shape
    tr = rasterio.Affine(10, 0, 500000, 0, -10, 5000000)
    with rasterio.open(path, "w", width=w, height=h, transform=tr, **PROFILE) as d:
        d.write(data[None].astype(np.float32))
        d.set_band_description(1, description)
    return path


def read1(path: Path) -> np.ndarray:
    with rasterio.open(path) as d:
        return d.read(1).astype(np.float64)


def quality(args: argparse.Namespace) -> None:
    images = solvers_dev.load_dev(args.limit)
    methods = {"sar-dps": [], "lee": ["--method", "lee"], "refined-lee": ["--method", "refined-lee"]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for looks in args.looks:
            ys = solvers_dev.speckle(images, looks, len(images))
            scores: dict[str, list] = {m: [] for m in [*methods, "bm3d-log", "noisy"]}
            secs: dict[str, float] = {m: 0.0 for m in methods}
            for (name, a), y in zip(images, ys, strict=True):
                src = write_tif(Path(tmp) / "in.tif", y, "intensity (linear power)")
                scores["noisy"].append(solvers_dev.score(a, y))
                scores["bm3d-log"].append(
                    solvers_dev.score(a, solvers_dev.bm3d_log_cached(name, y, looks)[0])
                )
                for m, extra in methods.items():
                    t = time.perf_counter()
                    cli_despeckle(src, Path(tmp) / "out.tif", "--looks", str(looks), *extra)
                    secs[m] += time.perf_counter() - t
                    scores[m].append(solvers_dev.score(a, read1(Path(tmp) / "out.tif")))
                print(f"L={looks} {name}: " + ", ".join(f"{m} {s[-1][0]:.2f}" for m, s in scores.items()),
                      file=sys.stderr, flush=True)  # fmt: skip
            for m, s in scores.items():
                p, q = np.mean([v[0] for v in s]), np.mean([v[1] for v in s])
                rows.append(dict(method=m, L=looks, PSNR=float(p), SSIM=float(q), images=len(s),
                                 s_per_image=secs.get(m, 0.0) / len(s)))  # fmt: skip
    print("| method | L | PSNR | SSIM | s/image (CLI, CPU) | images |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            r["method"],
            r["L"],
            f"{r['PSNR']:.2f}",
            f"{r['SSIM']:.4f}",
            f"{r['s_per_image']:.1f}",
            r["images"],
        ]
        print("| " + " | ".join(map(str, cells)) + " |")
    save("despeckle_e2e_quality.json", rows)


def real(args: argparse.Namespace) -> None:
    data = solvers_dev.DATA
    cases = []
    for p in sorted((data / "sar2sar_s1_singlelook").glob("*.npy"))[: args.limit]:
        cases.append((p.stem, np.load(p).astype(np.float64), "amplitude", ["--looks", "1"]))
    rtc = data / "s1_rtc_geotiff" / "sentinel1_rtc_vv_gamma0_epsg32632.tif"
    cases.append((rtc.name, None, None, []))
    for p in sorted((data / "bigearthnet_s1s2_pairs").glob("*/s1_VV_VH_db.tif")):
        cases.append((p.parent.name[-5:] + "/s1_VV_VH_db", p, None, []))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, arr, units, extra in cases:
            if isinstance(arr, np.ndarray):
                src = write_tif(Path(tmp) / "in.tif", np.abs(arr), f"single-look {units}")
                extra = [*extra, "--sensor", "sar-amplitude"]
            else:
                src = arr if arr is not None else rtc
            t = time.perf_counter()
            s = cli_despeckle(src, Path(tmp) / "out.tif", *extra)
            for b, q in enumerate(s["qa"]):
                keys = ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output")
                qa = {k: q.get(k) for k in keys}
                rows.append(dict(scene=name, band=b + 1, units=s["units"], looks=s["looks"],
                                 seconds=time.perf_counter() - t, **qa))  # fmt: skip
                r = rows[-1]
                print(
                    f"{name} b{b + 1}: ratio {r['ratio_mean']:.3f} bias {r['bias_db']:+.2f} dB",
                    file=sys.stderr,
                )
    print("| scene | band | units | L | ratio mean | L·var(r) | bias dB | ENL in → out |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["scene"], r["band"], r["units"], f"{r['looks']:.2f}", f"{r['ratio_mean']:.3f}",
                 f"{r['ratio_var_times_looks']:.2f}", f"{r['bias_db']:+.2f}",
                 f"{r['enl_input']:.1f} → {r['enl_output']:.1f}"]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
    ok = [abs(r["ratio_mean"] - 1) <= 0.05 and abs(r["bias_db"]) <= 0.2 for r in rows]
    print(f"\nwithin ratio 1±0.05 and bias ±0.2 dB: {sum(ok)}/{len(ok)}")
    save("despeckle_e2e_real.json", rows)


def speed(args: argparse.Namespace) -> None:
    import geodiff

    src = geodiff.sample_scene()
    px = 512 * 512
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in [("sar-dps (5 steps x 4 samples, NFE 20)", []), ("lee 7x7", ["--method", "lee"]),
                             ("refined-lee", ["--method", "refined-lee"])]:  # fmt: skip
            t = time.perf_counter()
            cli_despeckle(src, Path(tmp) / "o.tif", *extra)
            dt = time.perf_counter() - t
            rows.append(dict(method=label, seconds=dt, mpx_per_s=px / dt / 1e6))
    rows.append(reference_dps_row(src, px, args.ref_steps))
    dev = f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    print("| method | seconds for 512² | Mpx/s | device |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['seconds']:.1f} | {r['mpx_per_s']:.5f} | {dev} |")
    save("despeckle_e2e_speed.json", rows)


def reference_dps_row(src: Path, px: int, ref_steps: int) -> dict:
    """Reference DPS (1000 steps from noise, back-propagation through the network) on one 256² tile of the
    scene, timed over ``ref_steps`` steps and extrapolated to 1000 steps and to the whole scene."""
    from geodiff.priors import load
    from geodiff.solvers import SamplerConfig, sar_dps

    def ref_config(steps: int) -> SamplerConfig:
        return SamplerConfig.defaults("sar_dps", steps=steps, samples=1, init="noise", jacobian=True)

    with rasterio.open(src) as d:
        y = torch.tensor(d.read(1, window=((0, 256), (0, 256)))[None, None].astype(np.float32))
    prior = load("gray")
    sar_dps(y, prior, 4.0, ref_config(1), seeds=[0])  # warm-up
    t = time.perf_counter()
    sar_dps(y, prior, 4.0, ref_config(ref_steps), seeds=[0])
    per_px = (time.perf_counter() - t) / ref_steps * 1000 / (256 * 256)
    return dict(method=f"reference DPS 1000 NFE + backprop (extrapolated from {ref_steps} steps on 256²)",
                seconds=per_px * px, mpx_per_s=1 / per_px / 1e6)  # fmt: skip


def save(name: str, rows: list) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(rows, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["quality", "real", "speed"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ref-steps", type=int, default=3, help="speed: reference DPS steps timed")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    {"quality": quality, "real": real, "speed": speed}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
