"""Solver speed per tile: SAR-DPS at the NFE we ship vs reference DPS (1000 NFE + back-propagation) vs Lee.

    .venv/bin/python bench/solver_speed.py [--priors gray tiny] [--tile 256] [--batch 4] [--device cpu] \
        [--threads 1] [--precision fp32|bf16]

Reference DPS (Chung et al.: 1000 steps from noise, the exact Jacobian through the network) is timed
over --ref-steps steps and extrapolated linearly to 1000 (its cost per step is constant). Times are
medians of --repeat runs after one warm-up, for a batch of --batch tiles, reported per tile and as
Mpx/s. Lee 7x7 (numpy/scipy, one CPU thread) is the classical baseline of the same run. On the CPU,
--threads sets torch's intra-op threads (default: geodiff.device.cpu_threads(), i.e. GEODIFF_THREADS
or cores // 1) and --precision bf16 the opt-in bfloat16 autocast (GEODIFF_CPU_PRECISION); both are
recorded in the rows. bench/cpu_profile.py breaks one network call down step by step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeat: int) -> float:
    fn()  # warm-up (cuDNN autotuning, allocator)
    _sync(device)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def reference_dps_seconds(
    y: torch.Tensor,
    prior,  # noqa: ANN001 - a geodiff.priors.DiffusionPrior
    looks: float,
    ref_steps: int,
    device: torch.device,
) -> float:
    """Seconds of reference DPS (Chung et al. 2023: 1000 steps from noise, the exact Jacobian through the
    network, intensity-form gamma likelihood of ``looks``) on the batch ``y`` (B, 1, h, w): ``ref_steps``
    steps timed after one warm-up, x 1000 / ``ref_steps`` (the cost per step is constant)."""
    from geodiff.solvers import SamplerConfig, SpeckleModel, sar_dps

    cfg = SamplerConfig.defaults("sar_dps", steps=ref_steps, samples=1, init="noise", jacobian=True)
    seeds = list(range(y.shape[0]))

    def ref() -> None:
        sar_dps(y, prior, SpeckleModel(looks, form="intensity"), cfg, seeds=seeds)

    return timed(ref, device, 1) * 1000 / ref_steps


def bench_prior(name: str, y: torch.Tensor, args: argparse.Namespace, device: torch.device, add) -> None:  # noqa: ANN001
    """Time one prior: a network evaluation, SAR-DPS at each NFE, with the Jacobian, reference DPS."""
    from geodiff.priors import load
    from geodiff.solvers import SamplerConfig, SpeckleModel, sar_dps

    cfg = SamplerConfig.defaults
    speckle = SpeckleModel(args.looks)

    prior = load(name).to(device)
    b, s = y.shape[0], y.shape[-1]
    seeds = list(range(b))
    with torch.no_grad():
        x = torch.randn(b, 1, s, s, device=device)
        tt = torch.full((b,), 300, device=device)
        add(name, "one network evaluation", 1, timed(lambda: prior.eps(x, tt), device, args.repeat))
    for nfe in args.nfe:
        spl = 4 if nfe >= 40 else 2
        steps = nfe // spl

        def run(steps: int = steps, spl: int = spl) -> None:
            sar_dps(y, prior, speckle, cfg("sar_dps", steps=steps, samples=spl, init="lee"), seeds=seeds)

        add(name, f"SAR-DPS JF {steps} steps x {spl} samples", nfe, timed(run, device, args.repeat))

    def run_jac() -> None:
        sar_dps(
            y, prior, speckle, cfg("sar_dps", steps=10, samples=2, init="lee", jacobian=True), seeds=seeds
        )

    add(name, "SAR-DPS Jacobian 10 steps x 2 samples", 20, timed(run_jac, device, args.repeat))

    t = reference_dps_seconds(y, prior, args.looks, args.ref_steps, device)
    add(name, "reference DPS 1000 steps + backprop", 1000, t, f"extrapolated from {args.ref_steps} steps")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", nargs="+", default=["gray"])
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--looks", type=float, default=1.0)
    ap.add_argument("--nfe", type=int, nargs="+", default=[20, 40, 100])
    ap.add_argument("--ref-steps", type=int, default=10, help="reference DPS steps timed (x 1000/steps)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="CPU network precision")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "solver_speed.json")
    args = ap.parse_args(argv)

    from geodiff.device import PRECISION_ENV, cpu_threads
    from sensors.speckle_filters import lee

    os.environ[PRECISION_ENV] = args.precision
    torch.set_num_threads(args.threads or cpu_threads())
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    threads = torch.get_num_threads()
    dev_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({threads} threads, {args.precision})"
    )
    rng = np.random.default_rng(0)
    b, s = args.batch, args.tile
    a = np.clip(0.35 + 0.1 * rng.standard_normal((b, 1, s, s)), 0.01, 1)
    y_np = a * a * rng.gamma(args.looks, 1 / args.looks, size=a.shape)
    y = torch.tensor(y_np, dtype=torch.float32, device=device)
    px = b * s * s
    rows = []

    def add(prior: str, method: str, nfe: int, secs: float, note: str = "") -> None:
        row = dict(prior=prior, method=method, NFE=nfe, s_per_tile=secs / b, mpx_per_s=px / secs / 1e6)
        row.update(device=dev_name, tile=s, batch=b, note=note)
        rows.append(row)
        print(f"{prior:8s} {method:34s} NFE={nfe:5d} {secs / b:9.3f} s/tile {px / secs / 1e6:8.4f} Mpx/s",
              file=sys.stderr, flush=True)  # fmt: skip

    t = timed(lambda: [lee(y_np[i, 0], looks=args.looks, window=7) for i in range(b)], torch.device("cpu"), 3)
    add("-", "lee 7x7 (numpy, CPU)", 0, t)
    for name in args.priors:
        bench_prior(name, y, args, device, add)
    print(f"| prior | method | NFE | s/tile ({s}²) | Mpx/s | device |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['prior']} | {r['method']} | {r['NFE']} | {r['s_per_tile']:.3f} | {r['mpx_per_s']:.4f} "
              f"| {r['device']} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(python=platform.python_version(), torch=torch.__version__, machine=platform.machine())
    args.out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
