"""Optical-SAR fusion of whole scenes: decode, align, (despeckle), fuse the luminance, restore colour.

Two entry points share one pipeline: :func:`fuse_arrays` on numpy arrays that already share a grid
(the Python API) and :func:`fuse_scene` on two raster files (the CLI), which adds reading, the
footprint check, warping the SAR onto the optical grid and an atomic write that keeps the optical
georeferencing, nodata, band descriptions and tags.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window, from_bounds

from geodiff.fusion.align import Grid, align_to_grid, check_overlap, footprint_in
from geodiff.fusion.baselines import BASELINES
from geodiff.fusion.colour import luminance, optical_to_float, restore_colour, rgb_band_indices
from geodiff.fusion.inputs import robust_unit, sar_to_intensity

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_WEIGHTS",
    "FUSION_METHODS",
    "FusionResult",
    "ScenePair",
    "fuse_arrays",
    "fuse_scene",
    "load_pair",
    "resolve_device",
]

FUSION_METHODS = ("dps", *BASELINES)
DEFAULT_WEIGHTS = (1.0, 1.0, 1.0, 1.0)  # a, b, c, d of the L1/TV fusion objective
DEFAULT_STEPS = 20
DEFAULT_T0 = 500  # start from the noised average of optical and SAR at t0 (None: from pure noise)


@dataclass
class FusionResult:
    """A fused scene and what it was made from (all arrays on the optical grid)."""

    bands: np.ndarray  # (C, H, W) fused optical bands in the optical units; NaN at optical nodata
    fused: np.ndarray  # (H, W) fused luminance F in [0, 1]; NaN where optical or SAR is missing
    optical: np.ndarray  # (H, W) optical luminance A in [0, 1]; NaN at optical nodata
    sar: np.ndarray  # (H, W) SAR amplitude B in [0, 1] (despeckled when asked); NaN where missing
    valid: np.ndarray  # (H, W) both inputs valid: the pixels that were fused
    info: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' (or None) picks CUDA when present, else the CPU; an unavailable CUDA is a clear error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use --device cpu or auto")
    return dev


@functools.lru_cache(maxsize=4)
def _load_prior(name: str) -> Any:
    from geodiff import priors

    load = getattr(priors, "load", None)
    if load is None:
        raise RuntimeError(
            f"cannot load the prior {name!r}: this geodiff has no trained priors yet (geodiff.priors.load "
            "is missing); pass a DiffusionPrior object or use a baseline method "
            "(method='average'|'wavelet'|'pca'|'laplacian')"
        )
    return load(name)


def _prior(prior: Any, device: torch.device) -> Any:
    obj = _load_prior(prior) if isinstance(prior, str) else prior
    domain = getattr(obj, "domain", "amplitude")
    if domain != "amplitude":
        raise ValueError(
            f"the fusion sampler needs a prior in the 'amplitude' domain (z = 2a - 1); "
            f"{prior!r} is in {domain!r}"
        )
    return obj.to(device)


def despeckle_methods() -> list[str]:
    """Names accepted by ``despeckle_sar``: the despeckle app's registry (classical filters, SAR-DPS)."""
    from geodiff.apps.despeckle import METHODS

    return sorted(METHODS)


