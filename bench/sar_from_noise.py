"""SAR-DPS from pure noise (no start estimate) on the PROTOCOL §1 dev set: before/after rows and a trace.

    .venv/bin/python bench/sar_from_noise.py [--limit N] [--every K] [--crop 128] [--looks 1 4]
        [--variants a,b | all] [--trace VARIANT] [--threads 1]

Rows: the noisy input, Lee 7x7 (the target) and SAR-DPS variants started from noise at T-1, scored as
PROTOCOL §1 (amplitude PSNR/SSIM, speckle draws of ``bench/solvers_dev.py``: default_rng(1234 + L), one
draw per image in sorted order). ``--crop C`` scores the central C x C crop of every image (cheaper on
a CPU: the prior's attention makes a 256² tile ~10x the cost of a 128² one); ``--every K`` keeps every
K-th image. ``legacy-*`` variants rebuild the guidance as it was before this benchmark (Fisher-scored
Newton steps, no curvature safeguard, no clamp, the mode instead of the posterior mean) to show the
before/after in one run. ``--trace V`` records per step for variant V: PSNR of x0_hat before and after
the guidance, the guidance's mean |dz|, the range of the guided z and of x_t, and v = zeta Var(x0|x_t).

Writes bench/results/sar_from_noise.json (rows, trace, settings) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solvers_dev import lee_filter, load_dev, score, speckle  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "sar_from_noise.json"

# name -> (SamplerConfig changes, SpeckleModel quadrature nodes or "legacy"); all from noise, NFE <= 100
_N = dict(init="noise")
VARIANTS: dict[str, tuple[dict, int | str]] = {
    "legacy-jf-100x1": (dict(steps=100, samples=1, **_N), "legacy"),
    "legacy-jf-100x1-clamped": (dict(steps=100, samples=1, **_N), "legacy-clamped"),
    "jf-100x1": (dict(steps=100, samples=1, **_N), 8),
    "jf-100x1-eta1": (dict(steps=100, samples=1, eta=1.0, **_N), 8),
    "jf-25x4-eta1": (dict(steps=25, samples=4, eta=1.0, **_N), 8),
    "jf-100x1-eta1-mode": (dict(steps=100, samples=1, eta=1.0, **_N), 0),
    "jac-100x1-eta1": (dict(steps=100, samples=1, eta=1.0, jacobian=True, **_N), 8),
    "jac-25x4-eta1": (dict(steps=25, samples=4, eta=1.0, jacobian=True, **_N), 8),
    "jac-10x10-eta1": (dict(steps=10, samples=10, eta=1.0, jacobian=True, **_N), 8),
    # with the app's local-mean radiometry (31 px), as `geodiff despeckle` applies it to every sampler
    "jac-25x4-eta1-mw31": (dict(steps=25, samples=4, eta=1.0, jacobian=True, mean_window=31, **_N), 8),
    "jac-20x5-eta1-mw31": (dict(steps=20, samples=5, eta=1.0, jacobian=True, mean_window=31, **_N), 8),
}
DEFAULT = "legacy-jf-100x1,jf-100x1-eta1,jac-100x1-eta1"


def legacy_guidance(clamped: bool):
    """The guidance as it was: Fisher-scored Newton steps, no curvature safeguard, the mode (MAP);
    ``clamped`` adds only the clamp of the result to the prior's domain."""
    from geodiff.solvers.sar import A_MIN

    def make(y, physics, config):
        lik, scale = physics.likelihood(y), physics.scale

        def guide(z0, step):
            var = config.x0_variance(step)
            z = z0
            for _ in range(config.newton_iters):
                a = ((z + 1) / 2).clamp_min(A_MIN)
                inten = scale * a * a
                g, fi = lik.grad(torch.log(inten)) / a, lik.fisher(inten) / (a * a)
                z = z - (g + (z - z0) / var) / (fi + 1.0 / var)
            return z.clamp(*config.clip) if clamped and config.clip is not None else z

        return guide

    return make


class Tracer:
    """Wraps the prior and the guidance to record per-step figures (only when tracing)."""

    def __init__(self, prior, clean: np.ndarray, samples: int):
        self.prior, self.records = prior, []
        self.clean = None  # set per batch (B * samples, 1, H, W)
        self.domain, self.channels, self.stride = prior.domain, prior.channels, prior.stride
        self.alphas_cumprod = prior.alphas_cumprod
        self.amplitude_median = getattr(prior, "amplitude_median", None)

    def to(self, device, dtype=None):
        self.prior.to(device, dtype)
        return self

    def eps(self, x, t):
        self.records.append(dict(t=int(t.flatten()[0]), xt_min=float(x.min()), xt_max=float(x.max())))
        return self.prior.eps(x, t)

    def psnr(self, z):
        a = ((z + 1) / 2).clamp(0, 1)
        return float((-10 * torch.log10(((a - self.clean) ** 2).flatten(1).mean(1))).mean())

    def wrap(self, make):
        def traced(y, physics, config):
            guide = make(y, physics, config)

            def g(z0, step):
                z = guide(z0, step)
                self.records[-1].update(
                    psnr_x0=self.psnr(z0), psnr_guided=self.psnr(z), dz=float((z - z0).abs().mean()),
                    z_min=float(z.min()), z_max=float(z.max()), v=float(config.x0_variance(step)),
                )  # fmt: skip
                return z

            return g

        return traced


