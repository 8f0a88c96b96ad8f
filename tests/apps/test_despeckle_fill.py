"""The nodata fill SAR-DPS sees: the valid side mirrored across the edge, the local level deeper in."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from geodiff.apps.despeckle.fill import fill_nodata, fill_nodata_t


def test_fill_mirrors_the_valid_side_and_keeps_valid_pixels() -> None:
    rng = np.random.default_rng(0)
    x = rng.gamma(4.0, 0.25, (64, 64)) * np.where(np.arange(64) < 32, 0.2, 2.0)[None]
    valid = np.ones(x.shape, bool)
    valid[20:40, 44:54] = False  # a hole in the bright half
    out = fill_nodata(np.where(valid, x, np.nan), valid, default=0.1, size=15)
    assert np.array_equal(out[valid], x[valid])  # bit for bit
    assert out[20, 48] == x[18, 48]  # 1 px inside the top edge <- 1 px outside it (nearest valid: row 19)
    assert out[25, 44] == x[25, 42]  # left edge: mirrored through column 43
    assert abs(out[~valid].mean() / 2.0 - 1) < 0.05  # the bright half's level, not the scene's
    assert out[~valid].std() > 0.3  # and its speckle texture, not a flat patch


def test_deep_inside_a_hole_the_local_level_of_the_valid_pixels() -> None:
    x = np.zeros((40, 40))
    valid = np.zeros(x.shape, bool)
    valid[:, :4] = True
    x[:, :4] = np.arange(1, 5)[None]
    out = fill_nodata(x, valid, default=0.5, size=5)
    assert np.array_equal(out[:, 4:7], x[:, [2, 1, 0]])  # mirrored across the edge
    ref = ndimage.uniform_filter(np.where(valid, x, 0), 5) / ndimage.uniform_filter(valid * 1.0, 5)
    assert np.allclose(out[:, 8:], ref[:, 5:6])  # farther: the level at the nearest pixel that has one
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
