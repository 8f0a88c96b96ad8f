"""Where SAR-DPS's accelerator time goes: the network's throughput by batch (tiles per evaluation) and
precision, bfloat16's error on the network's output, and the despeckled quality in each setting.

    python bench/gpu_speed.py [--device cuda] [--chunks 4 16 64] [--precisions fp32 bf16]
                              [--images DIR --limit 8 --looks 1 4] [--out results/gpu_speed.json]
    python bench/gpu_speed.py --device cpu --prior tiny --chunks 1 2 --precisions fp32 --tile 64 \\
                              --repeat 2 --images DIR --limit 1 --looks 1 --profile fast      # dry run

1. **Throughput**: the prior's eps on ``chunk`` tiles of ``--tile``² (288: the despeckle app's tile with
   its overlap) at t = 200, ``--repeat`` timed calls after two warm-up calls (CUDA synchronised), per
   precision (``GEODIFF_GPU_PRECISION``): ms per call, tile evaluations per second, Mpx of network input
   per second and the peak memory torch allocated.
2. **bf16 error**: relative RMS of eps(bf16) - eps(fp32) on speckled tiles of a synthetic texture at
   t = 50, 200, 500.
3. **Quality**: PROTOCOL §1 draws of the first ``--limit`` dev images (clean a = (g + 1)/256, y = a² ·
   Gamma(L, 1/L) with default_rng(1234 + L), one draw per image in file order: the same draws as
   bench/solvers_dev.py), written as intensity GeoTIFFs and despeckled by the despeckle job (the CLI's
   path: scene scale, tiles, blending, radiometry, COG) at the device's default profile with
   ``likelihood_looks = L`` (white speckle), once per (precision, chunk) setting; PSNR/SSIM on
   amplitude in [0, 1] (scikit-image) and wall seconds per image. Same seed in every setting: the
   differences are the arithmetic's alone.

Writes ``--out`` (JSON, no machine paths) and prints a table per part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geodiff.device import GPU_CHUNK_ENV, GPU_PRECISION_ENV  # noqa: E402
from geodiff.priors import load  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _texture(n: int, tile: int, dev: torch.device, looks: float = 1.0) -> torch.Tensor:
    """(n, 1, tile, tile) speckled amplitude-like tiles in [-1, 1] (the prior's z = 2a - 1)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(tile), torch.arange(tile), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(xx / 9.0) * torch.cos(yy / 13.0)
    a = (base[None, None] * (0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=g))).clamp(0.05, 1.0)
    speck = torch.distributions.Gamma(looks, looks).sample((n, 1, tile, tile)).sqrt()
    return (2.0 * (a * speck).clamp(0, 1) - 1.0).to(dev)


#: Ways to run the network, timed side by side (``--precisions``): fp32 / bf16 are the shipped path
#: (``GEODIFF_GPU_PRECISION``: float32, or bfloat16 autocast); bf16w casts the weights themselves to
#: bfloat16 (normalisations and activations too); compile is ``torch.compile`` of the network (its first
#: call's compile time reported apart); graph replays one CUDA graph per batch shape (CUDA only).
MODES = ("fp32", "bf16", "bf16w", "compile", "graph")


