"""The Python API: ``geodiff.despeckle`` and ``geodiff.fuse`` on file paths, numpy arrays and xarray.

Same defaults as the CLI. Paths run the scene apps (COG out, QA tags); numpy arrays come back as
numpy; xarray objects come back *lazy* on the same grid (dask), so a notebook can build a whole
chain and compute only the window it looks at.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from geodiff.errors import GridMismatchError, InputError, InvalidSettingError

if TYPE_CHECKING:
    from geodiff.apps.fuse.config import FusionConfig

__all__ = ["batch", "despeckle", "fuse"]


def _as_dataarray(data: Any) -> tuple[xr.DataArray, bool]:
    """(DataArray with y/x dims, was_numpy)."""
    if isinstance(data, xr.DataArray):
        return data, False
    arr = np.asarray(data)
    if arr.ndim == 2:
        return xr.DataArray(arr, dims=("y", "x")), True
    if arr.ndim == 3:
        return xr.DataArray(arr, dims=("band", "y", "x")), True
    raise InputError(f"expected a (H, W) or (bands, H, W) array, got shape {arr.shape}")


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
    """Despeckle a SAR scene: SAR-DPS (diffusion posterior sampling with the gamma speckle likelihood,
    Chung et al. 2023; the review's SAR-DPS eq. 22-24) or a classical filter; same defaults as the CLI.

    Args:
        data: a GeoTIFF path or GDAL path string (``out`` is then the output COG and a summary dict comes
            back: units, looks, scene scale, QA); a numpy array (H, W) or (bands, H, W) of any real dtype
            (float32 numpy back, same shape); or an xarray DataArray with ``y``/``x`` dims and at most one
            band dimension (a lazy, dask-backed DataArray on the same grid back, attrs kept).
        out: output GeoTIFF path (paths only).
        method: "sar-dps" (default) or a classical filter: lee, refined-lee, frost, gamma-map, boxcar.
        looks: equivalent number of looks L (> 0); None estimates it per band.
        units: stored units of ``data``: "intensity" (linear power), "amplitude" (sqrt of it) or "db"
            (10 log10); the result comes back in the same units. None or "auto": from the metadata (a
            DataArray's ``attrs["units"]``, ``GEODIFF_UNITS``, file tags and names), else from the values
            where they are decisive; otherwise AmbiguousUnitsError asks for ``units=``.
        sensor: a sensor profile (``geodiff info``) that fixes the units of a file; "auto" detects it.
        uncertainty: also return the per-pixel posterior standard deviation (sampling methods only):
            numpy (mean, std), xarray a Dataset with ``despeckled`` and ``uncertainty``, files one extra
            band per band.
        seed: random seed; every tile derives its own, so results do not depend on tiling or batching.
        tile, overlap: tile edge and overlap in px (sar-dps 288/32, a smaller scene one tile just
            covering it, as for files; classical filters: block edge 1024).
        window: classical filters' window (odd, px).
        overwrite, progress: files only: replace ``out``; show a progress bar.
        options: sar-dps settings: prior ("gray"), profile ("fast", "balanced", "best"; None or "auto":
            balanced on the CPU, best on CUDA), steps and samples (the profile's unless given), sigma0,
            init, device ("auto"), max_batch (16), and the profile's other fields (admm_iters, ...,
            log_tweedie: from two likelihood looks on the profiles return the homomorphic one-step
            estimate of :func:`geodiff.solvers.homomorphic.log_tweedie`; uncertainty, steps or samples
            keep the sampler), estimator ("posterior-mean", or "blind-spot":
            :mod:`geodiff.solvers.blind_spot`, ratio image mean 1 and no bias at a PSNR cost; no
            uncertainty) and blind_spot_radius (0, 1 or 2 px; None: from the speckle correlation).

    Raises:
        UnknownMethodError, InvalidSettingError, UncertaintyNotSupportedError (ValueError): bad settings.
        InputError (ValueError): an array that is not 2-D/3-D, a Dataset, a DataArray without y/x dims.
        sensors' AmbiguousUnitsError (ValueError): units neither given nor decidable (pass ``units=``).
        tiling's RasterNotFoundError, OutputExistsError ... (FileNotFoundError, FileExistsError): paths.
    """
    from geodiff.apps.despeckle import despeckle_scene, get

    if isinstance(data, (str, os.PathLike)):
        if out is None:
            raise InvalidSettingError("despeckling a file needs out=... (the output GeoTIFF path)")
        return despeckle_scene(
            data, out, method, looks=looks, units=units, sensor=sensor, uncertainty=uncertainty, seed=seed,
            tile=tile, overlap=overlap, window=window, overwrite=overwrite, progress=progress, **options,
        )  # fmt: skip
    if isinstance(data, xr.Dataset):
        raise InputError("pass one DataArray (e.g. ds['VV']) or use ds.geodiff.despeckle(...)")
    from geodiff.apps.despeckle.methods import check_count, check_looks, check_options

    get(method)  # an unknown method or setting fails before any work
    looks = check_looks(looks)
    check_options(method, {k: v for k, v in {**options, "uncertainty": uncertainty}.items() if v is not None})
    for name, value, low in (("tile", tile, 1), ("overlap", overlap, 0)):
        if value is not None:
            check_count(name, value, low)
    arr, was_numpy = _as_dataarray(data)
    if "y" not in arr.dims or "x" not in arr.dims:
        raise InputError(f"the DataArray needs 'y' and 'x' dims; it has {arr.dims}")
    band_dims = [d for d in arr.dims if d not in ("y", "x")]
    if len(band_dims) > 1:
        raise InputError(f"at most one band dimension is supported; got {band_dims}")
    bands = [arr] if not band_dims else [arr.isel({band_dims[0]: i}) for i in range(arr.sizes[band_dims[0]])]
    results = []
    for b in bands:  # units from the first band, as for files; looks and scene scale per band
        results.append(
            _despeckle_band(b, method, looks, units, uncertainty, seed, tile, overlap, window, options)
        )
        units = results[0][3]
    means = [r[0] for r in results]
    mean = means[0] if not band_dims else xr.concat(means, dim=arr[band_dims[0]])
    mean = mean.transpose(*arr.dims)
    # the units travel with the result, so despeckling it again (or writing it) never asks
    mean.attrs = {
        **arr.attrs,
        "geodiff_method": method,
        "geodiff_looks": results[0][2],
        "geodiff_units": results[0][3],
    }
    if method == "sar-dps":
        mean.attrs["geodiff_estimator"] = options.get("estimator") or "posterior-mean"
    mean.name = arr.name
    if not uncertainty:
        return mean.values if was_numpy else mean
    stds = [r[1] for r in results]
    std = (stds[0] if not band_dims else xr.concat(stds, dim=arr[band_dims[0]])).transpose(*arr.dims)
    if was_numpy:
        return mean.values, std.values
    return xr.Dataset({"despeckled": mean, "uncertainty": std})


def _despeckle_band(band, method, looks, units, uncertainty, seed, tile, overlap, window, options):  # noqa: ANN001, ANN202, PLR0913
    """One 2-D band -> (lazy mean, lazy std or None, looks, units)."""
    from geodiff.apps.despeckle.methods import build, get
    from geodiff.apps.facts import array_band_facts
    from tiling.plan import TileSpec
    from tiling.xarray_adapter import map_overlap, map_tiles, resolve_nodata

    m = get(method)
    facts = array_band_facts(
        band, units=units, looks=looks, nodata=resolve_nodata(band), attrs=dict(band.attrs)
    )
    if uncertainty:
        options = {**options, "uncertainty": True}
    fn = build(
        method, looks=facts.looks, units=facts.units, window=window, sample=(facts.intensity, facts.valid),
        **options,
    )  # fmt: skip
    if m.kind == "array":
        return map_overlap(band, fn, m.halo(window)), None, facts.looks, facts.units
    from geodiff.apps.despeckle.scene import tile_plan_args

    stacked = band.expand_dims("_out")
    # the file path's tile plan (a small scene: one tile just covering it), so both give the same bits
    spec = TileSpec(**tile_plan_args(m.kind, tile, overlap, *band.shape[-2:]))
    res = map_tiles(stacked, fn, spec, seed=seed, out_channels=fn.outputs)
    mean = res.isel(_out=0, drop=True)
    std = res.isel(_out=1, drop=True) if uncertainty else None
    return mean, std, facts.looks, facts.units


def fuse(
    optical: Any,
    sar: Any,
    out: str | os.PathLike | None = None,
    config: FusionConfig | None = None,
    *,
    overwrite: bool = False,
    **options: Any,
):
    """Fuse an optical image with a SAR image: DPS with the L1/TV fusion guidance (the review's fusion
    eq. 25-26, started from the noised optical/SAR average at ``t0``: come-closer-diffuse-faster, Chung
    et al. 2022) or a classical baseline (``method="average"|"wavelet"|"pca"|"laplacian"``).

    Args:
        optical, sar: two paths (the SAR band is warped onto the optical grid; a COG on the optical grid
            is written to ``out`` and a summary dict comes back); or numpy arrays on one grid, optical
            (C, H, W) / (H, W) in linear units (DN or reflectance, NaN = missing) and SAR (H, W) in
            ``sar_units`` (fused optical bands back: optical shape, float64, optical units); or two
            DataArrays on one grid (a lazy float64 DataArray on the optical grid back).
        config: a :class:`geodiff.apps.fuse.FusionConfig` (method, weights or the auto rule's
            intensity_weight / gradient_weight, steps, t0, start, samples, uncertainty, prox_iters, prior,
            colour, tile, overlap, seed, device, despeckle_sar (default "lee"), looks); ``options``
            override single fields, and also take ``sar_units``, ``rgb``, ``optical_nodata`` (arrays) or
            ``sar_band``, ``progress`` (files). ``uncertainty=True`` (DPS, samples >= 2): arrays give
            (fused bands, posterior std of the fused luminance (H, W)); files get one more band.

    Raises:
        InvalidSettingError / UnknownMethodError (ValueError): bad settings, before any work.
        GridMismatchError (ValueError): arrays not on one grid; SwappedInputsError, NoValidPixelsError.
        tiling's RasterNotFoundError, OutputExistsError ... (FileNotFoundError, FileExistsError): paths.
    """
    if isinstance(optical, (str, os.PathLike)) or isinstance(sar, (str, os.PathLike)):
        from geodiff.apps.fuse.scene import fuse_scene

        if out is None:
            raise InvalidSettingError("fusing files needs out=... (the output GeoTIFF path)")
        return fuse_scene(optical, sar, out, config, overwrite=overwrite, **options)
    from geodiff.apps.fuse.arrays import fuse_arrays

    if isinstance(optical, xr.DataArray) and isinstance(sar, xr.DataArray):
        if options.get("uncertainty") or getattr(config, "uncertainty", False):
            raise InvalidSettingError(
                "uncertainty=True is not offered on DataArrays; pass numpy arrays (fused, std come back) "
                "or file paths (a posterior-std band is written)"
            )
        import dask
        import dask.array as da

        if optical.sizes["y"] != sar.sizes["y"] or optical.sizes["x"] != sar.sizes["x"]:
            raise GridMismatchError(
                f"optical {optical.sizes['y']}x{optical.sizes['x']} and SAR "
                f"{sar.sizes['y']}x{sar.sizes['x']} are not on the same grid; use file paths (the SAR is "
                "then warped) or reproject first"
            )
        delayed = dask.delayed(fuse_arrays, pure=True)(optical.data, sar.data, config, **options)
        lazy = da.from_delayed(delayed, shape=optical.shape, dtype=np.float64)
        res = xr.DataArray(lazy, dims=optical.dims, coords=optical.coords, attrs=dict(optical.attrs))
        res.name = "fused"
        return res
    return fuse_arrays(np.asarray(optical), np.asarray(sar), config, **options)


def batch(
    inputs: str | os.PathLike | list[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    job: str = "despeckle",
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    name: str = "{stem}.tif",
    overwrite: bool = False,
    force: bool = False,
    **options: Any,
) -> list[dict]:
    """Despeckle (``job="despeckle"``) or fuse (``job="fuse"``) many scenes into ``out_dir``, resumably;
    the Python face of ``geodiff batch`` (:func:`geodiff.apps.batch.run_batch`).

    Args:
        inputs: paths, globs, folders or .txt/.csv lists (fuse: "optical,sar" pairs), one or a list.
        out_dir: output folder; one COG per scene named by ``name`` ({stem}, {name}, {index}) and the
            run manifest ``geodiff-batch.jsonl`` (a rerun skips scenes done with the same input and
            options).
        scheduler, workers, client: where blocks run: an existing dask cluster (address or scheduler
            file; default ``DASK_SCHEDULER_ADDRESS`` / the dask config), a LocalCluster of ``workers``,
            a ``distributed.Client``; in-process without any.
        overwrite: replace outputs the manifest did not write; force: recompute up-to-date scenes.
        options: the job's options for every scene (those of :func:`despeckle` on paths, e.g.
            ``method="lee"``; fuse: :class:`~geodiff.apps.fuse.config.FusionConfig` fields).

    Returns:
        One record (dict) per scene: scene, inputs, output, status ("done", "skipped", "failed"),
        error, seconds, output_sha256, qa ...; ``pandas.DataFrame(records)`` makes a table of it.

    Raises:
        InvalidSettingError, UnknownMethodError (ValueError): bad inputs or options, before any scene.
        A failing scene does not raise: its record has status "failed" and the error.
    """
    from geodiff.apps.batch import run_batch

    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    return run_batch(
        items, out_dir, job, scheduler=scheduler, workers=workers, client=client, name=name,
        overwrite=overwrite, force=force, **options,
    )  # fmt: skip
