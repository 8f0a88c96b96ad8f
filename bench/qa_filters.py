"""No-reference QA (PROTOCOL.md §2) of each classical speckle filter on the real SAR data.

Data (shared/data): sar2sar_s1_singlelook (Sentinel-1 single-look amplitude → intensity, L = 1),
s1_rtc_geotiff (GRD-RTC γ0 linear, L estimated), S1 VV/VH bands of bigearthnet_s1s2_pairs (dB:
decoded to linear through the s1-grd-db profile, filtered, encoded back to dB and decoded again,
as the despeckle pipeline does; L estimated per band). Every figure is the mean over the images
of a set. Prints a table and writes bench/results/qa_filters.json.

    .venv/bin/python bench/qa_filters.py [--window 7] [--data ../shared/data]
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
import rasterio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geodiff.apps.facts import detect_raster  # noqa: E402
from sensors.looks import estimate_looks  # noqa: E402
from sensors.quality import quality_report  # noqa: E402
from sensors.speckle_filters import FILTERS, apply_filter  # noqa: E402

KEYS = ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output")


def load_sets(data: Path) -> dict[str, list[dict]]:
    """Each set: a list of {name, intensity, mask, looks, looks_source, profile}."""
    sets: dict[str, list[dict]] = {}
    items = []
    for p in sorted((data / "sar2sar_s1_singlelook").glob("*.npy")):
        y = np.load(p).astype(np.float64) ** 2
        items.append(
            dict(name=p.stem, intensity=y, mask=y > 0, looks=1.0, looks_source="given", profile=None)
        )
    sets["sar2sar_s1_singlelook (L=1)"] = items

    items = []
    for p in sorted((data / "s1_rtc_geotiff").glob("*.tif")):
        with rasterio.open(p) as ds:
            prof = detect_raster(ds, kind="sar")
            y, mask = prof.decode(ds.read(1), ds.nodata)
        est = estimate_looks(y, mask)
        items.append(
            dict(
                name=p.stem,
                intensity=y.astype(np.float64),
                mask=mask,
                looks=est.looks,
                looks_source="estimated",
                profile=None,
            )
        )
    sets["s1_rtc_geotiff (L est.)"] = items

    items = []
    for p in sorted((data / "bigearthnet_s1s2_pairs").glob("*/s1_VV_VH_db.tif")):
        with rasterio.open(p) as ds:
            prof = detect_raster(ds, kind="sar")
            for b, pol in ((1, "VV"), (2, "VH")):
                y, mask = prof.decode(ds.read(b), ds.nodata)
                est = estimate_looks(y, mask)
                items.append(
                    dict(
                        name=f"{p.parent.name[:26]}_{pol}",
                        intensity=y.astype(np.float64),
                        mask=mask,
                        looks=est.looks,
                        looks_source="estimated",
                        profile=prof,
                    )
                )
    sets["bigearthnet S1 dB->linear (L est.)"] = items
    return sets


def run(data: Path, window: int) -> dict:
    sets = load_sets(data)
    results: dict = {
        "protocol": "PROTOCOL.md section 2 (ratio image, bias, ENL on the 10% lowest-CV 32x32 windows of y)",
        "window": window,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
        "sets": {},
    }
    for set_name, items in sets.items():
        looks_used = [it["looks"] for it in items]
        rows = {}
        for filt in FILTERS:
            per_image, seconds, pixels = [], 0.0, 0
            for it in items:
                y, mask, looks = it["intensity"], it["mask"], it["looks"]
                t0 = time.perf_counter()
                x = apply_filter(filt, y, mask, looks=looks, window=window).astype(np.float64)
                seconds += time.perf_counter() - t0
                pixels += y.size
                xmask = mask & np.isfinite(x)
                if it["profile"] is not None:  # back to the stored convention (dB) and in again
                    stored = it["profile"].encode(x, xmask, dtype=np.float32)
                    x, xmask = it["profile"].decode(stored)
                    x = x.astype(np.float64)
                rep = quality_report(y, x, looks, mask & xmask).to_dict()
                per_image.append({"image": it["name"], "looks": looks, **{k: rep[k] for k in KEYS}})
            agg = {}
            for k in KEYS:
                vals = [r[k] for r in per_image if r[k] is not None]
                agg[k] = float(np.mean(vals)) if vals else None
            agg["mpx_per_s"] = pixels / 1e6 / seconds if seconds > 0 else None
            rows[filt] = {"mean": agg, "images": per_image}
        results["sets"][set_name] = {
            "n_images": len(items),
            "looks": {
                "source": items[0]["looks_source"],
                "mean": float(np.mean(looks_used)),
                "min": float(np.min(looks_used)),
                "max": float(np.max(looks_used)),
            },
            "filters": rows,
        }
    return results


def looks_accuracy(data: Path) -> dict:
    """ENL estimates against known L: synthetic gamma speckle (PROTOCOL §1 draws) on the clean
    development images, and the real single-look Sentinel-1 crops (L = 1 expected)."""
    from PIL import Image

    clean = []
    for i in range(1900, 1950):
        g = np.asarray(Image.open(data / f"virtual_sar_clean_gray/0{i}.jpg").convert("L"), dtype=np.float64)
        clean.append(((g + 1) / 256) ** 2)
    for p in sorted((data / "mva_multitemporal_reference/groundtruth").glob("*.npy")):
        a = np.load(p).astype(np.float64)
        clean.append((a / a.max()) ** 2)
    out: dict = {"synthetic": {}, "n_images": len(clean)}
    for looks in (1, 2, 4, 8):
        rng = np.random.default_rng(1234 + looks)
        ratio = np.array(
            [estimate_looks(c * rng.gamma(looks, 1 / looks, c.shape)).looks / looks for c in clean]
        )
        out["synthetic"][str(looks)] = {
            "median_ratio": float(np.median(ratio)),
            "within_10pct": float(np.mean(np.abs(ratio - 1) < 0.1)),
            "min_ratio": float(ratio.min()),
            "max_ratio": float(ratio.max()),
        }
    real = {}
    for p in sorted((data / "sar2sar_s1_singlelook").glob("*.npy")):
        est = estimate_looks(np.load(p).astype(np.float64) ** 2)
        real[p.stem] = {"looks": est.looks, "low": est.low, "high": est.high, "stride": est.stride}
    vals = [r["looks"] for r in real.values()]
    out["sar2sar_single_look"] = {
        "median": float(np.median(vals)),
        "min": float(np.min(vals)),
        "max": float(np.max(vals)),
        "images": real,
    }
    return out


def looks_table(acc: dict) -> str:
    lines = [f"looks estimate / true L on synthetic gamma speckle, {acc['n_images']} clean images:"]
    for looks, r in acc["synthetic"].items():
        lines.append(
            f"  L={looks}: median {r['median_ratio']:.3f}, within 10% {r['within_10pct']:.0%}, "
            f"range {r['min_ratio']:.3f}..{r['max_ratio']:.3f}"
        )
    s = acc["sar2sar_single_look"]
    lines.append(
        f"real S1 single-look (sar2sar, {len(s['images'])} crops): median {s['median']:.3f}, "
        f"range {s['min']:.3f}..{s['max']:.3f}"
    )
    return "\n".join(lines)


def table(results: dict) -> str:
    head = (
        f"{'data set':40s} {'filter':12s} {'ratio mean':>10s} {'L*var(r)':>9s} {'bias dB':>8s} "
        f"{'ENL in':>7s} {'ENL out':>8s} {'Mpx/s':>6s}"
    )
    lines = [head, "-" * len(head)]
    for set_name, s in results["sets"].items():
        lk = s["looks"]
        label = f"{set_name} n={s['n_images']}"
        for i, (filt, row) in enumerate(s["filters"].items()):
            m = row["mean"]
            lines.append(
                f"{label if i == 0 else '':40s} {filt:12s} {m['ratio_mean']:10.4f} "
                f"{m['ratio_var_times_looks']:9.4f} {m['bias_db']:+8.4f} {m['enl_input']:7.2f} "
                f"{m['enl_output']:8.2f} {m['mpx_per_s']:6.2f}"
            )
        lines.append(
            f"{'':40s} looks {lk['source']}: mean {lk['mean']:.3f} (min {lk['min']:.3f}, max {lk['max']:.3f})"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("GEODIFF_SHARED_DATA", REPO.parent / "shared/data"))
    )
    ap.add_argument("--window", type=int, default=7)
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/qa_filters.json")
    args = ap.parse_args()
    results = run(args.data, args.window)
    print(table(results))
    results["looks_accuracy"] = looks_accuracy(args.data)
    print()
    print(looks_table(results["looks_accuracy"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(args.out)
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