def _runner(mode: str, prior_name: str, dev: torch.device, x: torch.Tensor, t: torch.Tensor):  # noqa: ANN202
    """(call() -> eps, environment, seconds spent preparing) of one mode on the batch (x, t)."""
    env = {GPU_PRECISION_ENV: "bf16" if mode == "bf16" else "fp32"}
    if mode in ("fp32", "bf16"):
        prior = load(prior_name).to(dev)
        return (lambda: prior.eps(x, t)), env, 0.0
    prior = load(prior_name).to(dev, dtype=torch.bfloat16 if mode == "bf16w" else None)
    if mode == "bf16w":
        return (lambda: prior.eps(x, t)), env, 0.0
    net = prior.net
    xs = x.contiguous(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    if mode == "compile":
        cnet = torch.compile(net, dynamic=False)
        cnet(xs, t)
        _sync(dev)
        return (lambda: cnet(xs, t)), env, time.perf_counter() - t0
    if mode == "graph":
        if dev.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):
            for _ in range(2):
                net(xs, t)
        torch.cuda.current_stream(dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            net(xs, t)
        _sync(dev)

        def replay() -> None:
            graph.replay()

        return replay, env, time.perf_counter() - t0
    raise SystemExit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")


def throughput(prior_name: str, dev: torch.device, chunks: list[int], modes: list[str], tile: int,
               repeat: int) -> list[dict]:  # fmt: skip
    rows = []
    for mode in modes:
        for chunk in chunks:
            x = _texture(chunk, tile, dev)
            t = torch.full((chunk,), 200, device=dev)
            row = dict(precision=mode, chunk=chunk, tile=tile)
            try:
                with torch.inference_mode():
                    if dev.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(dev)
                    call, env, prep = _runner(mode, prior_name, dev, x, t)
                    with mock.patch.dict(os.environ, env):
                        for _ in range(2):
                            call()
                        _sync(dev)
                        t0 = time.perf_counter()
                        for _ in range(repeat):
                            call()
                        _sync(dev)
                        ms = 1e3 * (time.perf_counter() - t0) / repeat
            except Exception as exc:  # noqa: BLE001 - a benchmark row: record why it did not run
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                rows.append(row)
                print(f"  {mode:7s} chunk {chunk:3d}: {row['error']}", file=sys.stderr, flush=True)
                continue
            peak = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1) if dev.type == "cuda" else None
            row.update(ms_per_call=round(ms, 3), tile_evals_per_s=round(1e3 * chunk / ms, 1),
                       mpx_nfe_per_s=round(1e3 * chunk * tile * tile / ms / 1e6, 2),
                       prepare_s=round(prep, 2), peak_alloc_mib=peak)  # fmt: skip
            rows.append(row)
            print(f"  {mode:7s} chunk {chunk:3d}: {ms:8.2f} ms/call, {row['tile_evals_per_s']:8.1f} tiles/s, "
                  f"{row['mpx_nfe_per_s']:7.2f} Mpx-NFE/s", file=sys.stderr, flush=True)  # fmt: skip
    return rows


