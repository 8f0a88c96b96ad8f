"""Why the DPS fusion lost to the classical baselines, and what each change of the default buys.

One factor at a time, on the six BigEarthNet S1/S2 pairs (the development pairs; 120², S2 L2A, VV):
the SAR (raw or despeckled), the proximal step (subgradient steps or Chambolle-Pock, and how many
iterations), the weights a, b, c, d (constants or the per-pixel rule of
``geodiff.solvers.fusion.FusionWeights``), the prior (the shipped ``gray`` prior, an untrained
Gaussian stand-in, or none: the proximal point of the start image alone), the start (noise, the
average, a Laplacian-pyramid fusion) and the steps. Every DPS row runs ``geodiff.solvers.fuse_dps``
on the pair as one tile (reflect-padded to the prior's stride); F is the fused luminance, A the
optical luminance, B the SAR amplitude the row used, all in [0, 1] as `geodiff fuse` makes them.

    .venv/bin/python bench/fusion_ablation.py [--datasets bigearthnet] [--rows NAME,...]

Prints the table (mean over the pairs) and writes bench/results/fusion_ablation.json.
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
from fusion import METRICS, SHARED, pairs, standin_prior  # noqa: E402

from geodiff.apps.fuse import fuse_arrays  # noqa: E402
from geodiff.apps.fuse.arrays import scene_share  # noqa: E402
from geodiff.apps.fuse.baselines import BASELINES, laplacian_fusion  # noqa: E402
from geodiff.apps.fuse.scene import load_pair  # noqa: E402
from geodiff.likelihoods import FusionModel  # noqa: E402
from geodiff.solvers import SamplerConfig, fuse_dps  # noqa: E402
from geodiff.solvers.fusion import FusionWeights, weighted_prox  # noqa: E402
from geodiff.solvers.loop import sample  # noqa: E402
from sensors.fusion_quality import fusion_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT = {
    "sar": "lee", "prior": "gray", "weights": "auto", "intensity": 0.7, "gradient": 6.0, "prox": "cp",
    "iters": 400, "start": "laplacian", "steps": 5, "t0": 200,
}  # fmt: skip
OLD = {
    "sar": "raw", "prior": "gray", "weights": (1.0, 1.0, 1.0, 1.0), "prox": "cp", "iters": 60,
    "start": "average", "steps": 20, "t0": 500, "cp_scale": 1.0,
}  # fmt: skip
ROWS: dict[str, dict] = {
    "old default (issue)": OLD,
    "old + Lee SAR": {**OLD, "sar": "lee"},
    "old + Lee + Laplacian start t0 200, 5 steps": {
        **OLD,
        "sar": "lee",
        "start": "laplacian",
        "t0": 200,
        "steps": 5,
    },  # fmt: skip
    "new default": DEFAULT,
    "  SAR raw": {**DEFAULT, "sar": "raw"},
    "  SAR despeckled by SAR-DPS": {**DEFAULT, "sar": "sar-dps"},
    "  weights 1,1,1,1": {**DEFAULT, "weights": (1.0, 1.0, 1.0, 1.0)},
    "  a = b (no PCA shares)": {**DEFAULT, "share": (0.5, 0.5)},
    "  c = d (no gradient-energy split)": {**DEFAULT, "power": 1e-9},
    "  gradient split without the PCA shares": {**DEFAULT, "share_edges": False},
    "  ... and intensity 1.4 (first rule)": {**DEFAULT, "share_edges": False, "intensity": 1.4},
    "  gradient shares ^0.75": {**DEFAULT, "share_power": 0.75},
    "  gradient shares ^0.5": {**DEFAULT, "share_power": 0.5},
    "  gradient shares ^0.5, intensity 2": {**DEFAULT, "share_power": 0.5, "intensity": 2.0},
    "  intensity 0.35, gradient 3": {**DEFAULT, "intensity": 0.35, "gradient": 3.0},
    "  intensity 1.4, gradient 12": {**DEFAULT, "intensity": 1.4, "gradient": 12.0},
    "  prox 60 iterations": {**DEFAULT, "iters": 60},
    "  prox 200 iterations": {**DEFAULT, "iters": 200},
    "  prox unscaled (J, not J/4)": {**DEFAULT, "cp_scale": 1.0},
    "  subgradient, step 1e-3": {**DEFAULT, "prox": "subgradient", "eta": 1e-3, "iters": 100},
    "  subgradient, step 1e-2": {**DEFAULT, "prox": "subgradient", "eta": 1e-2, "iters": 100},
    "  Gaussian stand-in prior": {**DEFAULT, "prior": "gaussian"},
    "  no prior (prox of the start)": {**DEFAULT, "prior": "none"},
    "  start average": {**DEFAULT, "start": "average"},
    "  start noise (t0 = T-1, 10 steps)": {**DEFAULT, "start": "noise", "steps": 10},
    "  t0 400": {**DEFAULT, "t0": 400},
    "  10 steps": {**DEFAULT, "steps": 10},
}


def _pad(x: np.ndarray, m: int = 8) -> tuple[torch.Tensor, tuple[int, int]]:
    t = torch.from_numpy(x).float()[None, None]
    h, w = x.shape
    return torch.nn.functional.pad(t, (0, -w % m, 0, -h % m), mode="reflect"), (h, w)


def fuse_row(o_np: np.ndarray, r_np: np.ndarray, v: dict, priors: dict) -> np.ndarray:
    """F (H, W) in [0, 1] of one ablation row on one pair (one tile)."""
    (o, hw), (r, _) = _pad(o_np), _pad(r_np)
    share = v.get("share") or scene_share(o_np, r_np, np.ones(o_np.shape, bool))
    rule = FusionWeights(
        v.get("intensity", 0.7), v.get("gradient", 6.0), power=v.get("power", 2.0),
        share_edges=v.get("share_edges", True), share_power=v.get("share_power", 1.0),
    )  # fmt: skip
    const = v["weights"] != "auto"
    maps = (*v["weights"][:2], *v["weights"][2:]) if const else rule.maps(o, r, share)
    if v["start"] == "laplacian":
        lw = share if not const else (0.5, 0.5)
        est = torch.from_numpy(
            laplacian_fusion(o[0, 0].double().numpy(), r[0, 0].double().numpy(), low_weights=lw)
        )
        est = est.float()[None, None]
    elif v["start"] == "average":
        est = (o + r) / 2
    else:
        est = None
    scale = v.get("cp_scale", 0.25)

    def prox(f0: torch.Tensor) -> torch.Tensor:
        if v["prox"] == "cp":
            return weighted_prox(f0, o, r, maps, v["iters"], scale=scale)
        from geodiff.likelihoods import _grad2d, _grad2d_adjoint

        a, b, c, d = maps
        f = f0.clone()
        for _ in range(v["iters"]):  # subgradient descent on J
            gox, goy = _grad2d(f - o)
            grx, gry = _grad2d(f - r)
            g = (
                torch.sign(f - f0) + a * torch.sign(f - o) + b * torch.sign(f - r)
                + _grad2d_adjoint(c * torch.sign(gox), c * torch.sign(goy))
                + _grad2d_adjoint(d * torch.sign(grx), d * torch.sign(gry))
            )  # fmt: skip
            f = f - v["eta"] * g
        return f

    if v["prior"] == "none":
        f = prox(est)
    elif v["weights"] != "auto" and v["prox"] == "cp" and scale == 1.0:
        physics = FusionModel(*v["weights"], prox_iters=v["iters"])  # the original eq. 25 sampler
        config = SamplerConfig.defaults("fuse_dps", steps=v["steps"], t0=v["t0"])
        f = fuse_dps(o, r, priors[v["prior"]], physics, config, estimate=est, seeds=[0]).mean
    else:
        prior = priors[v["prior"]]
        init = "noise" if est is None else "average"
        config = SamplerConfig.defaults("fuse_dps", steps=v["steps"], t0=v["t0"], init=init)

        def guide(z0: torch.Tensor, step: object) -> torch.Tensor:
            return 2 * prox((z0 + 1) / 2) - 1

        z = sample(
            prior, tuple(o.shape), config, guide=guide, init=None if est is None else 2 * est - 1, seeds=[0]
        )
        f = (z[:, 0] + 1) / 2
    return f.clamp(0, 1)[0, 0, : hw[0], : hw[1]].double().numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="bigearthnet")
    ap.add_argument("--rows", default=None, help="Comma-separated row names (default: all).")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fusion_ablation.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from geodiff.priors import load_cached

    priors = {"gray": load_cached("gray", torch.device("cpu")), "gaussian": standin_prior()}
    todo = [p for p in pairs(SHARED) if p[0] in args.datasets.split(",")]
    rows = {k: v for k, v in ROWS.items() if not args.rows or k.strip() in args.rows.split(",")}
    data: dict[str, list] = {}
    despeckle_s: dict[str, float] = {}
    for sar in sorted({v["sar"] for v in rows.values()} | {"lee"}):
        t = time.perf_counter()
        data[sar] = []
        for _, _, opt, s in todo:
            pair = load_pair(opt, s, despeckle_sar=None if sar == "raw" else sar, seed=0)
            res = fuse_arrays(pair.optical, pair.sar, sar_units="intensity", rgb=pair.rgb, method="average",
                              despeckle_sar=None, return_details=True)  # fmt: skip
            v = res.valid
            data[sar].append((np.where(v, res.optical, 0.0), np.where(v, res.sar, 0.0)))
        despeckle_s[sar] = (time.perf_counter() - t) / len(todo)
    table: dict[str, dict] = {}
    for name in BASELINES:
        scores = [fusion_report(BASELINES[name](o, r), o, r) for o, r in data["lee"]]
        table[f"{name} (Lee SAR)"] = {k: float(np.mean([s[k] for s in scores])) for k in METRICS}
        table[f"{name} (Lee SAR)"]["seconds"] = 0.0
    for name, v in rows.items():
        t = time.perf_counter()
        scores = [fusion_report(fuse_row(o, r, v, priors), o, r) for o, r in data[v["sar"]]]
        row = {k: float(np.mean([s[k] for s in scores])) for k in METRICS}
        row["seconds"] = (time.perf_counter() - t) / len(todo) + (
            despeckle_s[v["sar"]] if v["sar"] != "raw" else 0
        )
        table[name] = row
        print(f"{name:<46}" + " ".join(f"{k} {row[k]:.3f}" for k in METRICS) + f"  {row['seconds']:.2f}s",
              file=sys.stderr, flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"datasets": args.datasets, "pairs": len(todo), "rows": {k: ROWS.get(k) for k in rows},
           "despeckle_seconds_per_pair": despeckle_s, "table": table}  # fmt: skip
    args.out.write_text(json.dumps(doc, indent=2, default=list))
    print("| row | " + " | ".join(METRICS) + " | s/pair |")
    print("|---|" + "---:|" * (len(METRICS) + 1))
    for name, r in table.items():
        print(
            f"| {name.strip()} | " + " | ".join(f"{r[k]:.3f}" for k in METRICS) + f" | {r['seconds']:.2f} |"
        )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
