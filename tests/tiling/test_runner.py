"""Tile plan, blending windows, overlap-add and the block runner on in-memory arrays (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from sensors.speckle_filters import lee
from tiling.blend import BlendHook, blend_tiles, extract_tiles, overlap_add
from tiling.plan import TilePlan
from tiling.raster_io import ArraySource, reflect_index
from tiling.runner import run_array
from tiling.windows import WINDOWS, window_1d, window_2d

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def plans(draw: st.DrawFn, max_size: int = 60) -> TilePlan:
    h = draw(st.integers(1, max_size))
    w = draw(st.integers(1, max_size))
    tile = draw(st.integers(3, 24))
    overlap = draw(st.integers(0, tile - 2))  # stride >= 2 keeps the number of tiles test-sized
    halo = draw(st.integers(0, min(tile, 8)))
    return TilePlan(
        h, w, tile, overlap, halo, block_tiles=draw(st.integers(1, 4)), seed=draw(st.integers(0, 9))
    )


@st.composite
def scenes(draw: st.DrawFn) -> tuple[TilePlan, np.ndarray, np.ndarray]:
    plan = draw(plans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.gamma(2.0, 1.0, (1, plan.height, plan.width)).astype(np.float32)
    pattern = draw(st.sampled_from(["none", "random", "stripe", "corner"]))
    invalid = np.zeros_like(x, dtype=bool)
    if pattern == "random":
        invalid = rng.random(x.shape) < 0.2
    elif pattern == "stripe":
        invalid[:, :, : plan.width // 3] = True
    elif pattern == "corner":
        invalid[:, : plan.height // 2, : plan.width // 2] = True
    x[invalid] = -9999.0
    return plan, x, ~invalid


# ---- plan ---------------------------------------------------------------------------------------
@SETTINGS
@given(plans())
def test_tiles_cover_every_pixel_and_blocks_partition_the_raster(plan: TilePlan) -> None:
    cover = np.zeros((plan.height, plan.width), int)
    for r, c in plan.tiles():
        y, x = plan.tile_origin(r, c)
        assert y < plan.height and x < plan.width  # no tile lies wholly outside the raster
        cover[y : y + plan.tile, x : x + plan.tile] += 1
    assert cover.min() >= 1
    owned = np.zeros_like(cover)
    for b in plan.blocks():
        r0, c0, h, w = b.core
        owned[r0 : r0 + h, c0 : c0 + w] += 1
        # the block's tiles are exactly the tiles touching its core
        expected = set(plan.tiles_in_window(r0, c0, h, w))
        got = {
            (i, j)
            for i in range(b.tile_rows[0], b.tile_rows[1] + 1)
            for j in range(b.tile_cols[0], b.tile_cols[1] + 1)
        }
        assert got == expected
    assert (owned == 1).all()


def test_plan_small_scene_and_edges() -> None:
    p = TilePlan(5, 300, tile=64, overlap=16)
    assert p.n_rows == 1 and p.n_cols == 6  # 0, 48, ..., 240; 240 + 64 >= 300
    assert p.tile_origin(0, 5) == (0, 240)
    assert TilePlan(48 + 64, 10, 64, 16).n_rows == 2


def test_plan_rejects_bad_geometry() -> None:
    with pytest.raises(ValueError, match="smaller than the halo"):
        TilePlan(100, 100, tile=4, overlap=0, halo=8)
    with pytest.raises(ValueError, match="overlap"):
        TilePlan(100, 100, tile=16, overlap=16)
    with pytest.raises(ValueError, match="empty"):
        TilePlan(0, 10)


def test_tile_seed_depends_only_on_grid_position() -> None:
    a = TilePlan(1000, 1000, 64, 8, block_tiles=2, seed=3)
    b = TilePlan(5000, 300, 64, 8, halo=4, block_tiles=7, seed=3)
    assert a.tile_seed(2, 5) == b.tile_seed(2, 5)
    assert a.tile_seed(2, 5) != a.tile_seed(5, 2)
    assert a.tile_seed(0, 0) != TilePlan(1000, 1000, 64, 8, seed=4).tile_seed(0, 0)


def test_reflect_index_matches_numpy_pad() -> None:
    for n in (1, 2, 3, 7):
        a = np.arange(n)
        for pad in (0, 1, 5, 17):
            ref = np.pad(a, pad, mode="reflect") if n > 1 else np.zeros(n + 2 * pad, int)
            assert np.array_equal(reflect_index(np.arange(-pad, n + pad), n), ref)


# ---- windows and blending -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", WINDOWS)
@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_windows_strictly_positive_and_separable(kind: str, size: int) -> None:
    w1 = window_1d(size, kind, overlap=size // 4)
    assert w1.shape == (size,) and (w1 > 0).all()
    assert np.allclose(w1, w1[::-1])
    w2 = window_2d(size, size, kind, size // 4)
    assert np.array_equal(w2, np.outer(w1, w1))


@pytest.mark.slow
@SETTINGS
@given(plans(), st.sampled_from(WINDOWS))
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


# ---- runner: tiled == untiled -------------------------------------------------------------------
def _square(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    return torch.where(ctx.valid, t * t + 0.5, t)


@pytest.mark.slow
@SETTINGS
@given(scenes())
def test_pixelwise_function_bit_identical_tiled_and_untiled(scene) -> None:  # noqa: ANN001
    plan, x, valid = scene
    out = run_array(ArraySource(x, nodata=-9999.0), plan, _square, kind="tiles")
    ref = np.where(valid, x * x + np.float32(0.5), np.nan)
    assert np.array_equal(out, ref, equal_nan=True)  # bit-identical, NaN where nodata


def _median_tiles(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    a = t.numpy()
    return torch.from_numpy(
        np.stack([ndimage.median_filter(a[i], size=(1, 5, 5), mode="mirror") for i in range(len(a))])
    )


def _lee_array(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return lee(block[0], valid[0], looks=2.0, window=5)[None]


@pytest.mark.slow
@SETTINGS
@given(scenes())
def test_neighbourhood_filter_identical_away_from_nodata(scene) -> None:  # noqa: ANN001
    plan, x, valid = scene
    radius = 2
    if plan.halo < radius:
        plan = TilePlan(
            plan.height, plan.width, max(plan.tile, radius), plan.overlap, radius, plan.block_tiles
        )
    pad = plan.halo
    xp = np.pad(np.where(valid, x, 0), ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    vp = np.pad(valid, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    crop = (slice(None), slice(pad, pad + plan.height), slice(pad, pad + plan.width))
    # median (not nodata-aware): identical where no nodata lies within the radius
    out = run_array(ArraySource(x, nodata=-9999.0), plan, _median_tiles, kind="tiles")
    ref = ndimage.median_filter(xp, size=(1, 5, 5), mode="mirror")[crop]
    clean = ndimage.minimum_filter(vp.astype(np.uint8), size=(1, 5, 5), mode="mirror")[crop].astype(bool)
    assert np.array_equal(out[clean], ref[clean])
    # nodata-aware Lee: identical at every valid pixel, through the array path too
    ref_lee = _lee_array(xp, vp)[crop]
    for kind, fn in (("array", _lee_array), ("tiles", _lee_tiles)):
        got = run_array(ArraySource(x, nodata=-9999.0), plan, fn, kind=kind)
        assert np.array_equal(got[valid], ref_lee[valid]), kind
        assert np.isnan(got[~valid]).all()


def _lee_tiles(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    a, v = t.numpy(), ctx.valid.numpy()
    return torch.from_numpy(np.stack([_lee_array(a[i], v[i]) for i in range(len(a))]))


def _noisy(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    return t + ctx.randn(tuple(t.shape[1:]), dtype=t.dtype)


def test_seeded_tiles_do_not_depend_on_block_layout() -> None:
    x = np.random.default_rng(1).random((1, 90, 77)).astype(np.float32)
    outs = [
        run_array(ArraySource(x), TilePlan(90, 77, 16, 6, 2, block_tiles=k, seed=5), _noisy, kind="tiles")
        for k in (1, 2, 5)
    ]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    other_seed = run_array(ArraySource(x), TilePlan(90, 77, 16, 6, 2, block_tiles=2, seed=6), _noisy)
    assert not np.array_equal(outs[0], other_seed)
