"""Ablation of the SAR-PnP solver (PnP-ADMM + come-closer refinement) on the PROTOCOL §1 dev images.

    .venv/bin/python bench/pnp_ablation.py --limit 8 --looks 1 4 \
        --variant 'a3-r20x4x2={"admm_iters": 3, "sigma0": 0.2}' --variant 'noref={"refine": false}'

The bare solver (:func:`geodiff.solvers.sar_pnp`) on whole 256² images, the shipped ``gray`` prior, torch
on one thread. The scale s in I = s a² is the CLI's (``--scale scene``: the app's
:func:`geodiff.apps.despeckle.sar_dps.scene_scale` on the whole image, as ``geodiff despeckle`` computes
it) or s = 1 (``--scale one``: the protocol's amplitudes already live in the prior's range). Each
variant is a JSON object of SamplerConfig fields on top of BASE; its key ``scale_rule`` (an object of
``scene_scale`` keywords, e.g. ``{"quantile": null}`` for the median rule alone) sets the scene scale rule.
Prints PSNR, SSIM, the paired difference to BM3D-log (mean ± standard error over images), CPU seconds
per image (``time.process_time``) and the images more than 0.5 dB below BM3D-log; appends the rows to
bench/results/pnp_ablation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import solvers_dev  # noqa: E402  (dev set, speckle draws, BM3D-log cache)

OUT = REPO / "bench" / "results" / "pnp_ablation.json"
#: The app's fixed radiometry and refinement settings every variant starts from.
BASE = dict(mean_window=31, bright=0.9, zeta=1.0, ensemble=True, newton_iters=1, admm_sigma=0.3)


def run_variant(prior, images, ys, looks: int, cfg: dict, scale: str = "scene") -> dict:
    """Score one configuration on every image; returns the row (means and paired deltas to BM3D-log)."""
    from geodiff.apps.despeckle.sar_dps import scene_scale
    from geodiff.solvers import SamplerConfig, SpeckleModel, sar_pnp

    cfg = dict(cfg)
    rule = cfg.pop("scale_rule", {})
    config = SamplerConfig.defaults("sar_pnp", **{**BASE, **cfg})
    ps, qs, dp, dq = [], [], [], []
    c = time.process_time()
    for i, ((name, a), y) in enumerate(zip(images, ys, strict=True)):
        bm = solvers_dev.score(a, solvers_dev.bm3d_log_cached(name, y, looks)[0])
        yt = torch.tensor(y[None, None], dtype=torch.float32)
        s = 1.0 if scale == "one" else scene_scale(y, np.ones(y.shape, bool), looks, "gray", **rule)
        res = sar_pnp(yt, prior, SpeckleModel(looks, s), config, seeds=[1000 * looks + i])
        p, q = solvers_dev.score(a, res.mean[0, 0].double().numpy())
        ps.append(p), qs.append(q), dp.append(p - bm[0]), dq.append(q - bm[1])
    secs = (time.process_time() - c) / len(images)
    return dict(L=looks, config=cfg, PSNR=float(np.mean(ps)), SSIM=float(np.mean(qs)),
                dPSNR=float(np.mean(dp)), dPSNR_se=float(np.std(dp, ddof=1) / np.sqrt(len(dp))),
                dSSIM=float(np.mean(dq)), scale=scale,
                per_image={n: round(d, 3) for (n, _), d in zip(images, dp, strict=True)},
                cpu_s=secs, nfe=res.nfe, images=len(images))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--variant", action="append", default=[], help="NAME=JSON of SamplerConfig fields")
    ap.add_argument("--scale", choices=["scene", "one"], default="scene", help="scene scale rule or s = 1")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from geodiff.priors import load

    prior = load("gray")
    images = solvers_dev.load_dev(args.limit)
    for looks in args.looks:
        ys = solvers_dev.speckle(images, looks, len(images))
        for spec in args.variant:
            name, cfg = spec.split("=", 1)
            row = dict(variant=name, **run_variant(prior, images, ys, looks, json.loads(cfg), args.scale))
            rows = json.loads(OUT.read_text()) if OUT.exists() else []  # re-read: runs may share it
            OUT.write_text(json.dumps([*rows, row], indent=1))
            print(f"L={looks} {name:22s} PSNR {row['PSNR']:.2f} SSIM {row['SSIM']:.4f} "
                  f"dPSNR {row['dPSNR']:+.2f}±{row['dPSNR_se']:.2f} dSSIM {row['dSSIM']:+.4f} "
                  f"CPU s {row['cpu_s']:.1f} NFE {row['nfe']} below: "
                  + " ".join(f"{n[:5]} {d:+.2f}" for n, d in row["per_image"].items() if d < -0.5),
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
