"""Fixtures of the tiling tests: small GeoTIFFs written with rasterio."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin


def _write(path: Path, data: np.ndarray, **profile) -> Path:  # noqa: ANN003 - rasterio profile keys
    prof = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0]}
    with rasterio.open(path, "w", **(prof | {"dtype": str(data.dtype)} | profile)) as dst:
        dst.write(data)
    return path


@pytest.fixture
def write_tif() -> Callable[..., Path]:
    """``write_tif(path, data (C, H, W), **profile) -> path``: a GeoTIFF written with rasterio."""
    return _write


@pytest.fixture(scope="module")
def nodata_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 x 131 float32 gamma intensity, UTM 32N at 10 m, nodata -1 on rows 40-59, cols 10-29."""
    data = np.random.default_rng(3).gamma(2.0, 0.5, (1, 150, 131)).astype(np.float32)
    data[0, 40:60, 10:30] = -1.0
    path = tmp_path_factory.mktemp("tiling") / "scene.tif"
    return _write(path, data, nodata=-1.0, crs="EPSG:32632", transform=from_origin(5e5, 5e6, 10, 10))


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.fixture
def read_tif() -> Callable[[Path], np.ndarray]:
    """``read_tif(path) -> (C, H, W)``: every band of a raster in its dtype."""
    return _read
