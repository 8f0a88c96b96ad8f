"""Block sources: reflect-padded windowed reads, validity from nodata and from internal masks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from tiling.geometry import PixelWindow
from tiling.sources import ArraySource, RasterSource, valid_mask


def test_raster_and_array_sources_read_the_same_reflected_window(nodata_scene: Path, read_tif) -> None:  # noqa: ANN001
    full = read_tif(nodata_scene)
    window = PixelWindow(-3, -2, 50, 40)  # passes the top-left corner and crosses the nodata patch
    ref = np.pad(full, ((0, 0), (5, 5), (5, 5)), mode="reflect")[:, 2:52, 3:43]
    source = RasterSource(nodata_scene)
    data, valid = source.read(window)
    assert data.dtype == np.float32 and np.array_equal(data, ref)
    assert np.array_equal(valid, ref != -1.0)
    again = pickle.loads(pickle.dumps(source))  # what a dask worker gets: a path, reopened lazily
    assert np.array_equal(again.read(window)[0], data)
    mem, mvalid = ArraySource(full, nodata=-1.0).read(window)
    assert np.array_equal(mem, data) and np.array_equal(mvalid, valid)


def test_validity_from_an_internal_mask(tmp_path: Path, write_tif) -> None:  # noqa: ANN001
    import rasterio

    data = np.arange(1, 1 + 20 * 30, dtype=np.float64).reshape(1, 20, 30)
    path = write_tif(tmp_path / "m.tif", data, crs="EPSG:32632", transform=from_origin(0, 100, 1, 1))
    with rasterio.open(path, "r+") as ds:
        mask = np.full((20, 30), 255, np.uint8)
        mask[:5] = 0
        ds.write_mask(mask)
    got, valid = RasterSource(path).read(PixelWindow(0, 0, 20, 30))
    assert got.dtype == np.float64  # float64 input computes in float64
    assert not valid[:, :5].any() and valid[:, 5:].all()


def test_valid_mask_nan_nodata_and_inf() -> None:
    x = np.array([1.0, np.nan, np.inf, -9999.0])
    assert valid_mask(x, -9999.0).tolist() == [True, False, False, False]
    assert valid_mask(x, np.nan).tolist() == [True, False, False, True]
