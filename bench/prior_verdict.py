"""Does a newly trained prior ship? Compares candidates with the current prior on the two benchmarks.

    python bench/prior_verdict.py --current gray --candidates gray2 gray-sar \\
        --denoise prior_denoise.json --dev solvers_dev_gray.json solvers_dev_gray2.json ... \\
        --weights runs/gray2/gray2.safetensors runs/gray-sar/gray-sar.safetensors --out prior_verdict.json

A candidate ships only when all three hold (issue 17):
* ``bench/prior_denoise.py`` (one-step Tweedie denoising of the 50 dev images): mean PSNR above the
  current prior's at every noise level;
* ``bench/solvers_dev.py`` (SAR-DPS on the PROTOCOL §1 dev set, the same variants and looks for every
  prior; one JSON per prior, its ``meta.prior`` names it): mean PSNR above the current prior's for every
  (variant, L) both were run with;
* its weights file (float16) is at most ``--max-mb`` MB (48: the default CPU prior stays small).
Deltas are reported per noise level / (variant, L); ties (|delta| < ``--tie`` dB) do not count as better.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _stem(name: str) -> str:
    return Path(name).stem if name.endswith(".safetensors") else name


def denoise_psnr(path: Path) -> dict[str, dict[str, float]]:
    """{prior stem: {sigma: mean PSNR}} from a prior_denoise.py JSON."""
    data = json.loads(path.read_text())
    return {
        _stem(name): {s: v["psnr_mean"] for s, v in entry["sigmas"].items()}
        for name, entry in data.get("priors", {}).items()
    }


def dev_psnr(paths: list[Path]) -> dict[str, dict[str, float]]:
    """{prior stem: {"variant L=..": mean PSNR}} from solvers_dev.py JSONs (SAR-DPS rows only)."""
    out: dict[str, dict[str, float]] = {}
    for p in paths:
        data = json.loads(p.read_text())
        prior = _stem(str(data["meta"]["prior"]))
        for r in data["rows"]:
            if str(r["solver"]).startswith("sar-dps"):
                out.setdefault(prior, {})[f"{r['solver'].split(':', 1)[-1]} L={r['L']}"] = r["PSNR"]
    return out


def verdict(current: str, candidate: str, denoise: dict, dev: dict, size_mb: float | None,
            max_mb: float, tie: float) -> dict:  # fmt: skip
    """The per-benchmark deltas (candidate - current, dB) and whether ``candidate`` ships."""
    reasons = []
    rows: dict = {"prior": candidate, "fp16_mb": size_mb}
    for bench, table in (("prior_denoise", denoise), ("solvers_dev", dev)):
        cur, new = table.get(current, {}), table.get(candidate, {})
        keys = sorted(set(cur) & set(new))
        deltas = {k: round(new[k] - cur[k], 3) for k in keys}
        rows[bench] = {"current": {k: cur[k] for k in keys}, "candidate": {k: new[k] for k in keys},
                       "delta_db": deltas}  # fmt: skip
        if not keys:
            reasons.append(f"{bench}: not run for both priors")
        elif any(d < tie for d in deltas.values()):
            worst = min(deltas, key=deltas.get)
            reasons.append(f"{bench}: not better everywhere ({worst}: {deltas[worst]:+.3f} dB)")
    if size_mb is None:
        reasons.append("weights file missing")
    elif size_mb > max_mb:
        reasons.append(f"weights {size_mb:.1f} MB > {max_mb:.0f} MB")
    rows["ships"] = not reasons
    rows["reasons"] = reasons or [f"beats {current} on both benchmarks and fits {max_mb:.0f} MB"]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--current", default="gray")
    ap.add_argument("--candidates", nargs="+", required=True, help="prior names (file stems)")
    ap.add_argument("--denoise", type=Path, required=True, help="prior_denoise.py JSON with every prior")
    ap.add_argument("--dev", type=Path, nargs="+", required=True, help="solvers_dev.py JSONs, one per prior")
    ap.add_argument("--weights", type=Path, nargs="*", default=[], help="candidate .safetensors files")
    ap.add_argument("--max-mb", type=float, default=48.0)
    ap.add_argument("--tie", type=float, default=0.005, help="dB below which a gain is a tie")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    den = denoise_psnr(args.denoise) if args.denoise.exists() else {}
    dev = dev_psnr([p for p in args.dev if p.exists()])
    sizes = {p.stem: p.stat().st_size / 1e6 for p in args.weights if p.exists()}
    out = [verdict(args.current, c, den, dev, sizes.get(c), args.max_mb, args.tie) for c in args.candidates]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"current": args.current, "candidates": out}, indent=1) + "\n")
    print("| prior | fp16 MB | prior_denoise delta dB | SAR-DPS dev delta dB | ships | why |")
    print("|---|---|---|---|---|---|")
    for r in out:
        d1 = ", ".join(f"σ{k} {v:+.2f}" for k, v in r["prior_denoise"]["delta_db"].items()) or "-"
        d2 = ", ".join(f"{k} {v:+.2f}" for k, v in r["solvers_dev"]["delta_db"].items()) or "-"
        mb = "-" if r["fp16_mb"] is None else f"{r['fp16_mb']:.1f}"
        ships = "yes" if r["ships"] else "no"
        print(f"| {r['prior']} | {mb} | {d1} | {d2} | {ships} | {'; '.join(r['reasons'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
