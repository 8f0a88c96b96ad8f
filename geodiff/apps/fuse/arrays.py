"""Optical-SAR fusion of arrays on one grid: (despeckle), fuse the luminance, restore the colour.

:func:`fuse_arrays` is the array job (the numpy and xarray fronts call it; the file job calls it for
the in-memory baselines); :func:`fuse_luminance` runs any method of the registry
(:mod:`geodiff.apps.fuse.methods`) on the two [0, 1] images; :func:`despeckle_intensity` despeckles the
SAR with a method of the despeckle registry first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geodiff.apps.fuse.config import FusionConfig
from geodiff.apps.fuse.methods import build, get
from geodiff.apps.fuse.scales import fusion_scales, sar_to_intensity
from geodiff.errors import GridMismatchError, InputError, NoValidPixelsError
from sensors.colour import fused_bands, luminance, optical_to_float, rgb_band_indices

log = logging.getLogger(__name__)

__all__ = ["FusionResult", "despeckle_intensity", "fuse_arrays", "fuse_luminance"]


@dataclass
class FusionResult:
    """A fused scene and what it was made from (all arrays on the optical grid, float64)."""

    bands: np.ndarray  # (C, H, W) fused optical bands in the optical units; NaN at optical nodata
    fused: np.ndarray  # (H, W) fused luminance F in [0, 1]; NaN where optical or SAR is missing
    optical: np.ndarray  # (H, W) optical luminance A in [0, 1]; NaN at optical nodata
    sar: np.ndarray  # (H, W) SAR amplitude B in [0, 1] (despeckled when asked); NaN where missing
    valid: np.ndarray  # (H, W) both inputs valid: the pixels that were fused
    info: dict[str, Any] = field(default_factory=dict)
    std: np.ndarray | None = None  # (H, W) posterior std of F in [0, 1] units (uncertainty only)


def despeckle_intensity(
    intensity: np.ndarray, valid: np.ndarray, config: FusionConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Despeckle linear SAR intensity (H, W) with ``config.despeckle_sar`` (a despeckle method), tiled.

    Looks are ``config.looks`` or estimated (:func:`geodiff.apps.facts.array_band_facts`); a sampling
    method (sar-dps) uses ``config.prior`` when it is a name, ``config.device`` and ``config.seed``.
    Returns (despeckled intensity (H, W) float32 with NaN where not ``valid``, {"method", "looks"}).
    """
    from geodiff.apps.despeckle.methods import DEFAULT_WINDOW
    from geodiff.apps.despeckle.methods import build as build_despeckler
    from geodiff.apps.despeckle.methods import get as get_despeckler
    from geodiff.apps.facts import array_band_facts
    from tiling.plan import TilePlan, TileSpec
    from tiling.runner import run_array
    from tiling.sources import ArraySource

    m = get_despeckler(config.despeckle_sar)
    facts = array_band_facts(np.where(valid, intensity, np.nan), units="intensity", looks=config.looks)
    options = {"device": config.device} if m.kind == "tiles" else {}
    if m.kind == "tiles" and isinstance(config.prior, str):
        options["prior"] = config.prior
    sample = (facts.intensity, facts.valid)
    fn = build_despeckler(
        m.name, looks=facts.looks, units="intensity", window=DEFAULT_WINDOW, sample=sample, **options
    )
    h, w = intensity.shape
    halo = m.halo(DEFAULT_WINDOW)
    if m.kind == "array":
        plan = TilePlan(h, w, TileSpec(tile=1024, overlap=0, halo=halo, block_tiles=1), config.seed)
    else:
        plan = TilePlan(h, w, TileSpec(tile=256, overlap=32, halo=halo, block_tiles=4), config.seed)
    source = ArraySource(np.where(valid, intensity, np.nan)[None].astype(np.float32))
    out = run_array(source, plan, fn, kind=m.kind, channels=1)[0]
    return np.where(valid, out, np.nan), {"method": m.name, "looks": round(float(facts.looks), 3)}


