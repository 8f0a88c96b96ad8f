"""The Python API: ``geodiff.despeckle`` and ``geodiff.fuse`` on file paths, numpy arrays and xarray.

Same defaults as the CLI. Paths run the scene apps (COG out, QA tags); numpy arrays come back as
numpy; xarray objects come back *lazy* on the same grid (dask), so a notebook can build a whole
chain and compute only the window it looks at.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["despeckle", "fuse"]

_SAMPLE = 1024


def _central_sample(arr: xr.DataArray) -> np.ndarray:
    """A central window (at most 1024 x 1024) of a 2-D DataArray, computed."""
    h, w = arr.sizes["y"], arr.sizes["x"]
    sh, sw = min(_SAMPLE, h), min(_SAMPLE, w)
    r0, c0 = (h - sh) // 2, (w - sw) // 2
    return np.asarray(arr.isel(y=slice(r0, r0 + sh), x=slice(c0, c0 + sw)).values, dtype=np.float64)


def _as_dataarray(data: Any) -> tuple[xr.DataArray, bool]:
    """(DataArray with y/x dims, was_numpy)."""
    if isinstance(data, xr.DataArray):
        return data, False
    arr = np.asarray(data)
    if arr.ndim == 2:
        return xr.DataArray(arr, dims=("y", "x")), True
    if arr.ndim == 3:
        return xr.DataArray(arr, dims=("band", "y", "x")), True
    raise ValueError(f"expected a (H, W) or (bands, H, W) array, got shape {arr.shape}")


def _nodata(arr: xr.DataArray) -> float | None:
    for key in ("_FillValue", "nodata"):
        v = arr.attrs.get(key, arr.encoding.get(key))
        if v is not None:
            return float(v)
    return arr.rio.nodata if hasattr(arr, "rio") and "x" in arr.dims and _has_rio(arr) else None


def _has_rio(arr: xr.DataArray) -> bool:
    try:
        import rioxarray  # noqa: F401

        return True
    except ImportError:
        return False


def despeckle(
    data: Any,
    out: str | os.PathLike | None = None,
    *,
    method: str = "sar-dps",
    looks: float | None = None,
    units: str | None = None,
    sensor: str = "auto",
    uncertainty: bool = False,
    seed: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    window: int = 7,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
):
    """Despeckle a SAR scene.

    data: a GeoTIFF path (then ``out`` is the output path and a summary dict is returned), a numpy
        array (H, W) or (bands, H, W) (numpy back), or an xarray DataArray with y/x dims (a lazy
        DataArray back; with ``uncertainty`` a Dataset with ``despeckled`` and ``uncertainty``).
    method: "sar-dps" (default) or a classical filter (lee, refined-lee, frost, gamma-map, boxcar).
    looks / units: as in the CLI (estimated / guessed when None; arrays default to intensity units
        unless the values say dB or amplitude).
    options: sar-dps settings: prior, steps, samples, sigma0, init, device ("auto"), max_batch.
    """
    from geodiff.apps.despeckle import despeckle_scene, get

    if isinstance(data, (str, os.PathLike)):
        if out is None:
            raise ValueError("despeckling a file needs out=... (the output GeoTIFF path)")
        return despeckle_scene(
            data, out, method, looks=looks, units=units, sensor=sensor, uncertainty=uncertainty, seed=seed,
            tile=tile, overlap=overlap, window=window, overwrite=overwrite, progress=progress, **options,
        )  # fmt: skip
    if isinstance(data, xr.Dataset):
        raise ValueError("pass one DataArray (e.g. ds['VV']) or use ds.geodiff.despeckle(...)")
    get(method)  # an unknown method fails before any work
    arr, was_numpy = _as_dataarray(data)
    if was_numpy and units is None:  # no metadata to go by: negative values mean dB, else intensity
        units = "db" if float(np.nanmin(arr.values)) < 0 else "intensity"
    if "y" not in arr.dims or "x" not in arr.dims:
        raise ValueError(f"the DataArray needs 'y' and 'x' dims; it has {arr.dims}")
    band_dims = [d for d in arr.dims if d not in ("y", "x")]
    if len(band_dims) > 1:
        raise ValueError(f"at most one band dimension is supported; got {band_dims}")
    bands = [arr] if not band_dims else [arr.isel({band_dims[0]: i}) for i in range(arr.sizes[band_dims[0]])]
    results = [
        _despeckle_band(b, method, looks, units, uncertainty, seed, tile, overlap, window, options)
        for b in bands
    ]
    means = [r[0] for r in results]
    mean = means[0] if not band_dims else xr.concat(means, dim=arr[band_dims[0]])
    mean = mean.transpose(*arr.dims)
    mean.attrs = {**arr.attrs, "geodiff_method": method, "geodiff_looks": results[0][2]}
    mean.name = arr.name
    if not uncertainty:
        return mean.values if was_numpy else mean
    stds = [r[1] for r in results]
    std = (stds[0] if not band_dims else xr.concat(stds, dim=arr[band_dims[0]])).transpose(*arr.dims)
    if was_numpy:
        return mean.values, std.values
    return xr.Dataset({"despeckled": mean, "uncertainty": std})


def _despeckle_band(band, method, looks, units, uncertainty, seed, tile, overlap, window, options):  # noqa: ANN001, ANN202, PLR0913
    """One 2-D band -> (lazy mean, lazy std or None, looks)."""
    from geodiff.apps.despeckle.methods import build, get
    from geodiff.apps.facts import array_band_facts
    from tiling.xarray_adapter import map_tiles_dataarray

    m = get(method)
    facts = array_band_facts(
        _central_sample(band), units=units, looks=looks, nodata=_nodata(band), attrs=dict(band.attrs)
    )
    if uncertainty:
        options = {**options, "uncertainty": True}
    fn = build(
        method, looks=facts.looks, units=facts.units, window=window, sample=(facts.intensity, facts.valid),
        **options,
    )  # fmt: skip
    if m.kind == "array":
        res = map_tiles_dataarray(band, fn, kind="array", tile=tile or 1024, overlap=0, halo=m.halo(window),
                                  block_tiles=1, seed=seed)  # fmt: skip
        return res, None, facts.looks
    stacked = band.expand_dims("_out")
    ov = 32 if overlap is None else overlap
    res = map_tiles_dataarray(
        stacked, fn, kind="tiles", tile=tile or 288, overlap=ov, block_tiles=4, seed=seed,
        out_channels=fn.outputs,
    )  # fmt: skip
    mean = res.isel(_out=0, drop=True)
    std = res.isel(_out=1, drop=True) if uncertainty else None
    return mean, std, facts.looks


def fuse(
    optical: Any, sar: Any, out: str | os.PathLike | None = None, *, overwrite: bool = False, **options: Any
):
    """Fuse an optical image with a SAR image (L1/TV-guided DPS by default; ``method=`` for baselines).

    Paths: the SAR is warped onto the optical grid and a COG is written to ``out`` (summary back).
    numpy: both on the same grid, (C, H, W)/(H, W) optical and (H, W) SAR; the fused array back.
    xarray: DataArrays on the same grid; a lazy DataArray on the optical grid back.
    options: as :func:`geodiff.apps.fuse.arrays.fuse_arrays` / :func:`geodiff.apps.fuse.scene.fuse_scene`.
    """
    if isinstance(optical, (str, os.PathLike)) or isinstance(sar, (str, os.PathLike)):
        from geodiff.apps.fuse.scene import fuse_scene

        if out is None:
            raise ValueError("fusing files needs out=... (the output GeoTIFF path)")
        return fuse_scene(optical, sar, out, overwrite=overwrite, **options)
    from geodiff.apps.fuse.arrays import fuse_arrays

    if isinstance(optical, xr.DataArray) and isinstance(sar, xr.DataArray):
        import dask
        import dask.array as da

        if optical.sizes["y"] != sar.sizes["y"] or optical.sizes["x"] != sar.sizes["x"]:
            raise ValueError(
                f"optical {optical.sizes['y']}x{optical.sizes['x']} and SAR "
                f"{sar.sizes['y']}x{sar.sizes['x']} are not on the same grid; use file paths (the SAR is "
                "then warped) or reproject first"
            )
        delayed = dask.delayed(fuse_arrays, pure=True)(optical.data, sar.data, **options)
        lazy = da.from_delayed(delayed, shape=optical.shape, dtype=np.float32)
        res = xr.DataArray(lazy, dims=optical.dims, coords=optical.coords, attrs=dict(optical.attrs))
        res.name = "fused"
        return res
    return fuse_arrays(np.asarray(optical), np.asarray(sar), **options)
