"""Alignment of the SAR onto the optical grid, footprint checks and colour handling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform

from geodiff.apps.fuse.scales import robust_unit, sar_to_intensity
from sensors.colour import luminance, restore_colour, rgb_band_indices
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


def test_sar_decoding() -> None:
    db = np.array([[-20.0, -10.0], [0.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(sar_to_intensity(db, "db"), 10 ** (db / 10), rtol=1e-6)
    np.testing.assert_allclose(sar_to_intensity(np.array([[2.0]]), "amplitude"), [[4.0]])
    np.testing.assert_allclose(sar_to_intensity(np.array([[1 + 1j]]), "complex"), [[2.0]])
    assert np.isnan(sar_to_intensity(np.array([[0.0, 1.0]]), "intensity", nodata=0.0)[0, 0])
    with pytest.raises(ValueError, match="dB"):
        sar_to_intensity(db, "intensity")
    with pytest.raises(ValueError, match="unknown SAR units"):
        sar_to_intensity(db, "furlongs")


def test_robust_unit_scaling() -> None:
    x = np.linspace(0, 100, 10_001)
    x[-1] = 1e6  # one outlier does not squash the rest
    s = robust_unit(x)
    u = s.forward(x)
    assert u.min() == 0 and u.max() == 1 and 0.45 < np.median(u) < 0.55
    np.testing.assert_allclose(s.inverse(s.forward(x[100:-100])), x[100:-100])
    with pytest.raises(ValueError, match="no valid pixels"):
        robust_unit(np.full(4, np.nan))


def test_rgb_band_selection() -> None:
    assert rgb_band_indices(("B02", "B03", "B04", "B08"), 4) == (2, 1, 0)  # BigEarthNet S2
    s2 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
    assert rgb_band_indices(s2, 13) == (3, 2, 1)
    assert rgb_band_indices(("B2_blue", "B3_green", "B4_red"), 3) == (2, 1, 0)  # Landsat 8 by words
    assert rgb_band_indices(("B1", "B2", "B3", "B4"), 4, "LE07_L2SP_x.tif") == (2, 1, 0)  # Landsat 7
    assert rgb_band_indices(("B1", "B2", "B3", "B4"), 4, "LC08_L2SP_x.tif") == (3, 2, 1)  # Landsat 8
    assert rgb_band_indices((None, None, None), 3) == (0, 1, 2)
    assert rgb_band_indices(("VV",), 1) is None
    assert rgb_band_indices(("a", "b", "c", "d", "e"), 5) is None


def test_colour_restoration_keeps_chroma_and_sets_the_luminance() -> None:
    rng = np.random.default_rng(3)
    bands = rng.uniform(0.2, 1.0, (3, 16, 16))
    lum = luminance(bands, (0, 1, 2))
    fused = lum * rng.uniform(0.5, 1.5, lum.shape)
    out = restore_colour(bands, lum, fused, method="ratio", dark=0.01)
    np.testing.assert_allclose(luminance(out, (0, 1, 2)), fused, rtol=1e-12)
    np.testing.assert_allclose(out[0] / out[1], bands[0] / bands[1], rtol=1e-12)  # chromaticity kept
    ihs = restore_colour(bands, lum, fused, method="ihs")
    np.testing.assert_allclose(luminance(ihs, (0, 1, 2)), fused, rtol=1e-12)
    np.testing.assert_allclose(ihs[0] - ihs[1], bands[0] - bands[1], atol=1e-12)
    # a black pixel cannot be divided by: the additive rule takes over, no inf/NaN
    bands[:, 0, 0] = 0.0
    lum = luminance(bands, (0, 1, 2))
    out = restore_colour(bands, lum, fused, method="ratio")
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0, 0], fused[0, 0])
