"""End-to-end despeckling benchmarks through the CLI (`geodiff despeckle`, in-process via click).

    .venv/bin/python bench/despeckle_e2e.py quality [--limit 12] [--looks 1 4] [--profiles fast balanced best]
    .venv/bin/python bench/despeckle_e2e.py frontier --merge NAME_L1 NAME_L4 --out NAME        # one table
    .venv/bin/python bench/despeckle_e2e.py real                                  # PROTOCOL §2
    .venv/bin/python bench/despeckle_e2e.py speed                                 # Mpx/s, sample scene

quality: each dev image (PROTOCOL §1: clean a = (g + 1)/256, y = a² · Gamma(L, 1/L), default_rng(1234 + L),
the same draws as bench/solvers_dev.py) is written as an intensity GeoTIFF and despeckled by the CLI with
each sar-dps profile and the classical filters; PSNR/SSIM on amplitude in [0, 1], CPU seconds per image
(process_time, torch on --threads threads), the frontier table and a PNG plot. BM3D-log comes from
bench/solvers_dev.py's cache (with its CPU seconds); SAR2SAR runs only where deepdespeckling is installed.
real: sar2sar single-look crops (amplitude, L = 1), the S1 RTC scene
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


def sar2sar_available() -> tuple[bool, str]:
    """Whether SAR2SAR (the ``deepdespeckling`` package) can run here, and why not."""
    try:
        import deepdespeckling  # noqa: F401
    except ImportError as exc:
        return False, f"deepdespeckling is not installed ({exc}); no downloads here"
    return False, "deepdespeckling is installed but its weights are not wired into this benchmark"


def quality(args: argparse.Namespace) -> None:
    """PROTOCOL §1 end to end: every method and profile on the same images in one run.

    CPU seconds are ``time.process_time`` of this process around each call (the CLI runs in-process, torch
    on ``--threads`` threads): the fair measure on a shared machine, where wall-clock time depends on what
    else runs. BM3D-log's CPU seconds come from the cache of ``solvers_dev.py`` (timed the same way, one
    thread) and are re-measured where the cache has none.
    """
    images = solvers_dev.load_dev(args.limit)
    out = args.out or "despeckle_e2e_quality"
    methods: dict[str, list[str]] = {"lee": ["--method", "lee"], "refined-lee": ["--method", "refined-lee"]}
    for p in args.profiles:  # a profile, or profile+estimator (e.g. balanced+blind-spot)
        profile, _, estimator = p.partition("+")
        methods[f"sar-dps {p}"] = ["--profile", profile, *(["--estimator", estimator] if estimator else [])]
        if args.iid_looks:  # PROTOCOL §1 speckle is white by construction: no correlation to correct
            methods[f"sar-dps {p}"] += ["--likelihood-looks", "{looks}"]
    ok, why = sar2sar_available()
    if not ok:
        print(f"SAR2SAR skipped: {why}", file=sys.stderr)
    rows, per_image = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for looks in args.looks:
            ys = solvers_dev.speckle(images, looks, len(images))
            names = ["noisy", "bm3d-log", *methods]
            scores: dict[str, list] = {m: [] for m in names}
            cpu: dict[str, list] = {m: [] for m in names}
            for (name, a), y in zip(images, ys, strict=True):
                src = write_tif(Path(tmp) / "in.tif", y, "intensity (linear power)")
                scores["noisy"].append(solvers_dev.score(a, y))
                cpu["noisy"].append(0.0)
                bm, _, bm_cpu = solvers_dev.bm3d_log_timed(name, y, looks)
                if bm_cpu is None:  # an old cache entry: time it again
                    c = time.process_time()
                    solvers_dev.bm3d_log(y, looks)
                    bm_cpu = time.process_time() - c
                scores["bm3d-log"].append(solvers_dev.score(a, bm))
                cpu["bm3d-log"].append(bm_cpu)
                for m, extra in methods.items():
                    c = time.process_time()
                    extra = [e.format(looks=looks) for e in extra]
                    cli_despeckle(src, Path(tmp) / "out.tif", "--looks", str(looks), *extra)
                    cpu[m].append(time.process_time() - c)
                    scores[m].append(solvers_dev.score(a, read1(Path(tmp) / "out.tif")))
                last = {
                    m: dict(PSNR=scores[m][-1][0], SSIM=scores[m][-1][1], cpu_s=cpu[m][-1]) for m in names
                }
                per_image.append(dict(image=name, L=looks, px=int(y.size), **last))
                save(f"{out}_images.json", per_image)
                print(f"L={looks} {name}: " + ", ".join(f"{m} {s[-1][0]:.2f}" for m, s in scores.items()),
                      file=sys.stderr, flush=True)  # fmt: skip
            bm_p = np.array([v[0] for v in scores["bm3d-log"]])
            bm_q = np.array([v[1] for v in scores["bm3d-log"]])
            px = np.mean([y.size for y in ys])
            for m in names:
                p = np.array([v[0] for v in scores[m]])
                q = np.array([v[1] for v in scores[m]])
                secs = float(np.mean(cpu[m]))
                rows.append(dict(method=m, L=looks, PSNR=float(p.mean()), SSIM=float(q.mean()),
                                 dPSNR=float((p - bm_p).mean()),
                                 dPSNR_se=float((p - bm_p).std(ddof=1) / np.sqrt(len(p))),
                                 dSSIM=float((q - bm_q).mean()), better=int((p > bm_p).sum()), images=len(p),
                                 cpu_s=secs, mpx_per_cpu_s=float(px / secs / 1e6) if secs > 0 else None,
                                 x_bm3d_cpu=secs / float(np.mean(cpu["bm3d-log"]))))  # fmt: skip
    meta = dict(protocol="PROTOCOL.md §1, end to end through the CLI", images=len(images),
                torch_threads=torch.get_num_threads(), timing="time.process_time per image (CPU seconds)",
                sar2sar=why, machine=platform.processor() or platform.machine(),
                likelihood_looks="L (white speckle)" if args.iid_looks else "measured")  # fmt: skip
    print_frontier(rows, meta)
    save(f"{out}.json", dict(meta=meta, rows=rows))
    plot_frontier(rows, RESULTS / f"{out}.png", meta)


def print_frontier(rows: list[dict], meta: dict) -> None:
    print(
        f"PROTOCOL §1, {meta['images']} images, CPU s = process_time, torch {meta['torch_threads']} thread(s)"
    )
    print(
        "| method | L | PSNR | SSIM | ΔPSNR vs BM3D-log | ΔSSIM | better | CPU s/image | × BM3D-log "
        "| Mpx/CPU-s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mpx = "–" if r["mpx_per_cpu_s"] is None else f"{r['mpx_per_cpu_s']:.4f}"
        cells = [r["method"], r["L"], f"{r['PSNR']:.2f}", f"{r['SSIM']:.4f}",
                 f"{r['dPSNR']:+.2f} ± {r['dPSNR_se']:.2f}", f"{r['dSSIM']:+.4f}",
                 f"{r['better']}/{r['images']}",
                 f"{r['cpu_s']:.2f}", f"{r['x_bm3d_cpu']:.2f}", mpx]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")


def plot_frontier(rows: list[dict], path: Path, meta: dict) -> None:
    """PSNR against CPU seconds per image, one panel per L (log time axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    looks = sorted({r["L"] for r in rows})
    fig, axes = plt.subplots(1, len(looks), figsize=(5.5 * len(looks), 4.2), squeeze=False)
    for ax, lk in zip(axes[0], looks, strict=True):
        for r in (r for r in rows if r["L"] == lk and r["cpu_s"] > 0):
            sar = r["method"].startswith("sar-dps")
            ax.scatter(r["cpu_s"], r["PSNR"], marker="o" if sar else "s", color="C3" if sar else "C0")
            label = r["method"].replace("sar-dps ", "")
            ax.annotate(label, (r["cpu_s"], r["PSNR"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("CPU seconds per image (process_time)")
        ax.set_ylabel("PSNR (dB, amplitude)")
        ax.set_title(f"L = {lk}, {meta['images']} dev images")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def frontier(args: argparse.Namespace) -> None:
    """Merge quality runs started together (e.g. one process per L) into one table and one plot."""
    runs = [json.loads((RESULTS / f"{name}.json").read_text()) for name in args.merge]
    rows = [r for run in runs for r in run["rows"]]
    meta = dict(runs[0]["meta"], merged=args.merge)
    print_frontier(rows, meta)
    save(f"{args.out or 'despeckle_e2e_frontier'}.json", dict(meta=meta, rows=rows))
    plot_frontier(rows, RESULTS / f"{args.out or 'despeckle_e2e_frontier'}.png", meta)


def bm3d_log_file(src: Path, out: Path, units: str, looks: float) -> None:
    """BM3D-log (solvers_dev.bm3d_log: log intensity, Gaussian BM3D, bias-corrected) of every band of
    ``src`` in ``units`` with ``looks`` looks, written to ``out`` in the same units (nodata kept)."""
    from sensors.units import from_intensity, to_intensity

    with rasterio.open(src) as ds:
        data, profile, nodata = ds.read().astype(np.float64), ds.profile, ds.nodata
    res = np.empty_like(data)
    for b, band in enumerate(data):
        valid = np.isfinite(band) if nodata is None else np.isfinite(band) & (band != nodata)
        inten = to_intensity(np.where(valid, band, 0.0), units)
        inten = np.where(valid & (inten > 0), inten, np.median(inten[valid & (inten > 0)]))
        res[b] = np.where(valid, from_intensity(solvers_dev.bm3d_log(inten, looks), units), band)
    profile.update(dtype="float32", driver="GTiff")
    with rasterio.open(out, "w", **profile) as ds:
        ds.write(res.astype(np.float32))


def cli_qa(src: Path, out: Path, band: int, units: str, looks: float) -> dict:
    res = CliRunner().invoke(cli, ["qa", str(src), str(out), "--band", str(band), "--units", units,
                                   "--looks", str(looks), "--json"])  # fmt: skip
    if res.exit_code != 0:
        raise RuntimeError(f"geodiff qa failed: {res.output[-800:]}")
    return json.loads(res.stdout)


def real(args: argparse.Namespace) -> None:
    """PROTOCOL §2 on the real scenes: every method of ``--methods`` (sar-dps at the CPU default, Lee
    7x7 through the CLI, BM3D-log on the CLI's units and looks, scored by ``geodiff qa``) in one run."""
    data = solvers_dev.DATA
    cases = []
    for p in sorted((data / "sar2sar_s1_singlelook").glob("*.npy"))[: args.limit]:
        cases.append((p.stem, np.load(p).astype(np.float64), "amplitude", ["--looks", "1"]))
    rtc = data / "s1_rtc_geotiff" / "sentinel1_rtc_vv_gamma0_epsg32632.tif"
    cases.append((rtc.name, None, None, []))
    for p in sorted((data / "bigearthnet_s1s2_pairs").glob("*/s1_VV_VH_db.tif")):
        cases.append((p.parent.name[-5:] + "/s1_VV_VH_db", p, None, []))
    keys = ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, arr, units, extra in cases:
            if isinstance(arr, np.ndarray):
                src = write_tif(Path(tmp) / "in.tif", np.abs(arr), f"single-look {units}")
                extra = [*extra, "--sensor", "sar-amplitude"]
            else:
                src = arr if arr is not None else rtc
            facts = None
            for method in args.methods:
                t, c = time.perf_counter(), time.process_time()
                out = Path(tmp) / "out.tif"
                if method == "bm3d-log":
                    assert facts is not None, "bm3d-log needs a CLI method before it (units and looks)"
                    bm3d_log_file(Path(src), out, facts["units"], facts["looks"])
                    qas = [cli_qa(Path(src), out, b + 1, facts["units"], facts["looks"])
                           for b in range(len(facts["qa"]))]  # fmt: skip
                else:
                    how = {"sar-dps": [], "sar-dps-blind-spot": ["--estimator", "blind-spot"]}
                    s = cli_despeckle(src, out, *extra, *how.get(method, ["--method", method]))
                    facts, qas = facts or s, s["qa"]
                secs, cpu = time.perf_counter() - t, time.process_time() - c
                for b, q in enumerate(qas):
                    rows.append(dict(scene=name, band=b + 1, method=method, units=facts["units"],
                                     looks=facts["looks"], seconds=secs, cpu_s=cpu,
                                     **{k: q.get(k) for k in keys}))  # fmt: skip
                    r = rows[-1]
                    print(f"{name} b{b + 1} {method}: ratio {r['ratio_mean']:.3f} "
                          f"bias {r['bias_db']:+.2f} dB ENL {r['enl_output']:.1f}", file=sys.stderr,
                          flush=True)  # fmt: skip
    print("| scene | band | method | units | L | ratio mean | L·var(r) | bias dB | ENL in → out | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["scene"], r["band"], r["method"], r["units"], f"{r['looks']:.2f}",
                 f"{r['ratio_mean']:.3f}", f"{r['ratio_var_times_looks']:.2f}", f"{r['bias_db']:+.2f}",
                 f"{r['enl_input']:.1f} → {r['enl_output']:.1f}", f"{r['cpu_s']:.1f}"]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
    for m in args.methods:
        mine = [r for r in rows if r["method"] == m]
        ok = [abs(r["ratio_mean"] - 1) <= 0.03 and abs(r["bias_db"]) <= 0.1 for r in mine]
        print(f"{m}: within ratio 1±0.03 and |bias| <= 0.1 dB: {sum(ok)}/{len(ok)}")
    save(f"{args.out or 'despeckle_e2e_real'}.json", rows)


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
    ap.add_argument("what", choices=["quality", "real", "speed", "frontier"])
    ap.add_argument("--merge", nargs="+", default=[], help="frontier: quality results names to merge")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["sar-dps", "lee", "bm3d-log"],
        help="real: rows per scene (sar-dps, sar-dps-blind-spot, a classical filter, bm3d-log)",
    )
    ap.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument(
        "--profiles",
        nargs="+",
        default=["fast", "balanced", "best"],
        help="quality: sar-dps profiles, or profile+estimator (balanced+blind-spot)",
    )
    ap.add_argument(
        "--white-looks",
        dest="iid_looks",
        action="store_true",
        help="quality: pass --likelihood-looks L (the PROTOCOL's speckle is white) instead of the CLI "
        "default, which measures the speckle correlation from the scene",
    )
    ap.add_argument("--measured-looks", dest="iid_looks", action="store_false", help="quality: the default")
    ap.add_argument(
        "--out", default=None, help="results name under bench/results (despeckle_e2e_quality / _real)"
    )
    ap.add_argument("--ref-steps", type=int, default=3, help="speed: reference DPS steps timed")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    {"quality": quality, "real": real, "speed": speed, "frontier": frontier}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