def run_variant(prior, ys, clean, looks, name, batch, seed0, trace=False):
    import geodiff.solvers.sar as sar
    from geodiff.solvers import SamplerConfig, SpeckleModel, sar_dps

    changes, quad = VARIANTS[name]
    cfg = SamplerConfig.defaults("sar_dps", **changes)
    original = sar.sar_guidance
    make = legacy_guidance(quad == "legacy-clamped") if isinstance(quad, str) else original
    tracer = Tracer(prior, clean, cfg.samples) if trace else None
    net = tracer if trace else prior
    sar.sar_guidance = tracer.wrap(make) if trace else make
    outs, t0 = [], time.process_time()
    try:
        for i in range(0, len(ys), batch):
            y = torch.tensor(np.stack(ys[i : i + batch])[:, None], dtype=torch.float32)
            physics = SpeckleModel(looks, 1.0, "log", quadrature=0 if isinstance(quad, str) else quad)
            seeds = list(range(seed0 + i, seed0 + i + len(y)))
            if trace:
                tracer.clean = torch.tensor(
                    np.stack(clean[i : i + batch])[:, None], dtype=torch.float32
                ).repeat_interleave(cfg.samples, 0)
            res = sar_dps(y, net, physics, cfg, seeds=seeds)
            outs.extend(list(res.mean[:, 0].double().numpy()))
    finally:
        sar.sar_guidance = original
    cpu = (time.process_time() - t0) / len(ys)
    return outs, cpu, cfg.steps * cfg.samples, (tracer.records if trace else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--every", type=int, default=1, help="keep every K-th dev image")
    ap.add_argument("--crop", type=int, default=None, help="score the central C x C crop (multiple of 8)")
    ap.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--variants", default=DEFAULT)
    ap.add_argument("--trace", default=None, help="record per-step figures of this variant")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prior", default="gray")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from geodiff.priors import load

    prior = load(args.prior)
    everything = load_dev(None)
    keep = list(range(0, len(everything), args.every))[: args.limit]

    def crop(a: np.ndarray) -> np.ndarray:
        if not args.crop:
            return a
        c, (h, w) = args.crop, a.shape
        return a[(h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c]

    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    if args.trace and args.trace not in names:
        names.append(args.trace)
    meta = dict(protocol="PROTOCOL.md §1 (speckle draws as bench/solvers_dev.py)", prior=args.prior,
                images=[everything[i][0] for i in keep], crop=args.crop, threads=args.threads,
                cpu_s="process CPU seconds per image (all draws)")  # fmt: skip
    rows, traces = [], {}
    for looks in args.looks:
        ys_all = speckle(everything, looks, len(everything))  # draws of the full run, then the subset
        clean = [crop(everything[i][1]) for i in keep]
        ys = [crop(ys_all[i]) for i in keep]

        def add(name, outs, cpu, nfe, _c=clean, _l=looks):
            ps, ss = zip(*(score(a, o) for a, o in zip(_c, outs, strict=True)), strict=True)
            row = dict(method=name, L=_l, NFE=nfe, PSNR=float(np.mean(ps)), SSIM=float(np.mean(ss)),
                       PSNR_per_image=[float(p) for p in ps], cpu_s=cpu, images=len(outs))  # fmt: skip
            rows.append(row)
            print(f"{name:28s} L={_l} NFE={nfe:3d} PSNR={row['PSNR']:6.2f} SSIM={row['SSIM']:.4f}",
                  f"cpu/img={cpu:7.2f}s", file=sys.stderr, flush=True)  # fmt: skip
            write(args.out, meta, rows, traces)

        add("noisy", ys, 0.0, 0)
        t0 = time.process_time()
        add("lee7x7", [lee_filter(y, looks) for y in ys], (time.process_time() - t0) / len(ys), 0)
        for name in names:
            trace = name == args.trace
            outs, cpu, nfe, rec = run_variant(prior, ys, clean, looks, name, args.batch, 1000 * looks, trace)
            if rec is not None:
                traces[f"{name}@L{looks}"] = rec
            add(f"sar-dps:{name}", outs, cpu, nfe)
    print("| method | L | NFE | PSNR | SSIM | CPU s/image |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cells = (r["method"], r["L"], r["NFE"], f"{r['PSNR']:.2f}", f"{r['SSIM']:.4f}", f"{r['cpu_s']:.2f}")
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


def write(path: Path, meta: dict, rows: list, traces: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(meta=meta, rows=rows, traces=traces), indent=1))
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
