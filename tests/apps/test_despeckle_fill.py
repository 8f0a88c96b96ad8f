"""The nodata fill SAR-DPS sees: the local level of the valid pixels around each nodata pixel."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from geodiff.apps.despeckle.fill import fill_nodata, fill_nodata_t


def test_fill_is_the_local_mean_of_valid_neighbours_and_keeps_valid_pixels() -> None:
    rng = np.random.default_rng(0)
    x = rng.gamma(4.0, 0.25, (64, 64)) * np.where(np.arange(64) < 32, 0.2, 2.0)[None]
    valid = np.ones(x.shape, bool)
    valid[20:40, 36:50] = False  # a hole in the bright half
    out = fill_nodata(np.where(valid, x, np.nan), valid, default=0.1, size=15)
    assert np.array_equal(out[valid], x[valid])  # bit for bit
    ref = ndimage.uniform_filter(np.where(valid, x, 0), 15) / ndimage.uniform_filter(valid * 1.0, 15)
    assert np.allclose(out[~valid], ref[~valid])  # normalised convolution (reflect borders alike)
    assert abs(out[~valid].mean() / 2.0 - 1) < 0.05  # the bright half's level, not the scene's


def test_far_from_valid_pixels_take_the_nearest_level_and_empty_planes_the_default() -> None:
    x = np.zeros((40, 40))
    valid = np.zeros(x.shape, bool)
    valid[:, :4] = True
    x[:, :4] = 3.0
    out = fill_nodata(x, valid, default=0.5, size=5)
    assert np.allclose(out, 3.0)  # 36 px from the valid strip: its level, carried across
    assert np.array_equal(fill_nodata(x, np.zeros_like(valid), default=0.5), np.full(x.shape, 0.5))


def test_torch_planes_match_numpy_and_full_tiles_pass_through() -> None:
    x = torch.rand(2, 1, 16, 16, dtype=torch.float32) + 0.5
    v = torch.ones_like(x, dtype=torch.bool)
    assert fill_nodata_t(x, v, 1.0) is x
    v[0, 0, 4:9, 4:9] = False
    got = fill_nodata_t(x, v, 1.0)
    assert got.dtype == x.dtype and got.shape == x.shape
    ref = fill_nodata(x[0, 0].numpy(), v[0, 0].numpy(), 1.0).astype(np.float32)
    assert np.array_equal(got[0, 0].numpy(), ref) and torch.equal(got[1], x[1])
