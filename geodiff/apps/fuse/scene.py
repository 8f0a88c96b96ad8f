"""Fusion of two raster files: checks, decoding, alignment, and a block-streamed DPS path.

Why a module of its own: this is where the fusion meets files. The SAR is decoded by its
sensors profile and (when asked) despeckled in its *own* geometry, before any resampling (speckle
statistics only hold there), then warped onto the optical grid window by window. The DPS fusion
streams block by block through the tiling runner (:class:`PairSource` reads both inputs for any
window of the optical grid), so memory depends on the block size, not on the scene size; the
classical baselines (global by nature: PCA, multi-level pyramids) run on the whole scene in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.windows import Window, from_bounds

from geodiff.apps.fuse.arrays import FusionResult, despeckle_intensity, fuse_arrays, scene_share
from geodiff.apps.fuse.config import TAG, FusionConfig
from geodiff.apps.fuse.dps import dps_info, dps_plan
from geodiff.apps.fuse.methods import build, get
from geodiff.apps.fuse.scales import GapFill, UnitScale, fusion_scales
from geodiff.device import resolve_device
from geodiff.errors import InputError, InvalidSettingError, NoValidPixelsError, SwappedInputsError
from sensors.colour import fused_bands, luminance, rgb_band_indices
from sensors.fusion_clouds import SCL_CLOUD_CLASSES, cloud_mask, parse_cloud_classes
from tiling.align import Grid, align_to_grid, check_overlap, footprint_in
from tiling.geometry import PixelWindow

log = logging.getLogger(__name__)

__all__ = ["PairSource", "ScenePair", "fuse_scene", "load_pair"]

_TILE_CONTEXT = 32  # context around a SAR window for tile-based despecklers (sar-dps)
_IN_MEMORY_PX = 1_048_576  # scenes up to 1024^2: the [0, 1] stretches come from every pixel


# ---- checks -------------------------------------------------------------------------------------
def check_pair(opt: Any, sar: Any, sar_band: int) -> None:
    """Catch swapped or unsuitable inputs (open rasterio datasets) before any work.

    Raises:
        SwappedInputsError: a SAR with more than 4 bands, a complex or mostly negative optical image.
        InvalidSettingError: ``sar_band`` does not exist.
    """
    if sar.count > 4:
        raise SwappedInputsError(
            f"SAR {sar.name} has {sar.count} bands; SAR products have 1-4 polarisations (VV, VH, HH, HV). "
            "Did you swap OPTICAL and SAR? The order is: geodiff fuse OPTICAL SAR OUT"
        )
    if not 1 <= sar_band <= sar.count:
        raise InvalidSettingError(f"--sar-band {sar_band} does not exist: {sar.name} has {sar.count} band(s)")
    if np.dtype(opt.dtypes[0]).kind == "c":
        raise SwappedInputsError(f"OPTICAL {opt.name} is complex (SAR SLC?); pass the optical image first")
    if np.dtype(opt.dtypes[0]).kind == "f":
        sample = opt.read(1, out_shape=(min(opt.height, 256), min(opt.width, 256)))
        finite = sample[np.isfinite(sample)]
        if opt.nodata is not None and not np.isnan(opt.nodata):
            finite = finite[finite != opt.nodata]
        if finite.size and (finite < 0).mean() > 0.05:
            raise SwappedInputsError(
                f"OPTICAL {opt.name} has mostly negative values (SAR in dB?); the order is "
                "geodiff fuse OPTICAL SAR OUT"
            )


# ---- SAR ------------------------------------------------------------------------------------------
def _despeckle_margin(method: str | None) -> int:
    if not method:
        return 0
    from geodiff.apps.despeckle.methods import DEFAULT_WINDOW, get

    m = get(method)
    return m.halo(DEFAULT_WINDOW) if m.kind == "array" else max(_TILE_CONTEXT, m.halo(DEFAULT_WINDOW))


def estimate_sar_looks(ds: Any, band: int, profile: Any, size: int = 1024) -> float:
    """Looks of the SAR in its own geometry (what the despeckler needs), from a central window of at
    most ``size`` px decoded by ``profile``; L = 1 with a warning where they cannot be estimated."""
    from geodiff.apps.facts import array_band_facts
    from tiling.sampling import read_central

    intensity, valid = profile.decode(np.ma.getdata(read_central(ds, band, size)), ds.nodata)
    return array_band_facts(np.where(valid, intensity, np.nan), units="intensity").looks


def _window_under(ds: Any, grid: Grid, margin: int) -> Window | None:
    """The window of the open dataset ``ds`` under ``grid`` plus ``margin`` px (the whole raster when
    either has no georeferencing), or None where they do not overlap."""
    if not (Grid.of(ds).georeferenced and grid.georeferenced):
        return Window(0, 0, ds.width, ds.height)
    w, s, e, n = footprint_in(grid, ds.crs).bounds
    win = from_bounds(w, s, e, n, transform=ds.transform)
    col0 = max(0, math.floor(win.col_off + 1e-6) - margin)
    row0 = max(0, math.floor(win.row_off + 1e-6) - margin)
    col1 = min(ds.width, math.ceil(win.col_off + win.width - 1e-6) + margin)
    row1 = min(ds.height, math.ceil(win.row_off + win.height - 1e-6) + margin)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_sar_on_grid(
    ds: Any, band: int, grid: Grid, profile: Any, config: FusionConfig | None = None
) -> np.ndarray:
    """SAR band ``band`` of the open dataset ``ds`` as linear intensity (float32) on ``grid`` (NaN where
    missing), reading only the SAR window under it (plus a margin for bilinear and the despeckler's
    halo). With ``config.despeckle_sar`` the intensity is despeckled (``config.looks``) in the SAR's own
    geometry before the warp: speckle statistics only hold there."""
    method = config.despeckle_sar if config is not None else None
    window = _window_under(ds, grid, 2 + _despeckle_margin(method))
    if window is None:
        return np.full(grid.shape, np.nan, np.float32)
    intensity, valid = profile.decode(ds.read(band, window=window), ds.nodata)
    intensity = np.where(valid, intensity, np.nan).astype(np.float32)
    if method and valid.any():
        intensity, _ = despeckle_intensity(intensity, valid, config)
    src = Grid(ds.crs, ds.window_transform(window), int(window.width), int(window.height))
    return align_to_grid(intensity, src, grid)


def read_clouds_on_grid(ds: Any, grid: Grid, classes: tuple[int, ...]) -> np.ndarray:  # noqa: ANN401
    """Cloud mask (H, W) bool on ``grid`` from band 1 of the open class raster ``ds`` (a Sentinel-2 SCL
    at 20 m, or a 0/1 mask): the window under the grid, warped by nearest neighbour (class codes are
    never interpolated), True where the code is one of ``classes`` (:func:`sensors.fusion_clouds.cloud_mask`);
    False outside the raster and at its nodata."""
    from rasterio.enums import Resampling

    window = _window_under(ds, grid, 1)
    if window is None:
        return np.zeros(grid.shape, bool)
    codes = ds.read(1, window=window).astype(np.float32)
    if ds.nodata is not None and not np.isnan(ds.nodata):
        codes[codes == ds.nodata] = np.nan
    codes[codes < 0] = np.nan  # no class code is negative
    src = Grid(ds.crs, ds.window_transform(window), int(window.width), int(window.height))
    return cloud_mask(align_to_grid(codes, src, grid, resampling=Resampling.nearest), classes)


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


#: Description of the band ``--uncertainty`` adds after the fused bands.
UNCERTAINTY_BAND = "fused luminance posterior std"
#: Description of the band ``--fill-gaps`` adds last.
GAP_BAND = "source: 2 filled from SAR (optical missing), 1 optical or fused, 0 none"


def _fill_gaps(out: np.ndarray, b_unit: np.ndarray, fit: GapFill, meta: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN401
    """Bands ``out`` (C, h, w, NaN where the optical is missing) with the SAR-driven estimate where the
    SAR ``b_unit`` (h, w, [0, 1], NaN = missing) is valid, and the source band (h, w) in the output
    dtype: 2 filled from SAR, 1 optical or fused, nodata (else 0) where neither."""
    opt_valid = np.isfinite(out).all(0)
    gap = ~opt_valid & np.isfinite(b_unit)
    filled = np.where(gap[None], fit.estimate(b_unit), out)
    fill = meta.nodata if meta.nodata is not None and not np.isnan(meta.nodata) else 0
    source = np.where(gap, 2, np.where(opt_valid, 1, fill)).astype(np.dtype(meta.dtype))
    return filled, source


def _out_bands(meta: Any, config: FusionConfig) -> tuple[int, list[str] | None]:  # noqa: ANN401
    """Output band count and names: the optical bands, then the std band (``uncertainty``), then the
    source band (``fill_gaps``); names None (the input's) without extra bands."""
    extra = [UNCERTAINTY_BAND] * config.uncertainty + [GAP_BAND] * config.fill_gaps
    if not extra:
        return meta.count, None
    names = [d or f"band {i + 1}" for i, d in enumerate(meta.descriptions or ("",) * meta.count)]
    return meta.count + len(extra), [*names, *extra]


def _encode_std(profile: Any, std: np.ndarray, meta: Any) -> np.ndarray:
    """A posterior std (H, W) in reflectance units -> the optical file's dtype and scale: the encoding
    of (0.5 + std) minus that of 0.5, so the convention's scale applies and its offset cancels (integer
    files: whole DN); NaN -> nodata (or 0)."""
    valid = np.isfinite(std)
    base = np.full((1, *std.shape), 0.5)
    hi = profile.encode(base + np.nan_to_num(std)[None], dtype=meta.dtype).astype(np.float64)
    lo = profile.encode(base, dtype=meta.dtype).astype(np.float64)
    out = hi[0] - lo[0]
    dt = np.dtype(meta.dtype)
    fill = meta.nodata if meta.nodata is not None and not np.isnan(meta.nodata) else 0
    if dt.kind == "f":
        fill = meta.nodata if meta.nodata is not None else np.nan
    return np.where(valid, out, fill).astype(dt)


# ---- whole pair in memory -----------------------------------------------------------------------
@dataclass
class ScenePair:
    """An optical scene and one SAR band on the optical grid, decoded (reflectance, linear intensity)."""

    optical: np.ndarray  # (C, H, W) reflectance, NaN at nodata
    sar: np.ndarray  # (H, W) linear intensity on the optical grid (despeckled when asked), NaN = missing
    rgb: tuple[int, int, int] | None
    meta: Any  # tiling.raster_io.RasterMeta of the optical file
    optical_profile: Any  # sensors.profiles.Profile
    sar_profile: Any
    resampled: bool
    coverage: float
    despeckle_sar: dict | None = None


@dataclass
class _Opened:
    """What the checks found out about a pair; ``config`` has the SAR looks filled in when it despeckles."""

    meta: Any
    grid: Grid
    sar_grid: Grid
    coverage: float
    optical_profile: Any
    sar_profile: Any
    rgb: tuple[int, int, int] | None
    config: FusionConfig
    clouds: str | None = None  # class raster (S2 SCL or a 0/1 mask) whose ``cloud_classes`` mark clouds
    cloud_classes: tuple[int, ...] = SCL_CLOUD_CLASSES

    def cloud_mask(self, ds: Any, grid: Grid) -> np.ndarray | None:  # noqa: ANN401
        """Clouds (H, W) on ``grid`` from the open class raster ``ds``, or None without ``clouds``."""
        return None if self.clouds is None else read_clouds_on_grid(ds, grid, self.cloud_classes)

    @property
    def despeckle(self) -> dict | None:
        """{"method", "looks"} of the SAR despeckling (for summaries), or None without one."""
        c = self.config
        return {"method": c.despeckle_sar, "looks": round(c.looks, 3)} if c.despeckle_sar else None


def _check_clouds(clouds: Any, grid: Grid) -> str:  # noqa: ANN401
    """The cloud raster's path after checking that it opens, has one band or more of class codes and
    covers the optical grid. Raises InputError (and tiling's RasterNotFoundError ...) naming the fix."""
    from tiling.raster_io import open_raster

    with open_raster(clouds) as ds:
        if np.dtype(ds.dtypes[0]).kind == "c":
            raise InputError(
                f"--clouds {clouds} is complex; pass the scene classification (SCL) or a 0/1 mask"
            )
        try:
            check_overlap(grid, Grid.of(ds))
        except ValueError as exc:
            raise InputError(
                f"--clouds {clouds} cannot be placed on the optical grid ({exc}); pass the SCL or mask of "
                "the same scene, georeferenced"
            ) from exc
    return str(clouds)


def _open_pair(
    opt: Any, sar: Any, optical_path: Any, sar_band: int, config: FusionConfig, clouds: Any = None,
    cloud_classes: Any = None,
) -> _Opened:  # fmt: skip
    from geodiff.apps.facts import detect_raster
    from tiling.raster_io import read_meta

    check_pair(opt, sar, sar_band)
    meta = read_meta(opt)
    grid, sar_grid = Grid.of(opt), Grid.of(sar)
    coverage = check_overlap(grid, sar_grid)
    sar_profile = detect_raster(sar, kind="sar", units=config.sar_units, band=sar_band)
    opt_profile = detect_raster(opt, kind="optical")
    if config.despeckle_sar and config.looks is None:
        config = dataclasses.replace(config, looks=estimate_sar_looks(sar, sar_band, sar_profile))
    rgb = rgb_band_indices(meta.descriptions, meta.count, Path(optical_path).name)
    classes = parse_cloud_classes(cloud_classes)
    cloud_path = _check_clouds(clouds, grid) if clouds is not None else None
    return _Opened(meta, grid, sar_grid, coverage, opt_profile, sar_profile, rgb, config, cloud_path, classes)


def load_pair(
    optical_path: str | os.PathLike,
    sar_path: str | os.PathLike,
    config: FusionConfig | None = None,
    *,
    sar_band: int = 1,
    clouds: str | os.PathLike | None = None,
    cloud_classes: Any = None,
    **settings: Any,
) -> ScenePair:
    """Read, check, decode, (despeckle, by ``config.despeckle_sar``) and align a whole optical/SAR pair
    into memory; optical pixels that ``clouds`` marks (see :func:`fuse_scene`) are missing (NaN);
    ``settings`` override fields of ``config``. Raises as :func:`fuse_scene`."""
    from tiling.raster_io import open_raster

    config = FusionConfig.of(config, **settings)
    with open_raster(optical_path) as opt, open_raster(sar_path) as sar:
        o = _open_pair(opt, sar, optical_path, sar_band, config, clouds, cloud_classes)
        sar_int = read_sar_on_grid(sar, sar_band, o.grid, o.sar_profile, o.config)
        refl, opt_valid = o.optical_profile.decode(opt.read(), o.meta.nodata)
        opt_valid = opt_valid.all(0)
        if o.clouds is not None:
            with open_raster(o.clouds) as cds:
                opt_valid &= ~o.cloud_mask(cds, o.grid)
        optical = np.where(opt_valid[None], refl, np.nan)
    return ScenePair(
        optical,
        sar_int,
        o.rgb,
        o.meta,
        o.optical_profile,
        o.sar_profile,
        not o.sar_grid.same_as(o.grid),
        o.coverage,
        o.despeckle,
    )


# ---- block-streamed pair ------------------------------------------------------------------------
class PairSource:
    """tiling Source over the optical grid: channels [A, B] in [0, 1] for any window (reflect-padded).

    A is the optical luminance, B the SAR amplitude (decoded, despeckled, warped for just that
    window); both are NaN where either input is missing. Holds paths only, so it pickles to dask
    workers; datasets open lazily in each process.
    """

    def __init__(
        self, optical_path: str | os.PathLike, sar_path: str | os.PathLike, sar_band: int, opened: _Opened
    ) -> None:
        self.optical_path, self.sar_path, self.sar_band = str(optical_path), str(sar_path), sar_band
        self.o = opened
        self.height, self.width = opened.grid.shape
        self.scale_a: UnitScale | None = None
        self.scale_b: UnitScale | None = None
        self.share: tuple[float, float] | None = None
        self.gap_fit: GapFill | None = None
        self._opt: Any = None
        self._sar: Any = None
        self._clouds: Any = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_opt"] = state["_sar"] = state["_clouds"] = None
        return state

    def _datasets(self) -> tuple[Any, Any]:
        from tiling.raster_io import open_raster

        if self._opt is None or self._opt.closed:
            self._opt = open_raster(self.optical_path)
        if self._sar is None or self._sar.closed:
            self._sar = open_raster(self.sar_path)
        if self.o.clouds is not None and (self._clouds is None or self._clouds.closed):
            self._clouds = open_raster(self.o.clouds)
        return self._opt, self._sar

    def close(self) -> None:
        """Close the datasets this process opened (they reopen on the next read)."""
        for ds in (self._opt, self._sar, self._clouds):
            if ds is not None:
                ds.close()
        self._opt = self._sar = self._clouds = None

    def read_window(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Inside the raster: optical reflectance (C, h, w; NaN at nodata and clouds), luminance, SAR
        amplitude, both-valid mask."""
        from tiling.raster_io import read_window

        opt, sar = self._datasets()
        refl, v = self.o.optical_profile.decode(read_window(opt, window), self.o.meta.nodata)
        opt_valid = v.all(0)
        t = self.o.grid.transform @ Affine.translation(window.col, window.row)
        block = Grid(self.o.grid.crs, t, window.width, window.height)
        if self._clouds is not None:
            opt_valid &= ~self.o.cloud_mask(self._clouds, block)
        bands = np.where(opt_valid[None], refl.astype(np.float64), np.nan)
        lum = luminance(bands, self.o.rgb)
        intensity = read_sar_on_grid(sar, self.sar_band, block, self.o.sar_profile, self.o.config)
        amp = np.sqrt(np.maximum(intensity.astype(np.float64), 0))
        return bands, lum, amp, opt_valid & np.isfinite(amp)

    def fit_scales(self) -> tuple[UnitScale, UnitScale]:
        """The [0, 1] stretches (A, B) from every pixel (scenes up to 1024^2) or from 16 spread windows,
        and the PCA shares of the stretched A and B (``self.share``) from the same pixels; call before
        :meth:`read`. Raises NoValidPixelsError where optical and SAR share no pixel."""
        if self.height * self.width <= _IN_MEMORY_PX:
            windows = [PixelWindow(0, 0, self.height, self.width)]
        else:
            side = 512
            rows = np.linspace(0, max(0, self.height - side), 4).astype(int)
            cols = np.linspace(0, max(0, self.width - side), 4).astype(int)
            h, w = min(side, self.height), min(side, self.width)
            windows = [PixelWindow(r, c, h, w) for r in rows for c in cols]
        lums, amps, ovs, vs, bs = [], [], [], [], []
        for window in windows:
            bands, lum, amp, valid = self.read_window(window)
            if self.o.config.fill_gaps:
                bs.append(bands.reshape(bands.shape[0], -1))
            lums.append(lum.ravel())
            amps.append(amp.ravel())
            ovs.append(np.isfinite(bands).all(0).ravel())
            vs.append(valid.ravel())
        valid = np.concatenate(vs)
        if not valid.any():
            raise NoValidPixelsError(
                "optical and SAR share no valid pixel (nodata everywhere); check the inputs' nodata"
            )
        lum, amp = np.concatenate(lums), np.concatenate(amps)
        del lums, amps  # the pieces: the PCA shares below hold a few copies of the sample at once
        self.scale_a, self.scale_b = fusion_scales(lum, amp, np.concatenate(ovs), valid)
        self.share = scene_share(self.scale_a.forward(lum), self.scale_b.forward(amp), valid)
        if bs:
            b_unit = self.scale_b.forward(amp)
            self.gap_fit = GapFill.fit(np.concatenate(bs, 1)[:, valid], b_unit[valid])
        return self.scale_a, self.scale_b

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """tiling Source read: channels [A, B] (2, h, w) float32 of ``window`` (reflect-padded), valid."""
        from tiling.geometry import reflect_window

        assert self.scale_a is not None and self.scale_b is not None, "call fit_scales() first"
        plan = reflect_window(window, self.height, self.width)
        _, lum, amp, valid = self.read_window(plan.bounds)
        a = plan.take(np.where(valid, self.scale_a.forward(lum), np.nan))
        b = plan.take(np.where(valid, self.scale_b.forward(amp), np.nan))
        data = np.stack([a, b]).astype(np.float32)
        return data, np.isfinite(data)


def _stream_dps(
    optical_path: Any, sar_path: Any, out_path: Any, opened: _Opened, *, sar_band: int, overwrite: bool,
    out_meta: Any, progress: Any,
) -> dict[str, Any]:  # fmt: skip
    """DPS fusion block by block: each block's fused luminance gets its colour back and is written
    (with ``config.uncertainty`` a last band holds the posterior std of the fused luminance, in the
    optical units and dtype)."""
    from tiling.cog import CogWriter
    from tiling.progress import reporter
    from tiling.runner import block_function, run_blocks

    config, meta = opened.config, opened.meta
    source = PairSource(optical_path, sar_path, sar_band, opened)
    scale_a, _ = source.fit_scales()
    fn = build(config)
    fn.share = source.share
    plan = dps_plan(
        source.height, source.width, stride=fn.model.stride, tile=config.tile, overlap=config.overlap,
        seed=config.seed,
    )  # fmt: skip
    task = block_function(source, plan, fn, "tiles", device=resolve_device(config.device))
    counts = {"valid": 0, "optical": 0}
    blocks = list(plan.blocks())
    count, descriptions = _out_bands(meta, config)
    try:
        with (
            reporter(progress, len(blocks), "fuse dps") as rep,
            CogWriter(
                out_path, out_meta, dtype=meta.dtype, overwrite=overwrite, inputs=(optical_path, sar_path),
                count=count, descriptions=descriptions,
            ) as w,
        ):  # fmt: skip

            def sink(res: Any) -> None:  # noqa: ANN401
                bands, lum, amp, valid = source.read_window(res.block.core)
                f = res.data[0].astype(np.float64)
                out = fused_bands(bands, lum, f, scale_a, valid, method=config.colour)
                extra = []
                if config.fill_gaps:
                    out, src = _fill_gaps(out, source.scale_b.forward(amp), source.gap_fit, meta)
                    extra.append(src[None])
                data = _encode(opened.optical_profile, out, meta.dtype, meta.nodata)
                if config.uncertainty:
                    std = np.where(valid, res.data[1].astype(np.float64) * (scale_a.hi - scale_a.lo), np.nan)
                    data = np.concatenate([data, _encode_std(opened.optical_profile, std, meta)[None]])
                w.write(np.concatenate([data, *extra]) if extra else data, res.block.core)
                counts["valid"] += int(valid.sum())
                counts["optical"] += int(np.isfinite(bands).all(0).sum())

            run_blocks(task, blocks, sink, progress=rep)
    finally:
        source.close()
    return {
        **dps_info(plan, fn),
        "blocks": len(blocks),
        "streamed": True,
        "fused_fraction": counts["valid"] / max(1, counts["optical"]),
    }


def _fuse_in_memory(
    optical_path: Any, sar_path: Any, out_path: Any, opened: _Opened, *, sar_band: int, overwrite: bool,
    out_meta: Any,
) -> dict[str, Any]:  # fmt: skip
    """A baseline on the whole pair in memory (global methods cannot be tiled)."""
    from tiling.cog import CogWriter

    meta, config = opened.meta, opened.config
    pair = load_pair(
        optical_path, sar_path, config, sar_band=sar_band, clouds=opened.clouds,
        cloud_classes=opened.cloud_classes,
    )  # fmt: skip
    res = fuse_arrays(
        pair.optical, pair.sar, dataclasses.replace(config, despeckle_sar=None), rgb=pair.rgb,
        return_details=True,
    )  # fmt: skip
    assert isinstance(res, FusionResult)
    out, extra = res.bands, []
    if config.fill_gaps:
        fit = GapFill.fit(pair.optical[:, res.valid], res.sar[res.valid])
        out, src = _fill_gaps(out, res.sar, fit, meta)
        extra.append(src[None])
    data = _encode(opened.optical_profile, out, meta.dtype, meta.nodata)
    count, descriptions = _out_bands(meta, config)
    with CogWriter(
        out_path, out_meta, dtype=meta.dtype, overwrite=overwrite, inputs=(optical_path, sar_path),
        count=count, descriptions=descriptions,
    ) as w:  # fmt: skip
        w.write(np.concatenate([data, *extra]) if extra else data, PixelWindow(0, 0, meta.height, meta.width))
    return {"fused_fraction": res.info["fused_fraction"]}


def _summary(optical_path: Any, sar_path: Any, out_path: Any, sar_band: int, o: _Opened) -> dict[str, Any]:  # noqa: ANN401
    meta, config = o.meta, o.config
    summary = {
        "optical": str(optical_path), "sar": str(sar_path), "out": str(out_path), "width": meta.width,
        "height": meta.height, "bands": meta.count, "sar_band": sar_band, "sar_profile": o.sar_profile.name,
        "sar_units": o.sar_profile.units, "optical_profile": o.optical_profile.name,
        "sar_resampled": not o.sar_grid.same_as(o.grid), "sar_coverage": round(o.coverage, 4),
        "method": config.method, "despeckle_sar": o.despeckle,
        "rgb_bands": list(o.rgb) if o.rgb is not None else None, "colour": config.colour,
        "config": config.to_dict(), "clouds": o.clouds,
        "cloud_classes": list(o.cloud_classes) if o.clouds is not None else None,
    }  # fmt: skip
    if get(config.method).kind == "tiles":
        device = str(resolve_device(config.device))
        weights = list(config.weights) if config.weights is not None else "auto"
        summary.update(steps=config.steps, weights=weights, device=device, samples=config.samples)
        summary["uncertainty"] = config.uncertainty
    return summary


# ---- the app --------------------------------------------------------------------------------------
def fuse_scene(
    optical_path: str | os.PathLike,
    sar_path: str | os.PathLike,
    out_path: str | os.PathLike,
    config: FusionConfig | None = None,
    *,
    sar_band: int = 1,
    overwrite: bool = False,
    progress: Any = None,
    clouds: str | os.PathLike | None = None,
    cloud_classes: Any = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fuse the OPTICAL raster with band ``sar_band`` of the SAR raster into a COG on the optical grid.

    The SAR is decoded, despeckled when asked (``config.despeckle_sar``, in its own geometry) and warped
    onto the optical grid when CRS, resolution or extent differ; the output keeps the optical CRS,
    transform, nodata, dtype, band descriptions and tags, plus ``GEODIFF_FUSION`` (the
    :class:`FusionConfig` as JSON, read back by :meth:`FusionConfig.from_tags`), and appears under
    ``out_path`` only when complete. DPS (eq. 25-26) streams block by block; baselines run in memory.
    ``settings`` override fields of ``config`` (e.g. ``steps=5, a=2``). Returns a JSON-ready summary.

    Raises:
        InvalidSettingError / UnknownMethodError: bad settings, before any data is read.
        SwappedInputsError, NoValidPixelsError and tiling's OutputExistsError, RasterNotFoundError ...
        (all ValueError / OSError subclasses): unusable inputs or output path.
    """
    import rasterio

    from tiling.cog import check_output_path
    from tiling.raster_io import GDAL_CACHE_BYTES, open_raster

    started = time.perf_counter()
    config = FusionConfig.of(config, **settings)
    check_output_path(out_path, overwrite, inputs=(optical_path, sar_path))
    # GDAL's block cache (default 5 % of RAM) would grow with the scene: cap it, as the despeckle job does,
    # from the first read on (the units detector's decimated reads of a whole 8192² pair filled ~870 MiB)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        with open_raster(optical_path) as opt, open_raster(sar_path) as sar:
            opened = _open_pair(opt, sar, optical_path, sar_band, config, clouds, cloud_classes)
        summary = _summary(optical_path, sar_path, out_path, sar_band, opened)
        meta = opened.meta
        out_meta = dataclasses.replace(meta, tags={**meta.tags, TAG: opened.config.to_json()})
        args = (optical_path, sar_path, out_path, opened)
        kw = {"sar_band": sar_band, "overwrite": overwrite, "out_meta": out_meta}
        if get(config.method).kind == "tiles":
            summary.update(_stream_dps(*args, progress=progress, **kw))
        else:
            summary.update(_fuse_in_memory(*args, **kw))
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
