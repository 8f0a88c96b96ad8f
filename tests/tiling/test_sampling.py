"""One decimated / central / block-mosaic reader, for open datasets and for arrays (tiling.sampling)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr

from tiling.sampling import (
    blocks_of,
    central_of,
    central_slices,
    read_blocks,
    read_central,
    read_decimated,
)


def test_dataset_and_array_samples_are_the_same_pixels(
    tmp_path: Path, write_tif: Callable[..., Path]
) -> None:
    data = np.random.default_rng(0).gamma(2.0, 0.1, (1, 1250, 1330)).astype(np.float32)
    path = write_tif(tmp_path / "s.tif", data)
    arr = data[0]
    da = xr.DataArray(arr, dims=("y", "x")).chunk(300)
    with rasterio.open(path) as ds:
        central = read_central(ds, 1, size=1024)
        assert central.shape == (1024, 1024)
        np.testing.assert_array_equal(central, arr[113:1137, 153:1177])
        np.testing.assert_array_equal(central_of(arr), central)
        np.testing.assert_array_equal(central_of(da), central)
        mosaic = read_blocks(ds, 1, window=192, grid=6)
        assert mosaic.shape == (6 * 192, 6 * 192)
        np.testing.assert_array_equal(blocks_of(arr), mosaic)
        np.testing.assert_array_equal(blocks_of(da), mosaic)
        np.testing.assert_array_equal(mosaic[:192, :192], arr[:192, :192])  # first window at the origin
        np.testing.assert_array_equal(mosaic[-192:, -192:], arr[-192:, -192:])  # last at the far corner
        dec = read_decimated(ds, max_size=512)
        assert dec.shape == (1, 416, 443) and np.ma.isMaskedArray(dec)


def test_small_scenes_are_read_whole(tmp_path: Path, write_tif: Callable[..., Path]) -> None:
    data = np.arange(2 * 40 * 50, dtype=np.float32).reshape(2, 40, 50)
    path = write_tif(tmp_path / "small.tif", data)
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(read_blocks(ds, 2), data[1])
        np.testing.assert_array_equal(read_central(ds, 2), data[1])
        assert read_decimated(ds, band=2).shape == (1, 40, 50)
    np.testing.assert_array_equal(blocks_of(data[1]), data[1])
    assert central_slices(40, 50, 32) == (slice(4, 36), slice(9, 41))
