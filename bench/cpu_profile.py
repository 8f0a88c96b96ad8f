"""Where SAR-DPS's CPU time goes and what each speed step gains (CPU seconds, one torch thread).

    .venv/bin/python bench/cpu_profile.py [--repeat 5] [--tile 256] [--images 12] [--no-e2e] [--compile]

Every configuration runs in its own child process (fresh allocator and thread pool), in one run on one
machine, and is timed with ``time.process_time`` (CPU seconds of the process; wall seconds are printed
too but on a shared machine they mostly measure the other jobs). Do not ``nice`` the timed run.

* network: one call of the shipped ``gray`` prior on ``EVAL_CHUNK`` = 4 tiles of ``--tile``² (what
  :class:`geodiff.priors.chunked.ChunkedPrior` hands it), median of ``--repeat`` calls after a warm-up,
  step by step from the code before this work (out-of-place forward, glibc's default allocator) to
  today's default, then the threads, the batch per call, the opt-in bfloat16 autocast and (with
  ``--compile``) ``torch.compile``; each row's max relative difference to the first row's output;
* bf16: PSNR of the Tweedie estimate x0_hat on ``--images`` dev images (PROTOCOL §1 clean images,
  central 256² crops, Gaussian noise at the sampler's noise levels) in float32 and in bfloat16;
* e2e: ``geodiff despeckle`` on the bundled 512² sample scene (the CLI's defaults) before/after, with
  bf16, with a fitted tile (``--tile 272``: the 2 x 2 tile grid ends at the raster edge), its cProfile
  split (network vs the rest) and the max abs difference of the outputs.

Prints the tables and writes bench/results/cpu_profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "cpu_profile.json"

# (label, child settings); "base" settings are the code before the speed work
NETWORK_STEPS: list[tuple[str, dict]] = [
    ("before: no_grad, channels-last, out-of-place forward, glibc default allocator",
     dict(inplace=False, allocator=False)),
    ("  same, contiguous NCHW instead of channels-last", dict(inplace=False, allocator=False, nchw=True)),
    ("  same, torch.inference_mode instead of no_grad", dict(inplace=False, allocator=False, inference=True)),
    ("+ in-place SiLU / FiLM / skip sum in the forward", dict(inplace=True, allocator=False)),
    ("+ allocator: glibc mmap/trim thresholds 1 GiB (default now)", dict(inplace=True, allocator=True)),
    ("  default, 2 torch threads", dict(threads=2)),
    ("  default, batch 1 tile per call", dict(batch=1)),
    ("  default, batch 2 tiles per call", dict(batch=2)),
    ("  default, batch 8 tiles per call", dict(batch=8)),
    ("  opt-in: bfloat16 autocast (GEODIFF_CPU_PRECISION=bf16)", dict(bf16=True)),
]  # fmt: skip
COMPILE_STEP = ("  opt-in: torch.compile (inductor), per call after compiling", dict(compile=True))

E2E_STEPS: list[tuple[str, dict, list[str]]] = [
    ("before (out-of-place forward, default allocator)", dict(inplace=False, allocator=False), []),
    ("after (default now)", dict(), []),
    ("after + bf16 autocast (opt-in)", dict(bf16=True), []),
    ("after + fitted tile --tile 272 (opt-in: other draws)", dict(), ["--tile", "272"]),
    ("after, under cProfile (for the split below; profiler overhead included)", dict(profile=True), []),
]


# ---------------------------------------------------------------------------------------------- child
def _child_setup(opts: dict) -> None:
    """Apply a configuration before torch runs anything (env for geodiff.device, patches for the rest)."""
    if not opts.get("allocator", True):
        os.environ["GEODIFF_CPU_ALLOCATOR"] = "0"
    if opts.get("bf16"):
        os.environ["GEODIFF_CPU_PRECISION"] = "bf16"
    os.environ["GEODIFF_THREADS"] = str(opts.get("threads", 1))
    import torch

    torch.set_num_threads(int(opts.get("threads", 1)))
    if not opts.get("inplace", True):
        import geodiff.priors.unet as unet

        unet._inplace = lambda: False


def child_network(opts: dict, tile: int, repeat: int, save: str) -> dict:
    _child_setup(opts)
    import torch

    from geodiff.priors import load

    prior = load("gray")
    b = int(opts.get("batch", 4))
    x = torch.randn(b, 1, tile, tile, generator=torch.Generator().manual_seed(0))
    t = torch.full((b,), 300)
    call = lambda: prior.eps(x, t)  # noqa: E731
    if opts.get("nchw"):
        prior.net.to(memory_format=torch.contiguous_format)
        from geodiff.priors.schedule import abar_at, to_eps

        def call() -> torch.Tensor:  # the prior's eps without the channels-last conversion
            abar = None if prior.prediction == "eps" else abar_at(prior.alphas_cumprod, t, x)
            return to_eps(prior.prediction, prior.net(x.contiguous(), t), x, abar)

    compile_cpu = compile_wall = None
    if opts.get("compile"):
        net = torch.compile(prior.net, dynamic=False)
        prior.net = net
        c, w, ch = time.process_time(), time.perf_counter(), _children_cpu()
        with torch.no_grad():
            call()
        compile_cpu = time.process_time() - c + _children_cpu() - ch
        compile_wall = time.perf_counter() - w
    ctx = torch.inference_mode if opts.get("inference") else torch.no_grad
    with ctx():
        out = call()  # warm-up
        cpu, wall = [], []
        for _ in range(repeat):
            c, w = time.process_time(), time.perf_counter()
            out = call()
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - w)
    torch.save(out[:1].float().clone(), save)
    import statistics

    return dict(cpu_s=statistics.median(cpu), wall_s=statistics.median(wall), cpu_all=cpu, batch=b,
                threads=torch.get_num_threads(), compile_cpu_s=compile_cpu,
                compile_wall_s=compile_wall)  # fmt: skip


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def child_e2e(opts: dict, extra: list[str], save: str) -> dict:
    _child_setup(opts)
    import cProfile
    import pstats

    from click.testing import CliRunner

    import geodiff
    from geodiff.cli import cli

    args = ["despeckle", str(geodiff.sample_scene()), save, "--overwrite", "--json", *extra]
    prof = cProfile.Profile(time.process_time) if opts.get("profile") else None
    c, w = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    res = CliRunner().invoke(cli, args, env={"GEODIFF_PROGRESS": "none"})
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - c, time.perf_counter() - w
    if res.exit_code != 0:
        raise RuntimeError(res.output[-2000:])
    row = dict(cpu_s=cpu, wall_s=wall, tile=json.loads(res.stdout).get("tile"))
    if prof:
        st = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)

        def cum(fragment: str, name: str) -> float:
            return sum(v[3] for k, v in st.items() if k[0].endswith(fragment) and k[2] == name)

        row["split_cpu_s"] = {
            "network (UNetPrior.eps)": cum("priors/prior.py", "eps"),
            "sampler loop incl. network (solvers.loop.sample)": cum("solvers/loop.py", "sample"),
            "SAR-DPS tile function": cum("despeckle/sar_dps.py", "__call__"),
            "blend hook (tiling.blend.BlendHook)": cum("tiling/blend.py", "__call__"),
            "block runner (tiling.runner.run_blocks)": cum("tiling/runner.py", "run_blocks"),
            "whole command": cpu,
        }
    return row


def child_bf16(images: int, tile: int) -> dict:
    os.environ["GEODIFF_THREADS"] = "1"
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "bench"))
    import solvers_dev

    from geodiff.priors import load, tweedie_x0

    torch.set_num_threads(1)
    prior = load("gray")
    abars = prior.alphas_cumprod.double()
    sigmas = (0.05, 0.15, 0.3, 0.6)  # model-units noise of x0_hat's input: the sampler's range (sigma0 0.15)
    ts = [int(torch.argmin((((1 - abars) / abars).sqrt() - s).abs())) for s in sigmas]
    crops = []
    for _, a in solvers_dev.load_dev(images):
        h0, w0 = (a.shape[0] - tile) // 2, (a.shape[1] - tile) // 2
        if h0 >= 0 and w0 >= 0:
            crops.append(a[h0 : h0 + tile, w0 : w0 + tile])
    a = torch.tensor(np.stack(crops)[:, None], dtype=torch.float32)
    z = 2 * a - 1
    rows = []
    gen = torch.Generator().manual_seed(0)
    for s, t in zip(sigmas, ts, strict=True):
        ab = float(abars[t])
        xt = ab**0.5 * z + (1 - ab) ** 0.5 * torch.randn(z.shape, generator=gen)
        res = {}
        for prec in ("fp32", "bf16"):
            os.environ["GEODIFF_CPU_PRECISION"] = prec
            with torch.no_grad():
                eps = torch.cat([prior.eps(xt[i : i + 4], torch.full((xt[i : i + 4].shape[0],), t))
                                 for i in range(0, len(xt), 4)])  # fmt: skip
            est = ((tweedie_x0(xt, eps, ab).clamp(-1, 1) + 1) / 2).double()
            mse = ((est - a.double()) ** 2).mean(dim=(1, 2, 3))
            res[prec] = (10 * torch.log10(1 / mse)).numpy()
        d = res["bf16"] - res["fp32"]
        rows.append(dict(sigma=s, t=t, psnr_fp32=float(res["fp32"].mean()),
                         psnr_bf16=float(res["bf16"].mean()), delta_mean=float(d.mean()),
                         delta_min=float(d.min()), delta_max=float(d.max()), images=len(crops)))  # fmt: skip
    return dict(rows=rows)


# --------------------------------------------------------------------------------------------- parent
def run_child(kind: str, payload: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, json.dumps(payload)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child {kind} {payload} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _max_rel(a_path: str, b_path: str) -> float:
    import torch

    a, b = torch.load(a_path), torch.load(b_path)
    return float((a - b).abs().max() / b.abs().max())


def _max_abs_tif(a: str, b: str) -> tuple[float, float]:
    """(max abs difference, that over max |b|) of two rasters of the same shape."""
    import numpy as np
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        xa, ya = x.read().astype(np.float64), y.read().astype(np.float64)
    d = float(np.nanmax(np.abs(xa - ya)))
    return d, d / float(np.nanmax(np.abs(ya)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--images", type=int, default=12, help="dev images for the bf16 accuracy check (0: skip)")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end runs on the sample scene")
    ap.add_argument("--no-network", action="store_true", help="skip the network-call steps")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes on 2 cores)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, payload = args.child[0], json.loads(args.child[1])
        if kind == "network":
            row = child_network(payload["opts"], payload["tile"], payload["repeat"], payload["save"])
        elif kind == "e2e":
            row = child_e2e(payload["opts"], payload["extra"], payload["save"])
        else:
            row = child_bf16(payload["images"], payload["tile"])
        print(json.dumps(row))
        return 0

    result: dict = dict(meta=dict(python=platform.python_version(), machine=platform.machine(),
                                  cores=len(os.sched_getaffinity(0)), load_start=os.getloadavg(),
                                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))  # fmt: skip
    import torch

    result["meta"]["torch"] = torch.__version__
    steps = [] if args.no_network else NETWORK_STEPS + ([COMPILE_STEP] if args.compile else [])
    with tempfile.TemporaryDirectory() as tmp:
        net_rows = []
        for i, (label, opts) in enumerate(steps):
            save = str(Path(tmp) / f"net{i}.pt")
            row = run_child("network", dict(opts=opts, tile=args.tile, repeat=args.repeat, save=save))
            if opts.get("batch", 4) == 4:
                row["max_rel_diff"] = _max_rel(save, str(Path(tmp) / "net0.pt"))
            row.update(label=label, per_tile_cpu_s=row["cpu_s"] / row["batch"])
            net_rows.append(row)
            print(
                f"{label:80s} {row['cpu_s']:6.3f} CPU-s {row['wall_s']:6.3f} wall-s",
                file=sys.stderr,
                flush=True,
            )
        if net_rows:
            result["network"] = net_rows
        if args.images:
            result["bf16_tweedie"] = run_child("bf16", dict(images=args.images, tile=args.tile))["rows"]
        if not args.no_e2e:
            e2e_rows = []
            for i, (label, opts, extra) in enumerate(E2E_STEPS):
                save = str(Path(tmp) / f"e2e{i}.tif")
                row = run_child("e2e", dict(opts=opts, extra=extra, save=save))
                diff = _max_abs_tif(save, str(Path(tmp) / "e2e0.tif"))
                row["max_abs_diff_vs_before"], row["max_rel_diff_vs_before"] = diff
                row["label"] = label
                e2e_rows.append(row)
                print(f"{label:60s} {row['cpu_s']:6.1f} CPU-s {row['wall_s']:6.1f} wall-s", file=sys.stderr,
                      flush=True)  # fmt: skip
            result["e2e"] = e2e_rows
    result["meta"]["load_end"] = os.getloadavg()
    print_tables(result, args.tile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


def print_tables(result: dict, tile: int) -> None:
    rows = result.get("network", [])
    base = rows[0]["per_tile_cpu_s"] if rows else 1.0
    print(f"\nnetwork call, gray prior, {tile}² tiles (CPU-s = median process_time of one call)\n")
    print(
        "| step | tiles/call | threads | CPU-s/call | CPU-s/tile | vs before | wall-s/call | max rel. diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        diff = r.get("max_rel_diff")
        cells = [r["label"].strip(), r["batch"], r["threads"], f"{r['cpu_s']:.3f}",
                 f"{r['per_tile_cpu_s']:.3f}", f"{r['per_tile_cpu_s'] / base:.2f}x", f"{r['wall_s']:.3f}",
                 "-" if diff is None else f"{diff:.1e}"]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
        if r.get("compile_cpu_s") is not None:
            c, w = r["compile_cpu_s"], r["compile_wall_s"]
            print(f"| compile once (before the first call) | | | {c:.1f} (wall {w:.1f}) | | | | |")
    if "bf16_tweedie" in result:
        print("\nTweedie x0_hat PSNR (dB) on dev images, float32 vs bfloat16 autocast\n")
        print("| noise sigma (model units) | t | PSNR fp32 | PSNR bf16 | mean delta | min / max delta "
              "| images |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in result["bf16_tweedie"]:
            print(f"| {r['sigma']} | {r['t']} | {r['psnr_fp32']:.3f} | {r['psnr_bf16']:.3f} "
                  f"| {r['delta_mean']:+.4f} | {r['delta_min']:+.4f} / {r['delta_max']:+.4f} "
                  f"| {r['images']} |")  # fmt: skip
    if "e2e" in result:
        print("\n`geodiff despeckle` on the 512² sample scene (the CLI defaults), one torch thread\n")
        print("| run | tile | CPU-s | vs before | wall-s | max abs diff vs before (intensity) | that / max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        b = result["e2e"][0]["cpu_s"]
        for r in result["e2e"]:
            print(f"| {r['label']} | {r['tile']} | {r['cpu_s']:.1f} | {r['cpu_s'] / b:.2f}x "
                  f"| {r['wall_s']:.1f} | {r['max_abs_diff_vs_before']:.2e} "
                  f"| {r['max_rel_diff_vs_before']:.1e} |")  # fmt: skip
        split = next((r["split_cpu_s"] for r in result["e2e"] if "split_cpu_s" in r), None)
        if split:
            print("\nwhere the default run's CPU time goes (cProfile, cumulative CPU-s)\n")
            print("| part | CPU-s |\n|---|---:|")
            for k, v in split.items():
                print(f"| {k} | {v:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
