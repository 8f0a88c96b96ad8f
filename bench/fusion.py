"""PROTOCOL §3: optical-SAR fusion scores of the DPS fusion next to the four classical baselines.

Pairs: the six BigEarthNet S1/S2 pairs (120², S2 L2A B02/B03/B04/B08), the Sen1Floods11 pair (512²,
S2 L1C, cloud-free) and the two SEN12MS-CR pairs (256² with a cloudy S2; 256x512 open sea). Every
method fuses the same inputs through the same pipeline as `geodiff fuse` (sensors decoding, alignment,
robust [0, 1] scaling of the optical luminance A and the SAR VV amplitude B); F is the fused luminance.
The SAR is despeckled with Lee by default (as `geodiff fuse` does; --despeckle-sar none for the raw
SAR); every method sees the same B and the table says which. Scores: PROTOCOL §3 plus CE (VIFB's
cross-entropy, lower is better).

    .venv/bin/python bench/fusion.py [--limit N] [--steps 5] [--prior gray] [--despeckle-sar lee|none]

Prints one table per dataset (mean over its pairs) and writes bench/results/fusion.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from geodiff.apps.fuse import FUSION_METHODS, FusionConfig, fuse_arrays
from geodiff.apps.fuse.scene import load_pair
from sensors.fusion_quality import fusion_report

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
METRICS = ("EN", "MI", "SSIM", "Qabf", "VIFF", "PSNR", "CE")


def pairs(shared: Path) -> list[tuple[str, str, Path, Path]]:
    """(dataset, pair name, optical, sar) in a fixed order."""
    out = []
    for d in sorted((shared / "bigearthnet_s1s2_pairs").iterdir()):
        out.append(("bigearthnet", d.name, d / "s2_B02_B03_B04_B08.tif", d / "s1_VV_VH_db.tif"))
    d = shared / "sen1floods11_s1s2_pairs" / "Spain_7370579"
    out.append(("sen1floods11", d.name, d / "s2_L1C_13bands.tif", d / "s1_VV_VH_db.tif"))
    d = shared / "sen12mscr_s1s2_pairs" / "ROIs1868_summer_19_p30"
    out.append(("sen12mscr-cloudy", d.name, d / "s2_cloudy_L1C_13bands.tif", d / "s1_VV_VH_db.tif"))
    d = shared / "sen12mscr_s1s2_pairs" / "ROIs1158_spring_101_p30-32"
    out.append(("sen12mscr-sea", d.name, d / "s2_cloudfree_L1C_13bands.tif", d / "s1_VV_VH_db.tif"))
    return out


def standin_prior():  # noqa: ANN201
    """Analytic Gaussian prior in the amplitude domain (z = 2f - 1 ~ N(0, 0.5^2)): no learned structure."""
    from geodiff.priors.gaussian import GaussianPrior

    p = GaussianPrior(0.0, 0.5)
    p.domain = "amplitude"
    return p


def _prior_info(name: str) -> dict | None:
    """Name, file hash and training steps of the prior, so that a table says which weights made it."""
    import hashlib

    from geodiff import priors

    for m in priors.list_models():
        if m["name"] == name:
            digest = hashlib.sha256(Path(m["path"]).read_bytes()).hexdigest()[:16]
            return {"name": name, "sha256_16": digest, "training_steps": m.get("training_steps")}
    return None


def _summarise(per_pair: list[dict], methods: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of every score per dataset and method."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for ds in dict.fromkeys(e["dataset"] for e in per_pair):
        group = [e for e in per_pair if e["dataset"] == ds]
        summary[ds] = {
            m: {k: float(np.mean([e["methods"][m][k] for e in group])) for k in (*METRICS, "seconds")}
            for m in methods
        }
    return summary


def _write(out: Path, settings: dict, summary: dict, per_pair: list, complete: bool) -> None:
    """Write the JSON atomically (after every pair too, so a long run leaves its finished pairs)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.part")
    doc = {"complete": complete, "settings": settings, "summary": summary, "pairs": per_pair}
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(out)


WINS = ("EN", "MI", "SSIM", "Qabf", "VIFF")  # the criterion: higher is better on each


def dps_wins(rows: dict[str, dict[str, float]]) -> dict[str, bool]:
    """Per metric of WINS: does dps beat the best classical baseline of the same run (mean scores)?"""
    base = [m for m in rows if m != "dps"]
    if "dps" not in rows or not base:
        return {}
    return {k: rows["dps"][k] > max(rows[m][k] for m in base) for k in WINS}


