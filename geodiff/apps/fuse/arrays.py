"""Optical-SAR fusion of arrays on one grid: (despeckle), fuse the luminance, restore the colour.

:func:`fuse_arrays` is the array job (the numpy and xarray fronts call it); :class:`DpsTiles` is the
DPS tile function the tiling runner calls, here and in the file job (:mod:`geodiff.apps.fuse.scene`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geodiff.apps.fuse.baselines import BASELINES
from geodiff.apps.fuse.scales import fusion_scales, sar_to_intensity
from sensors.colour import fused_bands, luminance, optical_to_float, rgb_band_indices

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_WEIGHTS",
    "FUSION_METHODS",
    "FusionResult",
    "fuse_arrays",
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
    """geodiff.priors.load, cached: a scene (and a benchmark) loads each prior once."""
    from geodiff import priors

    return priors.load(name)


def _prior(prior: Any, device: torch.device) -> Any:
    obj = _load_prior(prior) if isinstance(prior, str) else prior
    domain = getattr(obj, "domain", "amplitude")
    if domain != "amplitude":
        raise ValueError(
            f"the fusion sampler needs a prior in the 'amplitude' domain (z = 2a - 1); "
            f"{prior!r} is in {domain!r}"
        )
    return obj.to(device)


def _despeckle(
    intensity: np.ndarray, valid: np.ndarray, method: str, looks: float | None, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Despeckle linear SAR intensity with a method of the despeckle app's registry, tiled."""
    from geodiff.apps.despeckle.methods import DEFAULT_WINDOW, build, get
    from tiling.plan import TilePlan
    from tiling.raster_io import ArraySource
    from tiling.runner import run_array

    m = get(method)
    if looks is None:
        from sensors.looks import estimate_looks

        try:
            looks = float(estimate_looks(np.where(valid, intensity, 0), valid & (intensity > 0)).looks)
        except ValueError:
            looks = 1.0
            log.warning("could not estimate the SAR looks; despeckling with L = 1")
    window = DEFAULT_WINDOW
    fn = build(method, looks=looks, units="intensity", window=window, sample=(intensity, valid))
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


class DpsTiles:
    """Tile-batch function of the tiling runner: [A, B] tiles in [0, 1] -> fused tiles (fuse_dps)."""

    def __init__(
        self, model: Any, weights: tuple[float, float, float, float], steps: int, t0: int | None
    ) -> None:
        self.model, self.weights, self.steps, self.t0 = model, weights, steps, t0
        self.nfe = 0

    def __call__(self, tiles: torch.Tensor, ctx: Any) -> torch.Tensor:
        from geodiff.solvers import fuse_dps

        o, r = tiles[:, :1].float(), tiles[:, 1:2].float()
        a, b, c, d = self.weights
        res = fuse_dps(
            o,
            r,
            self.model,
            a=a,
            b=b,
            c=c,
            d=d,
            steps=self.steps,
            t0=self.t0,
            seeds=ctx.seeds,
            blend=ctx.blend,
        )
        self.nfe = max(self.nfe, int(res.nfe))
        return res.mean


def dps_plan(
    height: int, width: int, *, prior: Any, device: torch.device, tile: int, overlap: int, seed: int
) -> tuple[Any, Any]:
    """The loaded prior and the tile plan (tile a multiple of the prior's stride, never above the scene)."""
    from tiling.plan import TilePlan

    model = _prior(prior, device)
    t = _tile_size(height, width, tile, int(model.stride))
    ov = min(overlap, t // 4) if t < max(height, width) else 0
    return model, TilePlan(height, width, tile=t, overlap=ov, halo=0, block_tiles=4, seed=seed)


def dps_info(plan: Any, fn: DpsTiles) -> dict[str, Any]:
    return {
        "sampler": "geodiff.solvers.fuse_dps",
        "tile": plan.tile,
        "overlap": plan.overlap,
        "tiles": plan.n_tiles,
        "nfe_per_tile": fn.nfe,
        "t0": fn.t0,
    }


def progress_for(progress: Any, blocks: int, desc: str) -> tuple[Any, bool]:
    """A reporter for ``blocks`` units: ``True`` makes a tqdm/JSON one (closed by the caller)."""
    from tiling.progress import Progress

    if progress is True:
        return Progress(blocks, desc=desc), True
    return (progress or None), False


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
    from tiling.raster_io import ArraySource
    from tiling.runner import run_array

    model, plan = dps_plan(*a.shape, prior=prior, device=device, tile=tile, overlap=overlap, seed=seed)
    fn = DpsTiles(model, weights, steps, t0)
    source = ArraySource(np.stack([a, b]).astype(np.float32))
    reporter, own = progress_for(progress, len(list(plan.blocks())), "fuse dps")
    try:
        out = run_array(source, plan, fn, kind="tiles", channels=1, device=device, progress=reporter)
    finally:
        if own:
            reporter.close()
    return out[0].astype(np.float64), dps_info(plan, fn)


def check_fusion_args(method: str, weights: tuple[float, ...], steps: int) -> None:
    """Refuse an unknown method, bad weights or step counts before any data is read."""
    if method not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {method!r}; use one of {', '.join(FUSION_METHODS)}")
    if len(weights) != 4 or not all(math.isfinite(float(x)) and float(x) >= 0 for x in weights):
        raise ValueError(f"weights must be four finite numbers >= 0 (a,b,c,d); got {weights!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (got {steps!r})")


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
    check_fusion_args(method, weights, steps)
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
            "optical grid first (tiling.align.align_to_grid, or fuse_scene on files)"
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
    amp = np.sqrt(np.maximum(intensity, 0))
    scale_a, scale_b = fusion_scales(lum, amp, opt_valid, valid)
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

    out = fused_bands(bands, lum, f_unit, scale_a, valid, method=colour)
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
