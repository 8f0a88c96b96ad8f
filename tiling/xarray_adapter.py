"""Lazy, same-grid results for xarray inputs (dask-backed DataArray or Dataset).

Two paths, matching the runner's two kinds of function:

* :func:`map_overlap` for halo-only array functions (classical neighbourhood filters): the function
  runs on every dask chunk plus ``halo`` pixels of its neighbours through ``dask.array.map_overlap``;
  the scene edges are reflect-padded by index first (``numpy.pad(mode="reflect")``, the padding the
  file path uses), so results equal :func:`tiling.runner.run_raster`'s up to float rounding.
* :func:`map_tiles` for tile-batch functions (diffusion solvers): each block of the tile plan becomes
  one dask task that receives exactly the (reflect-padded) pixels it needs and runs the runner's block
  code, so per-tile seeds and blending, and therefore the result, do not depend on the chunking.

Coordinates (``spatial_ref`` included), attributes and the rioxarray nodata encoding are carried over,
so ``result.rio.to_raster`` and friends see the input's grid. :func:`resolve_nodata` is the one place
that decides which value marks nodata in a DataArray.
"""

from __future__ import annotations

from collections.abc import Callable

import dask
import dask.array as da
import numpy as np
import rioxarray  # noqa: F401 - registers the .rio accessor resolve_nodata reads
import xarray as xr

from tiling.geometry import PixelWindow, reflect_index
from tiling.plan import Block, TilePlan, TileSpec
from tiling.runner import block_function, compute_block_array
from tiling.sources import ArraySource, compute_dtype, valid_mask

__all__ = ["map_overlap", "map_tiles", "resolve_nodata"]

_ATTR_KEYS = ("_FillValue", "missing_value", "fill_value", "nodata")


def resolve_nodata(obj: xr.DataArray) -> float | None:
    """The value that marks nodata in ``obj``'s values, or None.

    Order (rioxarray's ``RasterArray.nodata``): a value set with ``rio.write_nodata``/``set_nodata``;
    NaN (the dtype's fill value) when the data was masked on reading (``rio.encoded_nodata`` holds
    the file's value); the ``_FillValue``, ``missing_value``, ``fill_value`` or ``nodata`` attribute;
    the nodata of the file it was opened from. Falls back to those attributes (and the encoding's
    ``_FillValue``) for objects rioxarray cannot inspect.
    """
    try:
        nodata = obj.rio.nodata
    except Exception:  # noqa: BLE001 - rioxarray rejects some objects (odd dims/attrs): use the attrs
        nodata = next((obj.attrs[k] for k in _ATTR_KEYS if obj.attrs.get(k) is not None), None)
        if nodata is None and obj.encoding.get("_FillValue") is not None:
            nodata = np.nan if np.dtype(obj.dtype).kind == "f" else obj.encoding["_FillValue"]
    return None if nodata is None else float(nodata)


# ---- shared plumbing ------------------------------------------------------------------------------
def _as_cyx(obj: xr.DataArray, y_dim: str, x_dim: str) -> tuple[da.Array, list[str]]:
    """(dask array (C, H, W), the non-spatial dim as a list of zero or one name)."""
    if y_dim not in obj.dims or x_dim not in obj.dims:
        raise ValueError(f"DataArray needs dims {y_dim!r} and {x_dim!r}; got {obj.dims}")
    other = [d for d in obj.dims if d not in (y_dim, x_dim)]
    if len(other) > 1:
        raise ValueError(f"at most one non-spatial dim (e.g. 'band') is supported; got {other}")
    arr = obj.transpose(*other, y_dim, x_dim).data
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=(-1, 1024, 1024) if other else (1024, 1024))
    return (arr if other else arr[None]), other


def _reflect_pad(arr: da.Array, rows: np.ndarray, cols: np.ndarray) -> da.Array:
    """Lazy (C, len(rows), len(cols)) of ``arr`` at raster rows/cols that may lie outside it."""
    h, w = arr.shape[-2:]
    return arr[:, reflect_index(rows, h)][:, :, reflect_index(cols, w)]


def _like(obj: xr.DataArray, out: da.Array, other: list[str], y_dim: str, x_dim: str) -> xr.DataArray:
    """``out`` (C', H, W) as a DataArray on ``obj``'s grid, with its coords, attrs, name and encoding."""
    c_in = obj.sizes[other[0]] if other else 1
    same_bands = out.shape[0] == c_in
    coords = {k: v for k, v in obj.coords.items() if same_bands or not (set(v.dims) & set(other))}
    result = xr.DataArray(
        out if other else out[0], dims=(*other, y_dim, x_dim), coords=coords, attrs=dict(obj.attrs)
    )
    result.name = obj.name  # xarray would otherwise name it after the dask graph
    result.encoding = {
        k: v for k, v in obj.encoding.items() if k not in ("dtype", "scale_factor", "add_offset")
    }
    return result.transpose(*obj.dims)


def _each_variable(
    obj: xr.DataArray | xr.Dataset, one: Callable[[xr.DataArray], xr.DataArray], y_dim: str, x_dim: str
) -> xr.DataArray | xr.Dataset:
    if isinstance(obj, xr.DataArray):
        return one(obj)
    out = obj.copy()
    for name, var in obj.data_vars.items():
        if y_dim in var.dims and x_dim in var.dims:
            out[name] = one(var)
    return out


# ---- halo-only array functions: dask.array.map_overlap -------------------------------------------
def _array_chunk(chunk: np.ndarray, fn: Callable, nodata: float | None, fill: float) -> np.ndarray:
    """One dask chunk (C, h, w) with its overlap through the runner's array-block code."""
    h, w = chunk.shape[-2:]
    plan = TilePlan(h, w, TileSpec(tile=max(h, w), overlap=0, halo=0, block_tiles=1))
    return compute_block_array(ArraySource(chunk, nodata), plan, plan.block(0, 0), fn, fill=fill).data


