"""Rim ratio: do valid pixels next to nodata keep their radiometry?

For a scene (the bundled Sentinel-1 sample by default, its central SIZE px), an irregular nodata
footprint (a smoothed random field, about 20 % of the area, as NaN; or the left quarter as zeros
read with ``--sensor s1-grd-intensity``) is cut out; the despeckled result of the cut scene is
compared with the result of the whole scene on the valid pixels at 1, 2 and 3 px (chessboard
distance) from the footprint: ratio of means, and the ratio of their medians of pixel ratios.

    python bench/rim.py --method sar-dps --size 256 --steps 5 --samples 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage


def footprint(shape: tuple[int, int], seed: int = 1) -> np.ndarray:
    """(h, w) bool, True in an irregular blob footprint of about 20 % of the area."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), min(shape) / 16)
    return field > np.quantile(field, 0.8)


def rings(mask: np.ndarray, valid: np.ndarray, depth: int = 3) -> list[np.ndarray]:
    """Valid pixels at chessboard distance 1 .. depth from ``mask``."""
    out, grown = [], mask.copy()
    for _ in range(depth):
        nxt = ndimage.binary_dilation(grown, np.ones((3, 3), bool))
        out.append(nxt & ~grown & valid)
        grown = nxt
    return out


def rim_ratios(
    src: Path, tmp: Path, method: str, kind: str, options: dict, size: int
) -> dict[str, list[float]]:
    """Ratios at 1, 2, 3 px of the cut scene's result to the whole scene's (``kind``: nan or zero)."""
    from geodiff.apps.despeckle import despeckle_scene

    with rasterio.open(src) as ds:
        r0, c0 = (ds.height - size) // 2, (ds.width - size) // 2
        win = rasterio.windows.Window(c0, r0, size, size)
        data = ds.read(1, window=win).astype(np.float32)
        prof = {**ds.profile, "width": size, "height": size, "transform": ds.window_transform(win)}
        units = "intensity"
    if kind == "nan":
        mask = footprint(data.shape)
        cut, extra, nodata = np.where(mask, np.nan, data), {}, {"nodata": np.nan}
    else:  # Sentinel-1 GRD: a zero side, no nodata tag, the sensor profile says zero is no data
        mask = np.zeros(data.shape, bool)
        mask[:, : size // 4] = True
        cut, extra, nodata = np.where(mask, 0, data), {"sensor": "s1-grd-intensity"}, {"nodata": None}
    paths = {}
    for name, arr in (("whole", data), ("cut", cut)):
        p = tmp / f"{name}.tif"
        with rasterio.open(p, "w", **{**prof, **nodata, "dtype": "float32", "count": 1}) as dst:
            dst.write(arr[None])
        paths[name] = p
    outs = {}
    for name, p in paths.items():
        out = tmp / f"{name}_out.tif"
        despeckle_scene(p, out, method, units=units, overwrite=True, qa=False, progress=False,
                        **(extra if name == "cut" else {}), **options)  # fmt: skip
        with rasterio.open(out) as ds:
            outs[name] = ds.read(1).astype(np.float64)
    valid = ~mask & np.isfinite(data) & (data > 0)
    res: dict[str, list[float]] = {"mean": [], "median": []}
    for ring in rings(mask, valid):
        a, b = outs["cut"][ring], outs["whole"][ring]
        res["mean"].append(round(float(a.mean() / b.mean()), 4))
        res["median"].append(round(float(np.median(a / b)), 4))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=None, help="single-band SAR intensity GeoTIFF (default: the sample)")
    ap.add_argument("--method", default="sar-dps")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--kind", choices=["nan", "zero", "both"], default="both")
    args = ap.parse_args()
    import geodiff

    src = Path(args.scene or geodiff.SAMPLE_SCENE)
    opts = {k: v for k, v in {"steps": args.steps, "samples": args.samples}.items() if v is not None}
    kinds = ["nan", "zero"] if args.kind == "both" else [args.kind]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            res = rim_ratios(src, Path(tmp), args.method, kind, opts, args.size)
            print(json.dumps({"method": args.method, "kind": kind, "size": args.size, **opts, **res}))


if __name__ == "__main__":
    main()
