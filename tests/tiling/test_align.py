"""Alignment of the SAR onto the optical grid and footprint checks (tiling.align)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform

from tiling.align import Grid, align_to_grid, check_overlap

BEN = "bigearthnet_s1s2_pairs/S2A_MSIL2A_20170613T101031_87_48"


def _smooth_field(grid: Grid) -> np.ndarray:
    """A smooth positive intensity field defined in the grid's map coordinates (bilinear-friendly)."""
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width] + 0.5
    x = grid.transform.c + cols * grid.transform.a
    y = grid.transform.f + rows * grid.transform.e
    return (1.0 + 0.5 * np.sin(x / 300.0) * np.cos(y / 400.0)).astype(np.float32)


@pytest.fixture(scope="module")
def optical_grid(shared_data) -> Grid:
    with rasterio.open(shared_data / BEN / "s2_B02_B03_B04_B08.tif") as ds:
        return Grid.of(ds)


def test_same_grid_passes_through(optical_grid) -> None:
    field = _smooth_field(optical_grid)
    out = align_to_grid(field, optical_grid, optical_grid)
    np.testing.assert_array_equal(out, field)


def test_reprojected_sar_comes_back_onto_the_optical_grid(optical_grid) -> None:
    """SAR in EPSG:4326 at a finer pixel comes back on the optical UTM grid with the right values."""
    field = _smooth_field(optical_grid)
    dst_crs = CRS.from_epsg(4326)
    bounds = rasterio.transform.array_bounds(optical_grid.height, optical_grid.width, optical_grid.transform)
    west, south, east, north = bounds
    tr, w, h = calculate_default_transform(
        optical_grid.crs,
        dst_crs,
        optical_grid.width,
        optical_grid.height,
        west,
        south,
        east,
        north,
        resolution=6e-5,
    )
    geo = Grid(dst_crs, tr, w, h)
    warped = align_to_grid(field, optical_grid, geo)
    assert warped.shape == (h, w)
    assert abs(check_overlap(optical_grid, geo) - 1.0) < 0.05
    back = align_to_grid(warped, geo, optical_grid)
    assert back.shape == optical_grid.shape
    inner = (slice(4, -4), slice(4, -4))
    assert np.isfinite(back[inner]).all()
    np.testing.assert_allclose(back[inner], field[inner], rtol=0.02)


def test_disjoint_footprints_raise_a_clear_error(optical_grid) -> None:
    t = optical_grid.transform
    far = Grid(optical_grid.crs, from_origin(t.c + 50_000, t.f, 10, 10), 120, 120)
    with pytest.raises(ValueError, match=r"do not overlap \(footprints .*check the inputs' CRS/extent"):
        check_overlap(optical_grid, far)
    other_zone = Grid(CRS.from_epsg(4326), from_origin(100.0, 10.0, 1e-4, 1e-4), 100, 100)
    with pytest.raises(ValueError, match="do not overlap"):
        check_overlap(optical_grid, other_zone)


def test_small_overlap_warns(optical_grid) -> None:
    t = optical_grid.transform
    shifted = Grid(optical_grid.crs, from_origin(t.c + 900, t.f, 10, 10), 120, 120)  # 300 m of 1200 m
    with pytest.warns(UserWarning, match=r"covers only 25\.0%"):
        frac = check_overlap(optical_grid, shifted)
    assert frac == pytest.approx(0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_overlap(optical_grid, optical_grid) == pytest.approx(1.0)


def test_alignment_keeps_nodata_and_refuses_db(optical_grid) -> None:
    field = _smooth_field(optical_grid)
    field[:20] = -9999.0
    t = optical_grid.transform
    shifted = Grid(optical_grid.crs, from_origin(t.c + 5, t.f - 5, 10, 10), 120, 120)  # half a pixel
    out = align_to_grid(field, optical_grid, shifted, src_nodata=-9999.0)
    assert np.isnan(out[:19]).all() and np.isfinite(out[21:-1, :-1]).all()
    with pytest.raises(ValueError, match="dB"):
        align_to_grid(10 * np.log10(_smooth_field(optical_grid)) - 20, optical_grid, shifted)