def _despeckle(
    intensity: np.ndarray, valid: np.ndarray, method: str, looks: float | None, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Despeckle linear SAR intensity with a method of the despeckle app's registry, tiled."""
    from geodiff.apps.despeckle import METHODS
    from tiling.plan import TilePlan
    from tiling.raster_io import ArraySource
    from tiling.runner import run_array

    if method not in METHODS:
        raise ValueError(
            f"unknown SAR despeckling method {method!r}; use one of {', '.join(sorted(METHODS))}"
        )
    if looks is None:
        from sensors.looks import estimate_looks

        try:
            looks = float(estimate_looks(np.where(valid, intensity, 0), valid & (intensity > 0)).looks)
        except ValueError:
            looks = 1.0
            log.warning("could not estimate the SAR looks; despeckling with L = 1")
    m = METHODS[method]
    window = 7
    fn = m.make(looks=looks, window=window, units="intensity")
    h, w = intensity.shape
    if m.kind == "array":
        plan = TilePlan(h, w, tile=1024, overlap=0, halo=m.halo(window), block_tiles=1, seed=seed)
    else:
        plan = TilePlan(h, w, tile=256, overlap=32, halo=m.halo(window), block_tiles=4, seed=seed)
    source = ArraySource(np.where(valid, intensity, np.nan)[None].astype(np.float32))
    out = run_array(source, plan, fn, kind=m.kind, channels=1)[0]
    return np.where(valid, out, np.nan), {"method": method, "looks": round(float(looks), 3)}


def _tile_size(height: int, width: int, tile: int, stride: int) -> int:
    need = stride * math.ceil(max(height, width) / stride)
    return max(stride, min(stride * (tile // stride), need))


def _fuse_dps(
    a: np.ndarray,
    b: np.ndarray,
    *,
    prior: Any,
    weights: tuple[float, float, float, float],
    steps: int,
    t0: int | None,
    device: torch.device,
    seed: int,
    tile: int,
    overlap: int,
    progress: Any = None,
) -> tuple[np.ndarray, dict]:
    """Fused luminance of two [0, 1] images (NaN = missing) through the tiling runner."""
    from geodiff.solvers import fuse_dps
    from tiling.plan import TilePlan
    from tiling.raster_io import ArraySource
    from tiling.runner import run_array

    model = _prior(prior, device)
    h, w = a.shape
    t = _tile_size(h, w, tile, int(model.stride))
    ov = min(overlap, t // 4) if t < max(h, w) else 0
    plan = TilePlan(h, w, tile=t, overlap=ov, halo=0, block_tiles=4, seed=seed)
    wa, wb, wc, wd = weights
    nfe: list[int] = []

    def fn(tiles: torch.Tensor, ctx: Any) -> torch.Tensor:
        o, r = tiles[:, :1].float(), tiles[:, 1:2].float()
        res = fuse_dps(
            o, r, model, a=wa, b=wb, c=wc, d=wd, steps=steps, t0=t0, seeds=ctx.seeds, blend=ctx.blend
        )
        nfe.append(res.nfe)
        return res.mean

    from tiling.progress import Progress

    source = ArraySource(np.stack([a, b]).astype(np.float32))
    own = progress is True
    reporter = Progress(len(list(plan.blocks())), desc="fuse dps") if own else (progress or None)
    try:
        out = run_array(source, plan, fn, kind="tiles", channels=1, device=device, progress=reporter)
    finally:
        if own:
            reporter.close()
    info = {
        "sampler": "geodiff.solvers.fuse_dps",
        "tile": t,
        "overlap": ov,
        "tiles": plan.n_tiles,
        "nfe_per_tile": max(nfe) if nfe else 0,
        "t0": t0,
    }
    return out[0].astype(np.float64), info


def fuse_arrays(
    optical: np.ndarray,
    sar: np.ndarray,
    *,
    sar_units: str = "intensity",
    rgb: tuple[int, int, int] | str | None = "auto",
    optical_nodata: float | None = None,
    method: str = "dps",
    weights: tuple[float, float, float, float] = DEFAULT_WEIGHTS,
    steps: int = DEFAULT_STEPS,
    t0: int | None = DEFAULT_T0,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    prior: Any = "gray",
    despeckle_sar: str | None = None,
    looks: float | None = None,
    colour: str = "ratio",
    tile: int = 256,
    overlap: int = 32,
    return_details: bool = False,
    progress: Any = None,
) -> np.ndarray | FusionResult:
    """Fuse an optical image with a SAR image on the same grid.

    optical: (C, H, W) or (H, W), linear units (DN or reflectance; any positive scale), NaN or
    ``optical_nodata`` for missing pixels. sar: (H, W) (or (1, H, W)) in ``sar_units``
    (intensity, amplitude, db or complex). Returns the fused optical bands (same shape, float64,
    optical units), or a :class:`FusionResult` with ``return_details=True``.
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {method!r}; use one of {', '.join(FUSION_METHODS)}")
    if len(weights) != 4 or not all(math.isfinite(float(x)) and float(x) >= 0 for x in weights):
        raise ValueError(f"weights must be four finite numbers >= 0 (a,b,c,d); got {weights!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (got {steps!r})")
    bands, opt_valid = optical_to_float(optical, optical_nodata)
    s = np.asarray(sar)
    if s.ndim == 3 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 2:
        raise ValueError(
            f"SAR must be one band (H, W); got shape {np.shape(sar)} (pick one polarisation, e.g. VV)"
        )
    if s.shape != bands.shape[1:]:
        raise ValueError(
            f"optical {bands.shape[1:]} and SAR {s.shape} are not on one grid; resample the SAR onto the "
            "optical grid first (geodiff.fusion.align.align_to_grid, or fuse_scene on files)"
        )
    t_start = time.perf_counter()
    intensity = sar_to_intensity(s, sar_units)
    sar_valid = np.isfinite(intensity)
    info: dict[str, Any] = {"method": method, "despeckle_sar": None}
    if despeckle_sar:
        intensity, info["despeckle_sar"] = _despeckle(intensity, sar_valid, despeckle_sar, looks, seed)
    valid = opt_valid & sar_valid
    if not valid.any():
        raise ValueError("optical and SAR share no valid pixel (nodata everywhere); check the inputs' nodata")

    rgb_idx = rgb_band_indices([], bands.shape[0]) if isinstance(rgb, str) else rgb
    lum = luminance(bands, rgb_idx)
    scale_a = robust_unit(lum, opt_valid)
    amp = np.sqrt(np.maximum(intensity, 0))
    scale_b = robust_unit(amp, valid)
    a_unit = np.where(opt_valid, scale_a.forward(lum), np.nan)
    b_unit = np.where(sar_valid, scale_b.forward(amp), np.nan)
    a_fill = np.where(valid, a_unit, 0.0)
    b_fill = np.where(valid, b_unit, a_fill)  # baselines see the optical where the SAR is missing

    if method == "dps":
        f_unit, run_info = _fuse_dps(
            np.where(valid, a_unit, np.nan),
            np.where(valid, b_unit, np.nan),
            prior=prior,
            weights=tuple(float(x) for x in weights),
            steps=int(steps),
            t0=t0,
            device=resolve_device(device),
            seed=seed,
            tile=tile,
            overlap=overlap,
            progress=progress,
        )
        info.update(
            run_info,
            steps=int(steps),
            weights=[float(x) for x in weights],
            device=str(resolve_device(device)),
        )
    else:
        f_unit = BASELINES[method](a_fill, b_fill)
    f_unit = np.where(valid, np.clip(f_unit, 0, 1), np.nan)

    # back to optical units; add back what the [0, 1] stretch clipped so highlights survive
    clipped = lum - scale_a.inverse(np.nan_to_num(a_unit))
    f_units = np.where(valid, scale_a.inverse(np.nan_to_num(f_unit)) + clipped, lum)
    out = restore_colour(bands, lum, f_units, method=colour)
    out = np.where(valid[None], out, bands)  # unfused where the SAR is missing; NaN where the optical is
    info.update(
        rgb_bands=list(rgb_idx) if rgb_idx is not None else None,
        colour=colour,
        fused_fraction=float(valid.sum() / max(1, opt_valid.sum())),
        seconds=round(time.perf_counter() - t_start, 3),
    )
    if np.ndim(optical) == 2:
        out = out[0]
    if not return_details:
        return out
    return FusionResult(out, f_unit, a_unit, b_unit, valid, info)


# ---- files ----------------------------------------------------------------------------------------
def _read_sar_on_grid(ds: Any, band: int, optical: Grid, profile: Any) -> tuple[np.ndarray, bool]:
    """SAR band ``band`` as linear intensity on the optical grid (read only the part under it).

    ``profile`` is the SAR's sensors.profiles.Profile: it decodes dB/amplitude/DN/complex to linear
    intensity before any resampling.
    """
    sar_grid = Grid.of(ds)
    window = Window(0, 0, ds.width, ds.height)
    if sar_grid.georeferenced and optical.georeferenced and not optical.same_as(sar_grid):
        w, s, e, n = footprint_in(optical, ds.crs).bounds
        win = from_bounds(w, s, e, n, transform=ds.transform)
        col0 = max(0, math.floor(win.col_off) - 2)
        row0 = max(0, math.floor(win.row_off) - 2)
        col1 = min(ds.width, math.ceil(win.col_off + win.width) + 2)
        row1 = min(ds.height, math.ceil(win.row_off + win.height) + 2)
        if col1 > col0 and row1 > row0:
            window = Window(col0, row0, col1 - col0, row1 - row0)
    raw = ds.read(band, window=window)
    intensity, valid = profile.decode(raw, ds.nodata)
    intensity = np.where(valid, intensity, np.nan).astype(np.float32)
    src = Grid(ds.crs, ds.window_transform(window), int(window.width), int(window.height))
    resampled = not src.same_as(optical)
    return align_to_grid(intensity, src, optical), resampled


def _check_pair(opt: Any, sar: Any, sar_band: int) -> None:
    """Catch swapped or unsuitable inputs before any work."""
    if sar.count > 4:
        raise ValueError(
            f"SAR {sar.name} has {sar.count} bands; SAR products have 1-4 polarisations (VV, VH, HH, HV). "
            "Did you swap OPTICAL and SAR? The order is: geodiff fuse OPTICAL SAR OUT"
        )
    if not 1 <= sar_band <= sar.count:
        raise ValueError(f"--sar-band {sar_band} does not exist: {sar.name} has {sar.count} band(s)")
    if np.dtype(opt.dtypes[0]).kind == "c":
        raise ValueError(f"OPTICAL {opt.name} is complex (SAR SLC?); pass the optical image first")
    if np.dtype(opt.dtypes[0]).kind == "f":
        sample = opt.read(1, out_shape=(min(opt.height, 256), min(opt.width, 256)))
        finite = sample[np.isfinite(sample)]
        if opt.nodata is not None and not np.isnan(opt.nodata):
            finite = finite[finite != opt.nodata]
        if finite.size and (finite < 0).mean() > 0.05:
            raise ValueError(
                f"OPTICAL {opt.name} has mostly negative values (SAR in dB?); the order is "
                "geodiff fuse OPTICAL SAR OUT"
            )


def _encode(profile: Any, bands: np.ndarray, dtype: str, nodata: float | None) -> np.ndarray:
    """Fused reflectance back to the optical file's convention and dtype (profile.encode), with
    valid pixels kept off the nodata value so that no fused pixel turns into a hole."""
    valid = np.isfinite(bands)
    out = profile.encode(np.nan_to_num(bands), mask=valid, nodata=nodata, dtype=dtype)
    if nodata is not None and not np.isnan(nodata) and np.dtype(dtype).kind in "iu":
        info = np.iinfo(np.dtype(dtype))
        clash = valid & (out == nodata)
        out[clash] = nodata + 1 if nodata < info.max else nodata - 1
    return out


@dataclass
class ScenePair:
    """An optical scene and one SAR band on the optical grid, decoded (reflectance, linear intensity)."""

    optical: np.ndarray  # (C, H, W) reflectance, NaN at nodata
    sar: np.ndarray  # (H, W) linear intensity on the optical grid, NaN where missing
    rgb: tuple[int, int, int] | None
    meta: Any  # tiling.raster_io.RasterMeta of the optical file
    optical_profile: Any  # sensors.profiles.Profile
    sar_profile: Any
    resampled: bool
    coverage: float


def load_pair(optical_path: str | os.PathLike, sar_path: str | os.PathLike, sar_band: int = 1) -> ScenePair:
    """Read, check, decode and align an optical/SAR pair (what fuse_scene and the benchmark fuse)."""
    from sensors.detect import detect_dataset
    from tiling.raster_io import open_raster, read_meta

    with open_raster(optical_path) as opt, open_raster(sar_path) as sar:
        _check_pair(opt, sar, sar_band)
        meta = read_meta(opt)
        grid = Grid.of(opt)
        coverage = check_overlap(grid, Grid.of(sar))
        sar_profile = detect_dataset(sar, kind="sar")
        opt_profile = detect_dataset(opt, kind="optical")
        sar_int, resampled = _read_sar_on_grid(sar, sar_band, grid, sar_profile)
        refl, opt_valid = opt_profile.decode(opt.read(), meta.nodata)
        optical = np.where(opt_valid.all(0)[None], refl, np.nan)
        rgb = rgb_band_indices(meta.descriptions, meta.count, Path(optical_path).name)
    return ScenePair(optical, sar_int, rgb, meta, opt_profile, sar_profile, resampled, coverage)


def fuse_scene(
    optical_path: str | os.PathLike,
    sar_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    despeckle_sar: str | None = None,
    a: float = 1.0,
    b: float = 1.0,
    c: float = 1.0,
    d: float = 1.0,
    steps: int = DEFAULT_STEPS,
    t0: int | None = DEFAULT_T0,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    overwrite: bool = False,
    method: str = "dps",
    prior: Any = "gray",
    sar_band: int = 1,
    looks: float | None = None,
    colour: str = "ratio",
    tile: int = 256,
    overlap: int = 32,
    progress: Any = None,
) -> dict[str, Any]:
    """Fuse the OPTICAL raster with the SAR raster and write a COG on the optical grid to ``out_path``.

    The SAR is warped onto the optical grid when CRS, resolution or extent differ; the output keeps
    the optical CRS, transform, nodata, dtype, band descriptions and tags (plus GEODIFF_FUSION),
    and appears under ``out_path`` only when complete. Returns a JSON-ready summary.
    """
    from tiling.raster_io import CogWriter, check_output_path

    started = time.perf_counter()
    check_output_path(out_path, overwrite, inputs=(optical_path, sar_path))
    pair = load_pair(optical_path, sar_path, sar_band)
    meta, opt_profile = pair.meta, pair.optical_profile
    res = fuse_arrays(
        pair.optical,
        pair.sar,
        sar_units="intensity",
        rgb=pair.rgb,
        optical_nodata=None,
        method=method,
        weights=(a, b, c, d),
        steps=steps,
        t0=t0,
        device=device,
        seed=seed,
        prior=prior,
        despeckle_sar=despeckle_sar,
        looks=looks,
        colour=colour,
        tile=tile,
        overlap=overlap,
        return_details=True,
        progress=progress,
    )
    assert isinstance(res, FusionResult)
    data = _encode(opt_profile, res.bands, meta.dtype, meta.nodata)
    summary: dict[str, Any] = {
        "optical": str(optical_path),
        "sar": str(sar_path),
        "out": str(out_path),
        "width": meta.width,
        "height": meta.height,
        "bands": meta.count,
        "sar_band": sar_band,
        "sar_profile": pair.sar_profile.name,
        "sar_units": pair.sar_profile.units,
        "optical_profile": opt_profile.name,
        "sar_resampled": pair.resampled,
        "sar_coverage": round(pair.coverage, 4),
        **res.info,
    }
    tag = {
        k: summary[k]
        for k in ("method", "steps", "weights", "despeckle_sar", "sar_resampled")
        if k in summary
    }
    out_meta = dataclasses.replace(meta, tags={**meta.tags, "GEODIFF_FUSION": str(tag)})
    with CogWriter(
        out_path, out_meta, dtype=meta.dtype, overwrite=overwrite, inputs=(optical_path, sar_path)
    ) as w:
        w.write(data, 0, 0)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
