"""Overlap-add and extraction of a grid of tiles (torch) and the per-step blend hook."""

from __future__ import annotations

import pytest
import torch
from conftest import tile_plans
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiling.blend import BlendHook, blend_tiles, extract_tiles, overlap_add
from tiling.plan import TilePlan
from tiling.windows import WINDOWS, window_2d

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@SETTINGS
@given(tile_plans(), st.sampled_from(WINDOWS))
def test_normalised_weights_sum_to_one(plan: TilePlan, kind: str) -> None:
    for block in plan.blocks():
        n = block.n_tiles
        w = torch.from_numpy(window_2d(plan.tile, plan.tile, kind).copy())
        weights = w.expand(n, 1, plan.tile, plan.tile).double()
        per_tile = []  # each tile's normalised weight, spread back on the canvas
        total, wsum = overlap_add(weights, block.grid_shape, plan.stride, torch.ones(plan.tile, plan.tile))
        assert (wsum > 0).all()
        for k in range(n):
            one = torch.zeros_like(weights)
            one[k] = weights[k]
            t, _ = overlap_add(one, block.grid_shape, plan.stride, torch.ones(plan.tile, plan.tile))
            per_tile.append(t / total)
        assert torch.allclose(sum(per_tile), torch.ones_like(total), atol=1e-12)


def test_extract_is_inverse_of_blend_and_hook_is_idempotent() -> None:
    torch.manual_seed(0)
    grid, patch, stride = (3, 4), 12, 9
    canvas = torch.randn(
        2, (grid[0] - 1) * stride + patch, (grid[1] - 1) * stride + patch, dtype=torch.float64
    )
    tiles = extract_tiles(canvas, grid, patch, stride)
    assert tiles.shape == (12, 2, patch, patch)
    w = torch.from_numpy(window_2d(patch).copy())
    assert torch.allclose(blend_tiles(tiles, grid, stride, w), canvas)
    hook = BlendHook(grid, patch, stride)
    assert torch.allclose(hook(tiles), tiles)  # consistent tiles are a fixed point
    noisy = tiles + 0.1 * torch.randn_like(tiles)
    once = hook(noisy)
    assert not torch.allclose(once, noisy)
    assert torch.allclose(hook(once), once)  # consensus is a projection
    # after the hook, overlapping tiles agree: (0,0) and (0,1) share columns stride..patch
    assert torch.allclose(once[0, :, :, stride:], once[1, :, :, : patch - stride])


def test_blend_rejects_tiles_that_do_not_fill_the_grid() -> None:
    with pytest.raises(ValueError, match="do not fill a 2x2 grid"):
        blend_tiles(torch.zeros(3, 1, 8, 8), (2, 2), 6, torch.ones(8, 8))
    with pytest.raises(ValueError, match="does not match grid"):
        extract_tiles(torch.zeros(1, 10, 10), (2, 2), 8, 6)