def bf16_error(prior, dev: torch.device, tile: int) -> list[dict]:
    x = _texture(8, tile, dev)
    rows = []
    for step in (50, 200, 500):
        t = torch.full((8,), step, device=dev)
        with torch.inference_mode():
            with mock.patch.dict(os.environ, {GPU_PRECISION_ENV: "fp32"}):
                ref = prior.eps(x, t).double()
            with mock.patch.dict(os.environ, {GPU_PRECISION_ENV: "bf16"}):
                low = prior.eps(x, t).double()
        rel = float((low - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
        rows.append(dict(t=step, rel_rms=round(rel, 6)))
    return rows


def dev_images(folder: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    out = []
    for p in sorted(folder.glob("*.jpg"))[:limit]:
        g = np.asarray(Image.open(p).convert("L"), dtype=np.float64)
        h, w = (g.shape[0] // 8) * 8, (g.shape[1] // 8) * 8
        out.append((p.name, (g[:h, :w] + 1) / 256))
    if not out:
        raise SystemExit(f"no .jpg dev images in {folder}")
    return out


def quality(images, looks: list[int], settings: list[tuple[str, int]], device: str,
            profile: str | None) -> list[dict]:  # fmt: skip
    import tempfile

    import rasterio
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from geodiff.apps.despeckle import despeckle_scene

    tmp = Path(tempfile.mkdtemp(prefix="geodiff_gpu_speed_"))
    src, dst = tmp / "in.tif", tmp / "out.tif"

    def run(y: np.ndarray, L: int) -> np.ndarray:  # the CLI's path: a GeoTIFF in, a COG out
        h, w = y.shape
        tr = rasterio.Affine(10, 0, 5e5, 0, -10, 5e6)
        with rasterio.open(src, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                           crs="EPSG:32632", transform=tr) as ds:  # fmt: skip
            ds.write(y[None].astype(np.float32))
        despeckle_scene(str(src), str(dst), "sar-dps", looks=L, units="intensity", seed=0, overwrite=True,
                        progress=False, device=device, profile=profile, likelihood_looks=L)  # fmt: skip
        with rasterio.open(dst) as ds:
            return ds.read(1).astype(np.float64)

    rows = []
    for L in looks:
        rng = np.random.default_rng(1234 + L)  # PROTOCOL §1 draws, in file order (bench/solvers_dev.py)
        ys = [a * a * rng.gamma(L, 1.0 / L, size=a.shape) for _, a in images]
        for prec, chunk in settings:
            ps, ss, secs = [], [], []
            with mock.patch.dict(os.environ, {GPU_PRECISION_ENV: prec, GPU_CHUNK_ENV: str(chunk)}):
                for (_, a), y in zip(images, ys, strict=True):
                    t0 = time.perf_counter()
                    out = run(y, L)
                    secs.append(time.perf_counter() - t0)
                    est = np.clip(np.sqrt(np.maximum(out, 0)), 0, 1)
                    ps.append(peak_signal_noise_ratio(a, est, data_range=1))
                    ss.append(structural_similarity(a, est, data_range=1))
            rows.append(dict(L=L, precision=prec, chunk=chunk, images=len(images), PSNR=float(np.mean(ps)),
                             SSIM=float(np.mean(ss)), psnr_per_image=[round(float(p), 4) for p in ps],
                             s_per_image=float(np.median(secs))))  # fmt: skip
            print(f"  L={L} {prec} chunk {chunk}: PSNR {rows[-1]['PSNR']:.3f} SSIM {rows[-1]['SSIM']:.4f} "
                  f"{rows[-1]['s_per_image']:.2f} s/image", file=sys.stderr, flush=True)  # fmt: skip
    # paired differences to the first setting (same draws, same seed)
    for r in rows:
        base = next(b for b in rows if b["L"] == r["L"])
        d = np.subtract(r["psnr_per_image"], base["psnr_per_image"])
        r["dPSNR_vs_first"] = round(float(d.mean()), 4)
        r["dPSNR_max_abs"] = round(float(np.abs(d).max()), 4)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--prior", default="gray")
    ap.add_argument("--tile", type=int, default=288)
    ap.add_argument("--chunks", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help=f"of {', '.join(MODES)}")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--images", type=Path, default=None, help="folder of dev .jpg images (part 3)")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--profile", default=None, help="sar-dps profile (default: the device's)")
    ap.add_argument("--settings", nargs="+", default=["fp32:4", "fp32:16", "bf16:16"],
                    help="PRECISION:CHUNK settings of part 3, the first is the reference")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_speed.json")
    args = ap.parse_args(argv)

    dev = torch.device(args.device)
    prior = load(args.prior).to(dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({os.cpu_count()} cores)"
    res = dict(meta=dict(device=name, torch=torch.__version__, python=platform.python_version(),
                         prior=args.prior, date=time.strftime("%Y-%m-%d")))  # fmt: skip

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1) + "\n")

    print("1. network throughput", file=sys.stderr)
    res["throughput"] = throughput(args.prior, dev, args.chunks, args.precisions, args.tile, args.repeat)
    save()
    if "bf16" in args.precisions:
        res["bf16_error"] = bf16_error(prior, dev, args.tile)
        print(f"2. bf16 relative RMS error of eps: {res['bf16_error']}", file=sys.stderr)
        save()
    if args.images is not None:
        print("3. quality", file=sys.stderr)
        settings = [(s.split(":")[0], int(s.split(":")[1])) for s in args.settings]
        res["quality"] = quality(dev_images(args.images, args.limit), args.looks, settings, args.device,
                                 args.profile)  # fmt: skip
        save()
    print("| precision | chunk | ms/call | tiles/s | Mpx-NFE/s | peak MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in res["throughput"]:
        if "error" in r:
            print(f"| {r['precision']} | {r['chunk']} | {r['error']} | | | |")
            continue
        print(f"| {r['precision']} | {r['chunk']} | {r['ms_per_call']:.2f} | {r['tile_evals_per_s']:.1f} | "
              f"{r['mpx_nfe_per_s']:.2f} | {r['peak_alloc_mib']} |")  # fmt: skip
    for r in res.get("quality", []):
        print(f"quality L={r['L']} {r['precision']}:{r['chunk']} PSNR {r['PSNR']:.3f} SSIM {r['SSIM']:.4f} "
              f"dPSNR {r['dPSNR_vs_first']:+.4f} (max |d| {r['dPSNR_max_abs']:.4f}) "
              f"{r['s_per_image']:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
