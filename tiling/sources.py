"""Block sources: any pixel window of a scene on demand, reflect-padded outside the raster.

A source is what the runner reads blocks from (:class:`Source`): ``read(window) -> (data, valid)``
with ``data`` (C, h, w) in the compute dtype (float32, or float64 for float64 inputs) and ``valid``
(C, h, w) bool (finite, not nodata, not masked). Windows may pass the raster edges: the pixels there
are reflect-padded by index (``numpy.pad(mode="reflect")``), so a block at the edge sees exactly what
an untiled, reflect-padded scene would show.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
from typing import Protocol

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from tiling.geometry import PixelWindow, reflect_window
from tiling.raster_io import GDAL_CACHE_BYTES, RasterMeta, gdal_path, open_raster, read_meta, read_window

__all__ = ["ArraySource", "RasterSource", "Source", "compute_dtype", "valid_mask"]


class Source(Protocol):
    """What the runner reads from: a ``height x width`` scene (pixels) and windowed reads."""

    height: int
    width: int

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """(data (C, h, w) float32/float64, valid (C, h, w) bool) of ``window``, reflect-padded."""
        ...


def valid_mask(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Bool mask of the same shape as ``data``: finite and not equal to ``nodata`` (NaN nodata: finite)."""
    valid = np.isfinite(data)
    if nodata is not None and not np.isnan(nodata):
        valid &= data != nodata
    return valid


def compute_dtype(dtype: np.dtype | str) -> np.dtype:
    """float64 for float64 input, float32 for everything else (integers, float16, float32)."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


class RasterSource:
    """Windowed, reflect-padded reads of selected bands of a raster (picklable: holds only a path).

    ``path`` is anything :func:`~tiling.raster_io.open_raster` accepts (GDAL path strings unchanged);
    ``bands`` are 1-based (default: all). The dataset opens lazily in each process that reads; threads
    of one process share it, one read at a time (a GDAL dataset handle is not thread-safe).

    Raises:
        The :func:`~tiling.raster_io.open_raster` errors on construction;
        RasterReadError (OSError) from :meth:`read` when GDAL fails on a window (truncated file).
    """

    def __init__(
        self, path: str | os.PathLike, bands: list[int] | None = None, nodata: float | None = None
    ) -> None:
        self.path = gdal_path(path)
        with open_raster(self.path) as ds:
            self.meta = read_meta(ds)
        if nodata is not None:  # the caller knows the nodata value the file does not declare
            self.meta = dataclasses.replace(self.meta, nodata=nodata, nodatavals=(nodata,) * self.meta.count)
        self.bands = list(bands) if bands else list(range(1, self.meta.count + 1))
        self._ds: rasterio.io.DatasetReader | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_ds"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def height(self) -> int:
        """Raster rows (pixels)."""
        return self.meta.height

    @property
    def width(self) -> int:
        """Raster columns (pixels)."""
        return self.meta.width

    @property
    def nodata(self) -> float | None:
        """The nodata value of the first band read (None when validity comes from masks or there is
        none); every band's own nodata decides its validity in :meth:`read`."""
        return self.meta.band_nodata(self.bands[0])

    def _dataset(self) -> rasterio.io.DatasetReader:
        if self._ds is None or self._ds.closed:
            self._ds = open_raster(self.path)
        return self._ds

    def close(self) -> None:
        """Close the dataset this process opened (it reopens on the next read)."""
        with self._lock:
            if self._ds is not None:
                self._ds.close()
                self._ds = None

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (C, h, w) in the compute dtype and their validity (C, h, w) bool.

        Validity: finite, not nodata and, for files with internal masks or alpha, not masked.
        """
        plan = reflect_window(window, self.height, self.width)
        with self._lock, warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = self._dataset()
            raw = plan.take(read_window(ds, plan.bounds, self.bands))
            valid = np.stack([valid_mask(raw[i], self.meta.band_nodata(b)) for i, b in enumerate(self.bands)])
            if self.meta.uses_masks:
                valid &= plan.take(read_window(ds, plan.bounds, self.bands, masks=True)) > 0
        return raw.astype(compute_dtype(self.meta.dtype), copy=False), valid


class ArraySource:
    """The :class:`Source` interface over an in-memory (C, H, W) or (H, W) array (any dtype)."""

    def __init__(self, array: np.ndarray, nodata: float | None = None) -> None:
        a = np.asarray(array)
        self.array = a[None] if a.ndim == 2 else a
        self.meta = RasterMeta(
            width=self.array.shape[2],
            height=self.array.shape[1],
            count=self.array.shape[0],
            dtype=str(a.dtype),
            nodata=nodata,
        )
        self.bands = list(range(1, self.array.shape[0] + 1))

    height = RasterSource.height
    width = RasterSource.width

    @property
    def nodata(self) -> float | None:
        """The array's nodata value (None: none)."""
        return self.meta.nodata

    def close(self) -> None:
        """Nothing to close (kept for the runner's interface)."""

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (C, h, w) in the compute dtype and their validity (finite, not nodata)."""
        plan = reflect_window(window, self.height, self.width)
        raw = self.array[:, plan.rows][:, :, plan.cols]
        return raw.astype(compute_dtype(self.meta.dtype), copy=False), valid_mask(raw, self.nodata)