def _table(title: str, rows: dict[str, dict[str, float]]) -> str:
    head = f"{'method':<10}" + "".join(f"{m:>8}" for m in METRICS) + f"{'s/pair':>9}"
    lines = [title, head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<10}" + "".join(f"{r[m]:>8.3f}" for m in METRICS) + f"{r['seconds']:>9.2f}")
    wins = dps_wins(rows)
    if wins:
        lines.append(
            f"dps beats the best baseline on {sum(wins.values())} of {len(wins)}: "
            + ", ".join(k for k, v in wins.items() if v)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="Use only the first N pairs.")
    ap.add_argument(
        "--datasets",
        default=None,
        help="Comma-separated subset of bigearthnet,sen1floods11,sen12mscr-cloudy,sen12mscr-sea.",
    )
    ap.add_argument("--steps", type=int, default=FusionConfig.steps, help="DPS sampling steps.")
    ap.add_argument("--t0", type=int, default=FusionConfig.t0, help="DPS start step (noised average).")
    ap.add_argument(
        "--prior",
        default="gray",
        help="Prior name for geodiff.priors.load, or 'gaussian-standin' (analytic N(0.5, 0.25^2) per pixel, "
        "untrained: it shows the L1/TV guidance alone, not the learned prior).",
    )
    ap.add_argument(
        "--weights", default="auto", help="a,b,c,d of the L1/TV objective, or auto (the per-pixel rule)."
    )
    ap.add_argument("--start", default=FusionConfig.start, help="DPS start: laplacian, average, noise.")
    ap.add_argument("--prox-iters", type=int, default=FusionConfig.prox_iters)
    ap.add_argument("--samples", type=int, default=1, help="DPS posterior draws per tile.")
    ap.add_argument(
        "--despeckle-sar", default=FusionConfig.despeckle_sar, help="Despeckle the SAR first (lee, none...)."
    )
    ap.add_argument("--methods", default=",".join(FUSION_METHODS), help="Comma-separated methods.")
    ap.add_argument("--tile", type=int, default=512, help="DPS tile edge (512: big pairs in one tile).")
    ap.add_argument("--overlap", type=int, default=32, help="DPS tile overlap.")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest on 2 busy cores).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fusion.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    prior = standin_prior() if args.prior == "gaussian-standin" else args.prior
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    weights = None if args.weights == "auto" else tuple(float(v) for v in args.weights.split(","))
    if args.despeckle_sar in ("none", ""):
        args.despeckle_sar = None

    todo = [p for p in pairs(args.shared) if not args.datasets or p[0] in args.datasets.split(",")]
    todo = todo[: args.limit]
    sar_state = f"despeckled with {args.despeckle_sar}" if args.despeckle_sar else "raw (not despeckled)"
    settings = {
        "steps": args.steps,
        "t0": args.t0,
        "prior": args.prior,
        "weights": list(weights) if weights else "auto",
        "start": args.start,
        "prox_iters": args.prox_iters,
        "samples": args.samples,
        "sar": f"VV amplitude, {sar_state}",
        "F": "fused luminance in [0, 1] (before colour restoration)",
        "tile": args.tile,
        "overlap": args.overlap,
        "device": args.device,
        "threads": args.threads,
        "seed": args.seed,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "prior_info": _prior_info(args.prior),
    }
    per_pair = []
    for dataset, name, opt, sar in todo:
        pair = load_pair(opt, sar, despeckle_sar=args.despeckle_sar, seed=args.seed)
        entry = {
            "dataset": dataset,
            "pair": name,
            "size": list(pair.sar.shape),
            "despeckle_sar": pair.despeckle_sar,
            "methods": {},
        }
        for method in methods:
            t = time.perf_counter()
            res = fuse_arrays(
                pair.optical,
                pair.sar,
                sar_units="intensity",
                rgb=pair.rgb,
                method=method,
                weights=weights,
                start=args.start,
                prox_iters=args.prox_iters,
                samples=args.samples,
                despeckle_sar=None,
                steps=args.steps,
                t0=args.t0,
                device=args.device,
                seed=args.seed,
                prior=prior,
                tile=args.tile,
                overlap=args.overlap,
                return_details=True,
            )
            secs = time.perf_counter() - t
            v = res.valid
            f, a, b = (np.where(v, x, 0.0) for x in (res.fused, res.optical, res.sar))
            scores = fusion_report(f, a, b)
            scores["seconds"] = secs
            if method == "dps":
                scores["nfe_per_tile"] = res.info.get("nfe_per_tile")
                scores["pca_share"] = res.info.get("pca_share")
            entry["methods"][method] = scores
            print(
                f"{dataset:<17}{name[:28]:<29}{method:<10}"
                + " ".join(f"{k} {scores[k]:.3f}" for k in METRICS)
                + f"  {secs:.2f}s",
                file=sys.stderr,
                flush=True,
            )
        per_pair.append(entry)
        _write(args.out, settings, _summarise(per_pair, methods), per_pair, complete=False)

    summary = _summarise(per_pair, methods)
    datasets = list(summary)
    _write(args.out, settings, summary, per_pair, complete=True)
    print(
        f"PROTOCOL §3 fusion; SAR: VV amplitude, {sar_state}; DPS: prior {args.prior}, {args.steps} steps, "
        f"t0 {args.t0}, start {args.start}, weights {args.weights}, prox {args.prox_iters} iterations"
    )
    for ds in datasets:
        n = sum(e["dataset"] == ds for e in per_pair)
        print()
        print(_table(f"{ds} (mean over {n} pair{'s' if n > 1 else ''})", summary[ds]))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