def _padded_chunks(chunks: tuple[int, ...], halo: int) -> tuple[int, ...]:
    """Chunks of an axis padded by ``halo`` on both sides whose inner edges are ``chunks``' edges."""
    if len(chunks) == 1:
        return (chunks[0] + 2 * halo,)
    return (chunks[0] + halo, *chunks[1:-1], chunks[-1] + halo)


def map_overlap(
    obj: xr.DataArray | xr.Dataset, fn: Callable, halo: int, *, y_dim: str = "y", x_dim: str = "x"
) -> xr.DataArray | xr.Dataset:
    """Lazy result of a halo-only array function on a (band, y, x) or (y, x) DataArray (or on every
    variable of a Dataset with y and x dims), through ``dask.array.map_overlap``.

    ``fn(block (C, h, w), valid (C, h, w) bool) -> (C, h, w)`` sees nodata set to 0 (float32, or
    float64 for float64 input); an output pixel may depend only on input pixels at most ``halo``
    (pixels) away. Result: float32, the input's nodata (NaN without one) where the input is invalid,
    same dims, coords, attrs and encoding, and the input's chunks (numpy-backed input: 1024-px blocks,
    the file path's blocks); computing a window runs ``fn`` only on the chunks it touches.

    Raises:
        ValueError: no y/x dims, more than one other dim, or a negative halo.
    """
    if halo < 0:
        raise ValueError(f"halo={halo} must be >= 0 pixels")

    def one(var: xr.DataArray) -> xr.DataArray:
        arr, other = _as_cyx(var, y_dim, x_dim)
        nodata = resolve_nodata(var)
        h, w = arr.shape[-2:]
        padded = _reflect_pad(arr, np.arange(-halo, h + halo), np.arange(-halo, w + halo))
        # the pad's halo joins the first and last chunks, so the result's chunks are the input's
        padded = padded.rechunk((padded.chunks[0], _padded_chunks(arr.chunks[1], halo),
                                 _padded_chunks(arr.chunks[2], halo)))  # fmt: skip
        out = padded.map_overlap(
            _array_chunk,
            depth={0: 0, 1: halo, 2: halo},
            boundary="none",
            dtype=np.float32,
            meta=np.empty((0, 0, 0), np.float32),
            fn=fn,
            nodata=nodata,
            fill=np.nan if nodata is None else nodata,
        )
        return _like(var, out[:, halo : halo + h, halo : halo + w], other, y_dim, x_dim)

    return _each_variable(obj, one, y_dim, x_dim)


# ---- tile-batch functions: one dask task per block of the tile plan ----------------------------
class _WindowSource:
    """A pre-read (padded) window of the scene, addressed in global pixel coordinates."""

    def __init__(self, data: np.ndarray, at: PixelWindow, nodata: float | None) -> None:
        self.data, self.at, self.nodata = data, at, nodata

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        raw = window.relative_to(self.at).crop(self.data)
        return raw.astype(compute_dtype(raw.dtype), copy=False), valid_mask(raw, self.nodata)


def _tile_block(
    data: np.ndarray,
    at: PixelWindow,
    nodata: float | None,
    plan: TilePlan,
    block: Block,
    fn: Callable,
    fill: float,
) -> np.ndarray:
    task = block_function(_WindowSource(data, at, nodata), plan, fn, "tiles", fill=fill)
    return task(block).data


def map_tiles(
    obj: xr.DataArray | xr.Dataset,
    fn: Callable,
    spec: TileSpec,
    *,
    seed: int = 0,
    out_channels: int | None = None,
    y_dim: str = "y",
    x_dim: str = "x",
) -> xr.DataArray | xr.Dataset:
    """Lazy result of a tile-batch function run through the tile plan on a (band, y, x) or (y, x)
    DataArray (or on every variable of a Dataset with y and x dims).

    ``fn`` as in :func:`tiling.runner.compute_block_tiles` (CPU); ``spec`` the tile geometry; ``seed``
    the plan's seed; ``out_channels`` the function's output channels (default: the input's). Result:
    float32, nodata (NaN without one) where the input is invalid, bit-identical to
    :func:`tiling.runner.run_array` on the same pixels whatever the dask chunking. Its chunks are
    the plan's blocks (``spec.block_tiles * spec.stride`` px; they are part of the numerics, so they
    do not follow the input's chunks): computing a window runs only the blocks that touch it.

    Raises:
        ValueError: no y/x dims or more than one other dim; TilePlanError: ``spec`` does not fit.
    """

    def one(var: xr.DataArray) -> xr.DataArray:
        arr, other = _as_cyx(var, y_dim, x_dim)
        c, h, w = arr.shape
        nodata = resolve_nodata(var)
        fill = np.nan if nodata is None else nodata
        plan = TilePlan(h, w, spec, seed)
        nbr, nbc = plan.block_grid
        rows = []
        for i in range(nbr):
            row = []
            for j in range(nbc):
                block = plan.block(i, j)
                at = block.extent.grow(plan.halo)
                sub = _reflect_pad(arr, np.arange(at.row, at.row_stop), np.arange(at.col, at.col_stop))
                args = (sub, at, nodata, plan, block, fn, fill)
                key = (f"geodiff-block-{dask.base.tokenize(*args)}", i, j)  # one task per block
                res = dask.delayed(_tile_block, pure=True)(*args, dask_key_name=key)
                shape = (out_channels or c, *block.core.shape)
                row.append(da.from_delayed(res, shape=shape, dtype=np.float32))
            rows.append(row)
        return _like(var, da.block(rows), other, y_dim, x_dim)

    return _each_variable(obj, one, y_dim, x_dim)
