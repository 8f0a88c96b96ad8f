"""Rim ratio: do valid pixels next to nodata keep their radiometry?

For a scene (the bundled Sentinel-1 sample by default, its central SIZE px), an irregular nodata
footprint (a smoothed random field, about 20 % of the area, as NaN; or a quarter of the scene at one
side as zeros read with ``--sensor s1-grd-intensity``, each of the four sides in turn, rings pooled) is
cut out; the despeckled result of the cut scene is
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


#: depth (px) of the band next to the footprint whose mean is compared as the local mean
BAND = 16
#: the zero sides cut out in turn (kind "zero"): a quarter of the scene at each edge
SIDES = ("left", "right", "top", "bottom")


def side_mask(shape: tuple[int, int], side: str) -> np.ndarray:
    """(h, w) bool, True on the outer quarter of the scene at ``side``."""
    mask = np.zeros(shape, bool)
    qh, qw = shape[0] // 4, shape[1] // 4
    part = {"left": np.s_[:, :qw], "right": np.s_[:, -qw:], "top": np.s_[:qh, :], "bottom": np.s_[-qh:, :]}
    mask[part[side]] = True
    return mask


def _despeckle(tmp: Path, name: str, arr: np.ndarray, prof: dict, nodata, method: str, options: dict):
    from geodiff.apps.despeckle import despeckle_scene

    p, out = tmp / f"{name}.tif", tmp / f"{name}_out.tif"
    with rasterio.open(p, "w", **{**prof, "nodata": nodata, "dtype": "float32", "count": 1}) as dst:
        dst.write(arr[None])
    despeckle_scene(p, out, method, units="intensity", overwrite=True, qa=False, progress=False, **options)
    with rasterio.open(out) as ds:
        return ds.read(1).astype(np.float64)


def rim_ratios(
    src: Path, tmp: Path, method: str, kind: str, options: dict, size: int
) -> dict[str, list[float]]:
    """Ratios at 1, 2, 3 px of the cut scene's result to the whole scene's (``kind``: nan or zero).

    ``mean``: ratio of the ring means; ``median``: median of the pixel ratios; ``local_mean_16px``: ratio
    of the means over all valid pixels within :data:`BAND` px (the local mean next to the footprint).
    Kind "zero" cuts each of :data:`SIDES` in turn and pools the four rings (one side's ring is a single
    column or row, whose mean varies by about +-2 % between sides for every method: sampling noise, not
    bias); its ``sides`` gives each side's ring means.
    """
    with rasterio.open(src) as ds:
        r0, c0 = (ds.height - size) // 2, (ds.width - size) // 2
        win = rasterio.windows.Window(c0, r0, size, size)
        data = ds.read(1, window=win).astype(np.float32)
        prof = {**ds.profile, "width": size, "height": size, "transform": ds.window_transform(win)}
    whole = _despeckle(tmp, "whole", data, prof, np.nan, method, options)
    if kind == "nan":
        cuts = {"footprint": footprint(data.shape)}
    else:  # Sentinel-1 GRD: a zero side, no nodata tag, the sensor profile says zero is no data
        cuts = {side: side_mask(data.shape, side) for side in SIDES}
    pooled: list[list[tuple[np.ndarray, np.ndarray]]] = [[], [], []]
    sides: dict[str, list[float]] = {}
    local: list[tuple[np.ndarray, np.ndarray]] = []
    for name, mask in cuts.items():
        if kind == "nan":
            cut = _despeckle(tmp, "cut", np.where(mask, np.nan, data), prof, np.nan, method, options)
        else:
            opts = {**options, "sensor": "s1-grd-intensity"}
            cut = _despeckle(tmp, "cut", np.where(mask, 0, data), prof, None, method, opts)
        band = rings(mask, ~mask & np.isfinite(data) & (data > 0), BAND)
        for d, ring in enumerate(band[:3]):
            pooled[d].append((cut[ring], whole[ring]))
        near = np.any(band, axis=0)  # valid pixels within BAND px: the local mean next to the footprint
        local.append((cut[near], whole[near]))
        sides[name] = [_ratio([parts[-1]])[0] for parts in pooled]
    res: dict = {"mean": [], "median": []}
    for parts in pooled:
        mean, median = _ratio(parts)
        res["mean"].append(mean)
        res["median"].append(median)
    res[f"local_mean_{BAND}px"] = _ratio(local)[0]
    if kind == "zero":
        res["sides"] = sides
    return res


def _ratio(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(ratio of the means, median of the pixel ratios) of the pooled (cut, whole) pixel pairs."""
    a, b = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return round(float(a.mean() / b.mean()), 4), round(float(np.median(a / b)), 4)


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
