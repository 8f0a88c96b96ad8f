"""Quick-looks of the shared real SAR crops: input, Lee 7x7, BM3D-log and SAR-DPS (posterior mean and
blind-spot estimate) side by side.

    .venv/bin/python bench/real_quicklooks.py [--out docs/real_crops.png]

Rows: three Sentinel-1 single-look crops of the SAR2SAR set (amplitude, L = 1), the north-west 512²
of the S1 RTC γ⁰ scene and the bundled sample (its centre 512²; L estimated). SAR-DPS and Lee run through
the CLI at their defaults (`geodiff despeckle IN OUT [--method lee]`), BM3D-log on the CLI's units and
looks (bench/despeckle_e2e.py), the blind-spot column with `--estimator blind-spot`; every panel of
a row shares one dB stretch (the 1st-99th percentiles of the SAR-DPS result), captioned with the
output's ENL and ratio mean from `geodiff qa` (PROTOCOL §2). The figures are printed as a table and
written to bench/results/real_quicklooks.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import despeckle_e2e as e2e  # noqa: E402  (CLI helpers, BM3D-log on a file)

from geodiff.apps.quicklook import to_db_display  # noqa: E402
from sensors.units import to_intensity  # noqa: E402

CROPS = ("lely_1", "marais1_2", "limagne_3")
METHODS = ("input", "lee", "bm3d-log", "sar-dps", "blind-spot")
PANEL = 256
KEYS = ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output")


def scenes(tmp: Path) -> list[tuple[str, Path, list[str]]]:
    """(name, GeoTIFF, extra CLI args) of each row; crops are written as float32 GeoTIFFs under ``tmp``."""
    data = e2e.solvers_dev.DATA
    rows = []
    for name in CROPS:
        amp = np.abs(np.load(data / "sar2sar_s1_singlelook" / f"{name}.npy").astype(np.float64))
        src = e2e.write_tif(tmp / f"{name}.tif", amp, "single-look amplitude")
        rows.append((f"{name} (S1 SLC, L = 1)", src, ["--looks", "1", "--sensor", "sar-amplitude"]))
    rtc = data / "s1_rtc_geotiff" / "sentinel1_rtc_vv_gamma0_epsg32632.tif"
    with rasterio.open(rtc) as ds:
        win = rasterio.windows.Window(0, 0, 512, 512)  # the north-west quarter (the sample is the centre)
        prof = {**ds.profile, "width": 512, "height": 512, "transform": ds.window_transform(win)}
        crop = ds.read(window=win)
        tags = ds.tags(1)
    with rasterio.open(tmp / "rtc.tif", "w", **prof) as dst:
        dst.write(crop)
        dst.update_tags(1, **tags)
    # the crop loses the statistics that tell the whole scene's units; the data pack's MANIFEST says
    # linear power
    rows.append(("S1 RTC gamma0 VV, north-west 512x512", tmp / "rtc.tif", ["--units", "intensity"]))
    import geodiff

    rows.append(("bundled sample (RTC centre 512x512)", Path(geodiff.sample_scene()), []))
    return rows


def read_intensity(path: Path, units: str) -> np.ndarray:
    with rasterio.open(path) as ds:
        band = ds.read(1, masked=True).astype(np.float64)
    return to_intensity(np.ma.filled(band, np.nan), units)


def panel(intensity: np.ndarray, lo: float, hi: float, caption: str) -> Image.Image:
    img = Image.fromarray(to_db_display(intensity, lo, hi)).resize((PANEL, PANEL), Image.Resampling.BILINEAR)
    out = Image.new("L", (PANEL, PANEL + 18), 255)
    out.paste(img, (0, 18))
    ImageDraw.Draw(out).text((3, 3), caption, fill=0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "real_crops.png"))
    args = ap.parse_args()
    records, grid = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for title, src, extra in scenes(tmp):
            outs, qa = {}, {}
            summary = e2e.cli_despeckle(src, tmp / "dps.tif", *extra)
            units, looks = summary["units"], summary["looks"]
            looks = looks[0] if isinstance(looks, list) else looks
            outs["sar-dps"], qa["sar-dps"] = tmp / "dps.tif", summary["qa"][0]
            s = e2e.cli_despeckle(src, tmp / "bs.tif", *extra, "--estimator", "blind-spot")
            outs["blind-spot"], qa["blind-spot"] = tmp / "bs.tif", s["qa"][0]
            s = e2e.cli_despeckle(src, tmp / "lee.tif", *extra, "--method", "lee")
            outs["lee"], qa["lee"] = tmp / "lee.tif", s["qa"][0]
            e2e.bm3d_log_file(src, tmp / "bm3d.tif", units, looks)
            outs["bm3d-log"], qa["bm3d-log"] = (
                tmp / "bm3d.tif",
                e2e.cli_qa(src, tmp / "bm3d.tif", 1, units, looks),
            )
            images = {"input": read_intensity(src, units)} | {
                m: read_intensity(p, units) for m, p in outs.items()
            }
            ref = images["sar-dps"]
            with np.errstate(divide="ignore", invalid="ignore"):
                lo, hi = np.nanpercentile(10 * np.log10(ref[ref > 0]), [1, 99])
            row = []
            for m in METHODS:
                if m == "input":
                    cap = f"{title[:34]}  ENL {qa['sar-dps']['enl_input']:.1f}"
                else:
                    q = qa[m]
                    cap = f"{m}: ENL {q['enl_output']:.1f}, ratio {q['ratio_mean']:.3f}"
                    figures = {k: q[k] for k in KEYS}
                    records.append(dict(scene=title, method=m, units=units, looks=looks, **figures))
                row.append(panel(images[m], lo, hi, cap))
            grid.append(row)
            print(f"{title}: done", file=sys.stderr, flush=True)
    gap = 6
    sheet = Image.new("L", (len(METHODS) * (PANEL + gap) - gap, len(grid) * (PANEL + 18 + gap) - gap), 255)
    for i, row in enumerate(grid):
        for j, p in enumerate(row):
            sheet.paste(p, (j * (PANEL + gap), i * (PANEL + 18 + gap)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print("| scene | method | ratio mean | L·var(r) | bias dB | ENL in → out |\n|---|---|---:|---:|---:|---|")
    for r in records:
        print(f"| {r['scene']} | {r['method']} | {r['ratio_mean']:.3f} | {r['ratio_var_times_looks']:.2f} | "
              f"{r['bias_db']:+.2f} | {r['enl_input']:.1f} → {r['enl_output']:.1f} |")  # fmt: skip
    e2e.save("real_quicklooks.json", records)
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
