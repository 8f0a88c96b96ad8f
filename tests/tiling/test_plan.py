"""The tile plan: coverage, block partition, seeds, TileSpec validation and round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tile_plans
from hypothesis import HealthCheck, given, settings

from tiling.errors import TilePlanError
from tiling.geometry import PixelWindow
from tiling.plan import TilePlan, TileSpec

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _overlap(a: PixelWindow, b: PixelWindow) -> bool:
    return a.row < b.row_stop and b.row < a.row_stop and a.col < b.col_stop and b.col < a.col_stop


@SETTINGS
@given(tile_plans())
def test_tiles_cover_every_pixel_and_blocks_partition_the_raster(plan: TilePlan) -> None:
    cover = np.zeros((plan.height, plan.width), int)
    for r, c in plan.tiles():
        win = plan.tile_window(r, c)
        assert win.row < plan.height and win.col < plan.width  # no tile lies wholly outside the raster
        cover[win.slices] += 1
    assert cover.min() >= 1
    owned = np.zeros_like(cover)
    for b in plan.blocks():
        owned[b.core.slices] += 1
        assert b.core.inside(plan.height, plan.width)
        # the block's tiles are exactly the tiles touching its core, and its extent is their canvas
        touching = {(r, c) for r, c in plan.tiles() if _overlap(plan.tile_window(r, c), b.core)}
        assert set(b.tile_ids) == touching
        first, last = plan.tile_window(*b.tile_ids[0]), plan.tile_window(*b.tile_ids[-1])
        assert (b.extent.row, b.extent.col) == (first.row, first.col)
        assert (b.extent.row_stop, b.extent.col_stop) == (last.row_stop, last.col_stop)
        assert b.n_tiles == len(b.tile_ids)
    assert (owned == 1).all()


def test_plan_small_scene_and_edges() -> None:
    p = TilePlan(5, 300, TileSpec(tile=64, overlap=16))
    assert p.n_rows == 1 and p.n_cols == 6  # 0, 48, ..., 240; 240 + 64 >= 300
    assert p.tile_window(0, 5) == PixelWindow(0, 240, 64, 64)
    assert TilePlan(48 + 64, 10, TileSpec(64, 16)).n_rows == 2


def test_plan_rejects_bad_geometry() -> None:
    with pytest.raises(TilePlanError, match="smaller than the halo"):
        TileSpec(tile=4, overlap=0, halo=8)
    with pytest.raises(ValueError, match="overlap"):  # TilePlanError is a ValueError (exit code 2)
        TileSpec(tile=16, overlap=16)
    with pytest.raises(TilePlanError, match="block_tiles"):
        TileSpec(block_tiles=0)
    with pytest.raises(TilePlanError, match="whole number"):
        TileSpec(tile=64.5)
    with pytest.raises(TilePlanError, match="empty"):
        TilePlan(0, 10)


def test_tile_spec_round_trips_through_a_dict_and_json_tags() -> None:
    spec = TileSpec(tile=96, overlap=8, halo=3, block_tiles=2)
    assert spec.to_dict() == {"tile": 96, "overlap": 8, "halo": 3, "block_tiles": 2}
    assert TileSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert TileSpec.from_dict({"tile": "96", "overlap": "8"}) == TileSpec(96, 8)  # tags are strings
    assert (spec.stride, spec.patch) == (88, 102)
    with pytest.raises(TilePlanError, match="unknown tile-plan key"):
        TileSpec.from_dict({"tile": 64, "blocks": 2})
    with pytest.raises(TilePlanError, match="whole numbers"):
        TileSpec.from_dict({"tile": "big"})


def test_tile_seed_depends_only_on_grid_position() -> None:
    a = TilePlan(1000, 1000, TileSpec(64, 8, block_tiles=2), seed=3)
    b = TilePlan(5000, 300, TileSpec(64, 8, halo=4, block_tiles=7), seed=3)
    assert a.tile_seed(2, 5) == b.tile_seed(2, 5)
    assert a.tile_seed(2, 5) != a.tile_seed(5, 2)
    assert a.tile_seed(0, 0) != TilePlan(1000, 1000, TileSpec(64, 8), seed=4).tile_seed(0, 0)


def test_footprints_follow_the_tile_windows() -> None:
    from rasterio.transform import from_origin

    plan = TilePlan(100, 70, TileSpec(tile=40, overlap=10, block_tiles=1))
    gdf = plan.footprints(from_origin(500_000, 5_000_000, 10, 10), "EPSG:32632")
    assert len(gdf) == plan.n_tiles == 3 * 2  # stride 30: rows 0, 30, 60; cols 0, 30
    last = gdf.iloc[-1]
    assert (last.row_off, last.col_off) == (60, 30)
    # clipped to the raster: the last tile covers pixels 60..99 x 30..69 -> 400 m x 400 m
    assert last.geometry.bounds == (500_300.0, 5_000_000 - 1000.0, 500_700.0, 5_000_000 - 600.0)
