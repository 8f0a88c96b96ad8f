"""Lazy, same-grid results for xarray inputs (dask-backed DataArray or Dataset).

Each block of the tile plan becomes one dask task that receives exactly the (reflect-padded)
pixels it needs, sliced lazily from the input, and runs the same block code as the raster path;
the results are stitched with ``dask.array.block``. Coordinates (``spatial_ref`` included),
attributes and the rioxarray nodata encoding are carried over, so ``result.rio.to_raster`` and
friends see the input's grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from tiling.plan import TilePlan
from tiling.raster_io import _valid_mask, reflect_index
from tiling.runner import block_function


class _WindowSource:
    """A pre-read window of the (padded) scene, addressed in global pixel coordinates."""

    def __init__(self, data: np.ndarray, row0: int, col0: int, nodata: float | None) -> None:
        self.data, self.row0, self.col0, self.nodata = data, row0, col0, nodata

    def read(self, row0: int, col0: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        r, c = row0 - self.row0, col0 - self.col0
        raw = self.data[:, r : r + height, c : c + width]
        dtype = np.float64 if raw.dtype == np.float64 else np.float32
        return raw.astype(dtype, copy=False), _valid_mask(raw, self.nodata)


def _run_block(data: np.ndarray, row0: int, col0: int, nodata, plan, block, fn, kind, kwargs):  # noqa: ANN001, ANN202
    task = block_function(_WindowSource(data, row0, col0, nodata), plan, fn, kind, **kwargs)
    return task(block).data


def _nodata_in_data(obj: xr.DataArray) -> float | None:
    try:
        nodata = obj.rio.nodata
    except Exception:  # noqa: BLE001 - rioxarray accessor absent or unusual attrs
        nodata = None
    if nodata is None:
        nodata = obj.attrs.get("_FillValue", obj.attrs.get("nodata"))
    return None if nodata is None else float(nodata)


def map_tiles_dataarray(
    obj: xr.DataArray,
    fn: Callable,
    *,
    kind: str = "tiles",
    tile: int = 256,
    overlap: int = 32,
    halo: int = 0,
    block_tiles: int = 4,
    seed: int = 0,
    out_channels: int | None = None,
    y_dim: str = "y",
    x_dim: str = "x",
    **kwargs: Any,
) -> xr.DataArray:
    """Lazy result of ``fn`` run through the tile plan on a (band, y, x) or (y, x) DataArray."""
    if y_dim not in obj.dims or x_dim not in obj.dims:
        raise ValueError(f"DataArray needs dims {y_dim!r} and {x_dim!r}; got {obj.dims}")
    other = [d for d in obj.dims if d not in (y_dim, x_dim)]
    if len(other) > 1:
        raise ValueError(f"at most one non-spatial dim (e.g. 'band') is supported; got {other}")
    arr = obj.transpose(*other, y_dim, x_dim).data
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=(-1, 1024, 1024) if other else (1024, 1024))
    if not other:
        arr = arr[None]
    c, h, w = arr.shape
    nodata = _nodata_in_data(obj)
    fill = nodata if nodata is not None else np.nan
    plan = TilePlan(h, w, tile, overlap, halo, block_tiles, seed)
    c_out = out_channels or c
    rows_of_blocks = []
    nbr, nbc = plan.block_grid
    for i in range(nbr):
        row = []
        for j in range(nbc):
            block = plan.block(i, j)
            if kind == "tiles":
                r0, c0, bh, bw = plan.block_extent(block)
            else:
                r0, c0, bh, bw = block.core
            r0, c0, bh, bw = r0 - halo, c0 - halo, bh + 2 * halo, bw + 2 * halo
            sub = arr[:, reflect_index(np.arange(r0, r0 + bh), h)][
                :, :, reflect_index(np.arange(c0, c0 + bw), w)
            ]
            res = dask.delayed(_run_block, pure=True)(
                sub, r0, c0, nodata, plan, block, fn, kind, dict(kwargs, fill=fill)
            )
            row.append(da.from_delayed(res, shape=(c_out, block.core[2], block.core[3]), dtype=np.float32))
        rows_of_blocks.append(row)
    out = da.block(rows_of_blocks)
    if not other:
        out = out[0]
    coords = {k: v for k, v in obj.coords.items() if c_out == c or not (set(v.dims) & set(other))}
    result = xr.DataArray(
        out, dims=(*other, y_dim, x_dim), coords=coords, attrs=dict(obj.attrs), name=obj.name
    )
    result.name = obj.name  # xarray would otherwise name it after the dask graph
    result.encoding = {
        k: v for k, v in obj.encoding.items() if k not in ("dtype", "scale_factor", "add_offset")
    }
    return result.transpose(*obj.dims)


def map_tiles(obj: xr.DataArray | xr.Dataset, fn: Callable, **kwargs: Any) -> xr.DataArray | xr.Dataset:
    """Same as :func:`map_tiles_dataarray`; for a Dataset, every variable with y and x dims is processed."""
    if isinstance(obj, xr.DataArray):
        return map_tiles_dataarray(obj, fn, **kwargs)
    y_dim, x_dim = kwargs.get("y_dim", "y"), kwargs.get("x_dim", "x")
    out = obj.copy()
    for name, var in obj.data_vars.items():
        if y_dim in var.dims and x_dim in var.dims:
            out[name] = map_tiles_dataarray(var, fn, **kwargs)
    return out
