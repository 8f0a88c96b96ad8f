"""Samples of a scene: the one decimated, central-window and block-mosaic reader.

Units, looks and scene-scale estimates need a bounded number of pixels, whatever the scene size.
Each sample exists for an open rasterio dataset and for an in-memory or lazy array (numpy,
xarray/dask), with the same geometry, so a file and the same pixels handed over as an array give
the same sample, and the estimates made on it agree.

- :func:`read_decimated`: every k-th pixel (nearest), for value ranges and product checks;
- :func:`read_central` / :func:`central_of`: the central window of at most ``size`` px, neighbourhoods
  intact (units detection, looks, scene scale);
- :func:`read_blocks` / :func:`blocks_of`: full-resolution windows spread over the scene, tiled into
  one mosaic (looks estimation on large scenes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import rasterio
import rasterio.enums
from rasterio.windows import Window

__all__ = [
    "CENTRAL_SIZE",
    "block_origins",
    "blocks_of",
    "central_of",
    "central_slices",
    "read_blocks",
    "read_central",
    "read_decimated",
]

#: Edge (px) of the central window that units, looks and the scene scale are measured on.
CENTRAL_SIZE = 1024


def central_slices(height: int, width: int, size: int = CENTRAL_SIZE) -> tuple[slice, slice]:
    """(rows, cols) slices of the central window of at most ``size`` x ``size`` px."""
    h, w = min(size, height), min(size, width)
    r0, c0 = (height - h) // 2, (width - w) // 2
    return slice(r0, r0 + h), slice(c0, c0 + w)


def read_central(ds: rasterio.io.DatasetReader, band: int = 1, size: int = CENTRAL_SIZE) -> np.ma.MaskedArray:
    """Masked (h, w) read of the central window of band ``band`` (1-based) of an open dataset."""
    rows, cols = central_slices(ds.height, ds.width, size)
    win = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
    return _read(ds, band, window=win, masked=True)


def _read(ds: rasterio.io.DatasetReader, band: Any, window: Window | None = None, **kwargs: Any) -> Any:  # noqa: ANN401
    """``ds.read`` that turns GDAL's late failures (truncated file, missing VRT source, corrupt block)
    into a RasterReadError (bad input, exit code 2) naming the file, the window and the fix."""
    from rasterio.errors import RasterioError

    from tiling.errors import RasterReadError
    from tiling.raster_io import _reason

    try:
        return ds.read(band, window=window, **kwargs)
    except RasterioError as exc:
        where = "the raster"
        if window is not None:
            r, c, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
            where = f"rows {r}-{r + h - 1}, cols {c}-{c + w - 1}"
        raise RasterReadError(
            f"{ds.name}: {where} could not be read ({_reason(exc)}); the file may be truncated or damaged "
            "(or a VRT source is missing): copy or download it again"
        ) from exc


def central_of(values: Any, size: int = CENTRAL_SIZE, y_dim: str = "y", x_dim: str = "x") -> np.ndarray:  # noqa: ANN401
    """The same central window of a 2-D array: numpy (h, w), or an xarray DataArray with ``y_dim``/
    ``x_dim`` (computed). Returns a numpy array in the input's dtype."""
    if hasattr(values, "isel") and hasattr(values, "sizes"):
        rows, cols = central_slices(values.sizes[y_dim], values.sizes[x_dim], size)
        return np.asarray(values.isel({y_dim: rows, x_dim: cols}).values)
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"a central sample needs a 2-D (rows, cols) array, got shape {arr.shape}")
    rows, cols = central_slices(*arr.shape, size)
    return arr[rows, cols]


def read_decimated(
    ds: rasterio.io.DatasetReader, max_size: int = 512, band: int | None = None
) -> np.ma.MaskedArray:
    """Masked (bands, h, w) read, nearest-decimated so that the longer edge is at most ``max_size``.

    ``band`` None reads every band. Enough values to tell products and value ranges apart; the
    decimation keeps the marginal statistics but not the neighbourhoods.
    """
    step = max(1, int(np.ceil(max(ds.width, ds.height) / max_size)))
    shape = (max(1, ds.height // step), max(1, ds.width // step))
    indexes = [band] if band else list(range(1, ds.count + 1))
    return _read(
        ds,
        indexes,
        out_shape=(len(indexes), *shape),
        masked=True,
        resampling=rasterio.enums.Resampling.nearest,
    )


def block_origins(height: int, width: int, window: int = 192, grid: int = 6) -> list[tuple[int, int]] | None:
    """(row, col) origins of the ``grid`` x ``grid`` windows of :func:`read_blocks`; None: read whole."""
    if width * height <= (window * grid) ** 2 or width < window or height < window:
        return None
    ny, nx = min(grid, height // window), min(grid, width // window)
    rows = np.linspace(0, height - window, ny).astype(int)
    cols = np.linspace(0, width - window, nx).astype(int)
    return [(int(r), int(c)) for r in rows for c in cols]


def _mosaic(parts: list[np.ndarray], origins: list[tuple[int, int]], window: int) -> np.ndarray:
    ny = len({r for r, _ in origins})
    nx = len(origins) // ny
    out = np.empty((ny * window, nx * window), dtype=parts[0].dtype)
    for k, part in enumerate(parts):
        i, j = divmod(k, nx)
        out[i * window : (i + 1) * window, j * window : (j + 1) * window] = part
    return out


def read_blocks(ds: rasterio.io.DatasetReader, band: int = 1, window: int = 192, grid: int = 6) -> np.ndarray:
    """Full-resolution windows spread over the scene, tiled into one (rows, cols) mosaic.

    Decimating by pixels would keep the marginal statistics but spread every 8x8 block over a
    large, textured area; reading a grid x grid set of window x window blocks keeps neighbourhoods
    intact and bounds the read (about 1.3 Mpx) whatever the scene size. ``window`` is a multiple of
    8 * {1, 2, 3, 4} so that 8-px looks blocks never straddle two windows. Small scenes are read whole.
    """
    origins = block_origins(ds.height, ds.width, window, grid)
    if origins is None:
        return _read(ds, band)
    parts = [_read(ds, band, window=Window(c, r, window, window)) for r, c in origins]
    return _mosaic(parts, origins, window)


def blocks_of(
    values: Any, window: int = 192, grid: int = 6, y_dim: str = "y", x_dim: str = "x"
) -> np.ndarray:  # noqa: ANN401
    """:func:`read_blocks` of a 2-D numpy array or xarray DataArray (same windows, computed)."""
    if hasattr(values, "isel") and hasattr(values, "sizes"):
        h, w = values.sizes[y_dim], values.sizes[x_dim]
        origins = block_origins(h, w, window, grid)
        if origins is None:
            return np.asarray(values.values)
        parts = [
            np.asarray(values.isel({y_dim: slice(r, r + window), x_dim: slice(c, c + window)}).values)
            for r, c in origins
        ]
        return _mosaic(parts, origins, window)
    arr = np.asarray(values)
    origins = block_origins(*arr.shape, window, grid)
    if origins is None:
        return arr
    return _mosaic([arr[r : r + window, c : c + window] for r, c in origins], origins, window)