def scene_share(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """PCA shares (w_A, w_B) of the valid pixels of A and B (:func:`geodiff.solvers.fusion.pca_share`):
    one pair per scene, so that every tile weighs the two sources alike."""
    import torch

    from geodiff.solvers.fusion import pca_share

    a, b, valid = np.asarray(a), np.asarray(b), np.asarray(valid)
    if not valid.all():  # masking copies both (2 x 32 MiB for the 4 Mpx sample of a big scene)
        a, b = a[valid], b[valid]
    return pca_share(torch.from_numpy(a), torch.from_numpy(b))


def fuse_luminance(
    a: np.ndarray, b: np.ndarray, valid: np.ndarray, config: FusionConfig, progress: Any = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fused luminance F (H, W) float64 in [0, 1] (NaN where not ``valid``) of A and B (H, W) in [0, 1].

    "tiles" methods (DPS) run through the tiling runner with ``config.tile``/``overlap``/``seed``;
    "image" methods (baselines) on the whole image, seeing A where B is missing. Returns (F, info);
    with ``config.uncertainty`` info["std"] holds the posterior std of F (H, W).
    """
    m, fn = get(config.method), build(config)
    if m.kind == "image":
        a_fill = np.where(valid, a, 0.0)
        f = fn(a_fill, np.where(valid, b, a_fill))
        return np.where(valid, np.clip(f, 0, 1), np.nan), {}
    fn.share = scene_share(a, b, valid)
    from geodiff.apps.fuse.dps import dps_info, dps_plan
    from geodiff.device import resolve_device
    from tiling.runner import RunOptions, run_array
    from tiling.sources import ArraySource

    plan = dps_plan(
        *a.shape, stride=fn.model.stride, tile=config.tile, overlap=config.overlap, seed=config.seed
    )
    source = ArraySource(
        np.stack([np.where(valid, a, np.nan), np.where(valid, b, np.nan)]).astype(np.float32)
    )
    device = resolve_device(config.device)
    options = RunOptions(device=device, progress=progress, desc="fuse dps")
    out = run_array(source, plan, fn, kind="tiles", channels=fn.outputs, options=options)
    info = {**dps_info(plan, fn), "steps": config.steps, "device": str(device)}
    if config.uncertainty:
        info["std"] = np.where(valid, out[1].astype(np.float64), np.nan)
    return np.where(valid, np.clip(out[0].astype(np.float64), 0, 1), np.nan), info


def _sar_intensity(sar: np.ndarray, shape: tuple[int, int], units: str) -> np.ndarray:
    """One SAR band (H, W) (or (1, H, W)) in ``units`` on the optical grid -> intensity, NaN = missing."""
    s = np.asarray(sar)
    if s.ndim == 3 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 2:
        raise InputError(
            f"SAR must be one band (H, W); got shape {np.shape(sar)} (pick one polarisation, e.g. VV)"
        )
    if s.shape != shape:
        raise GridMismatchError(
            f"optical {shape} and SAR {s.shape} are not on one grid; resample the SAR onto the "
            "optical grid first (tiling.align.align_to_grid, or fuse_scene on files)"
        )
    return sar_to_intensity(s, units)


def fuse_arrays(
    optical: np.ndarray,
    sar: np.ndarray,
    config: FusionConfig | None = None,
    *,
    sar_units: str = "intensity",
    rgb: tuple[int, int, int] | str | None = "auto",
    optical_nodata: float | None = None,
    return_details: bool = False,
    progress: Any = None,
    **settings: Any,
) -> np.ndarray | tuple[np.ndarray, np.ndarray] | FusionResult:
    """Fuse an optical image with a SAR image on the same grid (the review's fusion eq. 25-26 for DPS).

    Args:
        optical: (C, H, W) or (H, W), linear units (DN or reflectance; any positive scale), NaN or
            ``optical_nodata`` for missing pixels.
        sar: (H, W) (or (1, H, W)) in ``sar_units`` (intensity, amplitude, db or complex), NaN = missing.
        config: the fusion settings (:class:`FusionConfig`); ``settings`` (its field names, or a, b, c, d)
            override single fields.
        rgb: indices of the red, green, blue bands, "auto" (the first three of >= 3) or None (mean).
    Returns the fused optical bands (shape of ``optical``, float64, optical units, NaN at optical
    nodata); with ``uncertainty=True`` (DPS, samples >= 2) the pair (bands, std) where std (H, W) is
    the posterior std of the fused luminance in the optical units; or a :class:`FusionResult` with
    ``return_details=True``.
    Raises:
        InvalidSettingError / UnknownMethodError: bad settings; InputError / GridMismatchError: a SAR that
        is not one band on the optical grid; NoValidPixelsError: no pixel valid in both.
    """
    config = FusionConfig.of(config, **settings)
    t_start = time.perf_counter()
    bands, opt_valid = optical_to_float(optical, optical_nodata)
    intensity = _sar_intensity(sar, bands.shape[1:], sar_units)
    sar_valid = np.isfinite(intensity)
    info: dict[str, Any] = {"method": config.method, "despeckle_sar": None}
    if config.despeckle_sar:
        intensity, info["despeckle_sar"] = despeckle_intensity(intensity, sar_valid, config)
    valid = opt_valid & sar_valid
    if not valid.any():
        raise NoValidPixelsError(
            "optical and SAR share no valid pixel (nodata everywhere); check the inputs' nodata"
        )
    rgb_idx = rgb_band_indices([], bands.shape[0]) if isinstance(rgb, str) else rgb
    lum = luminance(bands, rgb_idx)
    amp = np.sqrt(np.maximum(intensity, 0))
    scale_a, scale_b = fusion_scales(lum, amp, opt_valid, valid)
    a_unit = np.where(opt_valid, scale_a.forward(lum), np.nan)
    b_unit = np.where(sar_valid, scale_b.forward(amp), np.nan)
    if config.uncertainty and not get(config.method).samples:
        from geodiff.errors import UncertaintyNotSupportedError

        raise UncertaintyNotSupportedError(
            f"an uncertainty band needs a sampling method (dps), not the classical {config.method!r}"
        )
    f_unit, run_info = fuse_luminance(a_unit, b_unit, valid, config, progress)
    std_unit = run_info.pop("std", None)
    out = fused_bands(bands, lum, f_unit, scale_a, valid, method=config.colour)
    info.update(
        run_info,
        rgb_bands=list(rgb_idx) if rgb_idx is not None else None,
        colour=config.colour,
        fused_fraction=float(valid.sum() / max(1, opt_valid.sum())),
        seconds=round(time.perf_counter() - t_start, 3),
    )
    out = out[0] if np.ndim(optical) == 2 else out
    if return_details:
        return FusionResult(out, f_unit, a_unit, b_unit, valid, info, std_unit)
    if std_unit is not None:
        return out, std_unit * (scale_a.hi - scale_a.lo)
    return out
