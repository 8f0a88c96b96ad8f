"""The nodata fill SAR-DPS sees: the valid side mirrored across the edge, folded on across wide holes."""

from __future__ import annotations

import numpy as np
import torch

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


def test_a_narrow_valid_strip_is_folded_back_and_forth_across_a_wide_hole() -> None:
    x = np.zeros((40, 40))
    valid = np.zeros(x.shape, bool)
    valid[:, :4] = True
    x[:, :4] = np.arange(1, 5)[None]
    out = fill_nodata(x, valid, default=0.5, size=5)
    # mirrored across the edge (columns 2, 1, 0), then folded at the plane's edge and mirrored again:
    # the strip's own texture all the way across, no smooth level (that brightened the valid pixels)
    assert np.array_equal(out[:, 4:16], x[:, [2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]])
    assert np.array_equal(fill_nodata(x, np.zeros_like(valid), default=0.5), np.full(x.shape, 0.5))


def test_where_no_fold_reaches_a_valid_pixel_the_local_level() -> None:
    x = np.full((21, 21), np.nan)
    valid = np.zeros(x.shape, bool)
    valid[10, 10], x[10, 10] = True, 3.0  # every mirror through it lands on nodata again
    out = fill_nodata(x, valid, default=0.5, size=5)
    assert np.array_equal(out, np.full(x.shape, 3.0))  # its level, carried from the nearest window


def test_torch_planes_match_numpy_and_full_tiles_pass_through() -> None:
    x = torch.rand(2, 1, 16, 16, dtype=torch.float32) + 0.5
    v = torch.ones_like(x, dtype=torch.bool)
    assert fill_nodata_t(x, v, 1.0) is x
    v[0, 0, 4:9, 4:9] = False
    got = fill_nodata_t(x, v, 1.0)
    assert got.dtype == x.dtype and got.shape == x.shape
    ref = fill_nodata(x[0, 0].numpy(), v[0, 0].numpy(), 1.0).astype(np.float32)
    assert np.array_equal(got[0, 0].numpy(), ref) and torch.equal(got[1], x[1])
