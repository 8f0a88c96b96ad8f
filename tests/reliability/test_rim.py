"""Valid pixels next to nodata keep their radiometry with SAR-DPS: an irregular NaN footprint and a
Sentinel-1 zero side (``--sensor s1-grd-intensity``) inside a bright area of a darker scene.

Before the fix SAR-DPS filled nodata with one constant (the scene's typical level): the prior and the
local-mean correction mixed it into the valid pixels next to it, 1 px from the footprint 0.91 of the
result without it (bench/rim.py on the bundled sample). Now each nodata pixel takes the valid side
mirrored across the edge (geodiff.apps.despeckle.fill); bench/README.md has the sample's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import write_scene
from scipy import ndimage

from geodiff.apps.despeckle import despeckle_scene

pytestmark = pytest.mark.slow
DPS = {"units": "intensity", "looks": 4.0, "steps": 1, "samples": 1, "tile": 32, "overlap": 8}
SIZE = 128


def _scene() -> np.ndarray:
    """Gamma speckle (L = 4) on reflectivity 0.2 (left half) and 2 (right half)."""
    rng = np.random.default_rng(5)
    refl = np.where(np.arange(SIZE)[None] < SIZE // 2, 0.2, 2.0) * np.ones((SIZE, 1))
    return (refl * rng.gamma(4.0, 1 / 4.0, (SIZE, SIZE))).astype(np.float32)


def _run(path: Path, **options: object) -> np.ndarray:
    out = path.with_name(path.stem + "_out.tif")
    despeckle_scene(path, out, "sar-dps", qa=False, progress=False, **DPS, **options)
    with rasterio.open(out) as ds:
        return ds.read(1).astype(np.float64)


def _ratios(cut: np.ndarray, whole: np.ndarray, mask: np.ndarray) -> list[float]:
    out, grown = [], mask
    for _ in range(3):
        nxt = ndimage.binary_dilation(grown, np.ones((3, 3), bool))
        ring = nxt & ~grown
        out.append(float(cut[ring].mean() / whole[ring].mean()))
        grown = nxt
    return out


def test_rim_keeps_its_radiometry_next_to_nan_and_zero_nodata(tmp_path: Path) -> None:
    data = _scene()
    whole = _run(write_scene(tmp_path / "whole.tif", data))
    rows, cols = np.ogrid[:SIZE, :SIZE]
    blob = (rows - 64) ** 2 / 18**2 + (cols - 96) ** 2 / 11**2 < 1  # an ellipse in the bright half
    blob |= (rows - 50) ** 2 + (cols - 84) ** 2 < 8**2  # and a bump: irregular
    nan_cut = _run(write_scene(tmp_path / "nan.tif", np.where(blob, np.nan, data), nodata=np.nan))
    zero = np.zeros((SIZE, SIZE), bool)
    zero[:, SIZE - 16 :] = True  # a zero side of a GRD product, no nodata tag
    zero_cut = _run(write_scene(tmp_path / "zero.tif", np.where(zero, 0, data)), sensor="s1-grd-intensity")
    assert np.isnan(nan_cut[blob]).all() and (zero_cut[zero] == 0).all()  # nodata stays nodata
    for name, cut, mask in (("NaN footprint", nan_cut, blob), ("zero side", zero_cut, zero)):
        ratios = _ratios(cut, whole, mask)
        # before the fix (constant fill, default profile): NaN 0.88 at 1 px; zero side 0.88, 0.95, 0.95
        assert ratios[0] >= 0.98 and min(ratios) >= 0.96, (
            f"{name}: rim ratios at 1, 2, 3 px {np.round(ratios, 3)}"
        )
