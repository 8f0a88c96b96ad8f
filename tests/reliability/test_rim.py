"""Valid pixels next to nodata keep their radiometry with SAR-DPS: an irregular NaN footprint and a
Sentinel-1 zero side (``--sensor s1-grd-intensity``) inside a bright area of a darker scene.

Before the fix SAR-DPS filled nodata with one constant (the scene's typical level): the prior and the
local-mean correction mixed it into the valid pixels next to it, 1 px from the footprint 0.91 of the
result without it (bench/rim.py on the bundled sample). Now each nodata pixel takes the valid side
mirrored across the edge (geodiff.apps.despeckle.fill), and the radiometry's 31-px local means leave
the nodata pixels out (a smooth fill has no speckle to lose, so it pulled the correction down: the
default profile was 0.976 at 1 px on the sample, now 1.00); bench/README.md has the sample's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import write_scene
from scipy import ndimage

from geodiff.apps.despeckle import despeckle_scene

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


@pytest.mark.slow
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


def _hole(size: int) -> np.ndarray:
    rows, cols = np.ogrid[:size, :size]
    hole = (rows - 30) ** 2 / 14**2 + (cols - 36) ** 2 / 20**2 < 1
    return hole | ((rows - 20) ** 2 + (cols - 22) ** 2 < 7**2)


def test_local_means_leave_nodata_out() -> None:
    """The radiometry correction (local means of data over estimate) on a flat L = 1 scene whose
    estimate lost the amplitude-domain bias (0.8 of the data's level) and a hole filled smoothly, where
    the estimate equals the fill (no speckle to lose): the rim must get the same correction as the rest.
    Before (nodata in both means) the rim came out about 10 % darker."""
    import torch

    from geodiff.solvers import SamplerConfig
    from geodiff.solvers.sar import _radiometry

    size = 64
    hole = torch.from_numpy(_hole(size))[None, None]
    g = torch.Generator().manual_seed(1)
    y = torch.empty(1, 1, size, size, dtype=torch.float64).exponential_(1.0, generator=g)
    config = SamplerConfig.defaults("sar_dps", mean_window=31, bright=None)
    rim = torch.from_numpy(ndimage.binary_dilation(_hole(size), np.ones((7, 7), bool)) & ~_hole(size))
    outs = []
    for level in (1.0, 5.0):  # two fills of the hole: the valid pixels' results must not see them
        y_filled = torch.where(hole, level, y)
        est = torch.where(hole, level, 0.8 * torch.ones_like(y)).unsqueeze(1)  # (B, K, C, H, W)
        outs.append(_radiometry(est, y_filled, None, config, valid=~hole)[0, 0, 0])
        mixed = _radiometry(est, y_filled, None, config)[0, 0, 0]  # nodata in the means (before)
        if level == 1.0:
            assert float(mixed[rim].mean()) < 0.93 * float(outs[0][rim].mean())
    assert torch.equal(outs[0][~hole[0, 0]], outs[1][~hole[0, 0]])
    # the rim gets the correction of the valid pixels around it: G(y) / G(0.8) over them, G the Gaussian
    # window as strong as a 31-px box (scipy "mirror" is torch's "reflect" padding)
    sigma = 31 / np.sqrt(4 * np.pi)
    window = dict(sigma=sigma, mode="mirror", truncate=np.ceil(3 * sigma) / sigma)
    num = ndimage.gaussian_filter(np.where(_hole(size), 0.0, y[0, 0].numpy()), **window)
    den = ndimage.gaussian_filter((~_hole(size)).astype(float), **window)
    ref = (num / den)[rim.numpy()]
    assert np.allclose(outs[0][rim].numpy(), ref, rtol=1e-6)
    # every pixel valid: the same bits as no mask at all
    est = 0.8 * torch.ones(1, 1, 1, size, size, dtype=torch.float64)
    all_valid = torch.ones_like(hole)
    assert torch.equal(_radiometry(est, y, None, config, valid=all_valid), _radiometry(est, y, None, config))


def test_valid_pixels_do_not_depend_on_what_nodata_holds(tmp_path: Path) -> None:
    """The same valid pixels with the footprint as NaN, and with an internal mask over arbitrary values
    (a bright constant, then random numbers): the same output bits in every valid pixel."""
    size = 64
    rng = np.random.default_rng(2)
    data = rng.gamma(4.0, 1 / 4.0, (size, size)).astype(np.float32)
    hole = _hole(size)
    fast = {"units": "intensity", "looks": 4.0, "prior": "tiny", "steps": 1, "samples": 1, "tile": 32,
            "overlap": 8, "qa": False, "progress": False}  # fmt: skip
    outs = []
    for name, fill in (("nan", np.nan), ("bright", 50.0), ("random", None)):
        values = rng.uniform(0, 100, (size, size)).astype(np.float32) if fill is None else fill
        path = tmp_path / f"{name}.tif"
        if name == "nan":
            write_scene(path, np.where(hole, np.nan, data), nodata=np.nan)
        else:
            write_scene(path, np.where(hole, values, data))
            with rasterio.open(path, "r+") as ds:
                ds.write_mask(np.where(hole, 0, 255).astype(np.uint8))
        out = path.with_name(f"{name}_out.tif")
        despeckle_scene(path, out, "sar-dps", **fast)
        with rasterio.open(out) as ds:
            outs.append(ds.read(1, masked=True))
    for got in outs[1:]:
        assert np.array_equal(got.mask, outs[0].mask) and got.mask[hole].all()
        assert np.array_equal(got.filled(0), outs[0].filled(0))
