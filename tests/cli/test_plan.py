"""`geodiff plan`: the tile grid as a GeoPackage; every option changes the footprints it names."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box


def test_tile_overlap_aoi_overwrite_json(invoke, sar_crop: Path, tmp_path: Path) -> None:  # noqa: ANN001
    scene = sar_crop
    out = tmp_path / "plan.gpkg"
    res = invoke("plan", scene, "--tile", "64", "--overlap", "16", "--out", out, "--json")
    assert res.exit_code == 0, res.output
    full = gpd.read_file(out)
    assert len(full) == json.loads(res.stdout)["tiles"] == 3 * 4  # rows at 0, 48, 96; cols at 0, 48, 96, 144
    with rasterio.open(scene) as ds:
        assert full.crs == ds.crs
        assert np.allclose(full.total_bounds, list(ds.bounds))
        # an AOI in lon/lat around the first tile's centre: reprojected, it keeps only the tiles touching it
        x, y = ds.xy(10, 10)
    aoi = gpd.GeoDataFrame(geometry=[box(x - 5, y - 5, x + 5, y + 5)], crs=full.crs).to_crs(4326)
    aoi.to_file(tmp_path / "aoi.geojson")
    args = ("plan", scene, "--tile", "64", "--overlap", "16", "--out", out, "--aoi", tmp_path / "aoi.geojson")
    res = invoke(*args)
    assert res.exit_code == 2 and "--overwrite" in res.output  # the plan exists
    res = invoke(*args, "--overwrite")
    assert res.exit_code == 0, res.output
    sub = gpd.read_file(out)
    assert list(zip(sub["row"], sub["col"], strict=True)) == [(0, 0)]


@pytest.mark.parametrize(("tile", "overlap", "rows", "cols"), [(64, 16, 3, 4), (64, 0, 3, 3), (96, 32, 2, 3)])
def test_tile_and_overlap_set_the_grid(invoke, sar_crop, tmp_path, tile, overlap, rows, cols) -> None:  # noqa: ANN001
    """160 x 192 px: tiles start every tile - overlap px until the scene is covered."""
    out = tmp_path / "p.gpkg"
    res = invoke("plan", sar_crop, "--tile", tile, "--overlap", overlap, "--out", out)
    assert res.exit_code == 0, res.output
    assert f"{rows * cols} tiles of {tile} px (overlap {overlap})" in res.stdout
    gdf = gpd.read_file(out)
    assert (gdf["row"].max() + 1, gdf["col"].max() + 1) == (rows, cols)
    offsets = sorted(set(gdf["col_off"]))
    assert offsets[:2] == [0, tile - overlap]
