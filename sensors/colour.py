"""Luminance of optical input and colour restoration after the luminance has been fused.

Why: the diffusion prior is a gray prior, so fusion works on one luminance channel; colour (or
every multispectral band) is put back afterwards by a ratio substitution that keeps each band's
share of the luminance (its chroma), out_b = opt_b * F / L, with an additive (IHS-style) fallback
where the luminance is too dark for a ratio to be stable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "REC601",
    "luminance",
    "fused_bands",
    "optical_to_float",
    "restore_colour",
    "rgb_band_indices",
]

REC601 = (0.299, 0.587, 0.114)  # luma weights of R, G, B (ITU-R BT.601, as PIL's convert("L"))

_BAND_RE = re.compile(r"^b0*(\d+a?)(?:$|[_\s-])", re.IGNORECASE)
# Landsat 4-7 TM/ETM+ number their bands from blue = 1; Sentinel-2 and Landsat 8/9 OLI from coastal = 1.
_TM_HINT = re.compile(r"(^|[^a-z])(lt0?[45]|le0?7)", re.IGNORECASE)
_S2_L1C_ORDER = ("1", "2", "3", "4", "5", "6", "7", "8", "8A", "9", "10", "11", "12")


def _band_names(descriptions: Sequence[str | None]) -> list[tuple[str | None, str]]:
    """(band number such as '4' or '8A', lower-case words) of each band description."""
    out = []
    for d in descriptions:
        text = (d or "").strip()
        m = _BAND_RE.match(text)
        out.append((m.group(1).upper() if m else None, text.lower()))
    return out


def rgb_band_indices(
    descriptions: Sequence[str | None], count: int, name_hint: str = ""
) -> tuple[int, int, int] | None:
    """0-based indices of the red, green and blue bands, or None for single-band (gray) input and
    multispectral input whose colours cannot be told (its luminance is then the band mean).

    Sentinel-2 and Landsat 8/9: B04, B03, B02 (so the BigEarthNet B02, B03, B04, B08 file gives
    2, 1, 0); Landsat 4-7 (a file name starting LT05/LE07): B3, B2, B1; descriptions naming red,
    green and blue win; a 3- or 4-band file without descriptions is taken as R, G, B[, NIR].
    """
    if count < 3:
        return None
    names = _band_names(list(descriptions) + [None] * (count - len(descriptions)))
    words = {}
    for i, (_, text) in enumerate(names):
        for colour in ("red", "green", "blue"):
            if colour in text.split("_") or colour in text.split() or text == colour:
                words.setdefault(colour, i)
    if len(words) == 3:
        return words["red"], words["green"], words["blue"]
    numbers = {num: i for i, (num, _) in enumerate(names) if num is not None}
    wanted = ("3", "2", "1") if _TM_HINT.search(name_hint or "") else ("4", "3", "2")
    if all(w in numbers for w in wanted):
        return tuple(numbers[w] for w in wanted)  # type: ignore[return-value]
    if not numbers and count == len(_S2_L1C_ORDER) and "s2" in (name_hint or "").lower():
        return 3, 2, 1
    if not any(d for d in descriptions) and count in (3, 4):
        return 0, 1, 2
    log.info("cannot tell the RGB bands of %d-band input; its luminance is the band mean", count)
    return None


def optical_to_float(bands: np.ndarray, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Optical DN/reflectance as float64 (C, H, W) with nodata as NaN, and the valid mask (H, W).

    Scaling is left linear (a positive factor) on purpose: the ratio colour restoration and the
    robust [0, 1] scaling of the luminance are both invariant to it.
    """
    arr = np.asarray(bands, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"optical input must be (bands, H, W) or (H, W); got shape {arr.shape}")
    invalid = ~np.isfinite(arr).all(0)
    if nodata is not None:
        if np.isnan(nodata):
            pass
        else:
            invalid |= (arr == nodata).all(0)
    arr = np.where(invalid[None], np.nan, arr)
    return arr, ~invalid


def luminance(bands: np.ndarray, rgb: tuple[int, int, int] | None) -> np.ndarray:
    """Rec.601 luma of the RGB bands, or the mean of all bands when the colours are unknown."""
    bands = np.asarray(bands, dtype=np.float64)
    if bands.ndim == 2:
        return bands
    if rgb is None:
        return bands.mean(0)
    r, g, b = rgb
    return REC601[0] * bands[r] + REC601[1] * bands[g] + REC601[2] * bands[b]


def restore_colour(
    bands: np.ndarray,
    lum: np.ndarray,
    fused: np.ndarray,
    method: str = "ratio",
    dark: float | None = None,
) -> np.ndarray:
    """Put the fused luminance ``fused`` back into every optical band.

    ratio: out_b = bands_b * F / L where L > ``dark``, blended into the additive rule
    out_b = bands_b + (F - L) (IHS-style substitution, chroma differences kept) where L is dark,
    so that a near-zero luminance never divides. ihs: the additive rule everywhere.
    ``dark`` defaults to 2 % of the 99th luminance percentile. All arrays share one linear unit;
    the luminance of the result equals ``fused`` exactly for the ihs rule and for the ratio rule
    away from dark pixels. NaN (nodata) stays NaN.
    """
    bands = np.asarray(bands, dtype=np.float64)
    single = bands.ndim == 2
    if single:
        bands = bands[None]
    if bands.shape[1:] != lum.shape or lum.shape != fused.shape:
        raise ValueError(
            f"optical bands {bands.shape}, luminance {lum.shape} and fused {fused.shape} must share one grid"
        )
    if method not in ("ratio", "ihs"):
        raise ValueError(f"unknown colour restoration method {method!r}; use 'ratio' or 'ihs'")
    additive = bands + (fused - lum)[None]
    if method == "ihs":
        out = additive
    else:
        if dark is None:
            finite = lum[np.isfinite(lum)]
            dark = 0.02 * float(np.percentile(finite, 99)) if finite.size else 0.0
        dark = max(float(dark), 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = bands * (fused / np.where(lum > dark, lum, 1.0))[None]
        # smooth hand-over from ratio to additive between dark and 2 * dark
        w = np.clip((lum - dark) / dark, 0.0, 1.0)[None]
        out = w * ratio + (1 - w) * additive
    return out[0] if single else out


def fused_bands(
    bands: np.ndarray,
    lum: np.ndarray,
    fused_unit: np.ndarray,
    scale: object,
    valid: np.ndarray,
    method: str = "ratio",
    dark: float | None = None,
) -> np.ndarray:
    """Optical bands carrying the fused luminance ``fused_unit`` (in [0, 1] through ``scale``).

    The part of the luminance that the [0, 1] stretch clipped is added back, so that highlights
    and deep shadows outside the stretch survive; pixels outside ``valid`` keep the optical bands.
    """
    a_unit = scale.forward(np.nan_to_num(lum))  # type: ignore[attr-defined]
    clipped = lum - scale.inverse(a_unit)  # type: ignore[attr-defined]
    target = np.where(valid, scale.inverse(np.nan_to_num(fused_unit)) + clipped, lum)  # type: ignore[attr-defined]
    out = restore_colour(bands, lum, target, method=method, dark=dark)
    return np.where(valid[None], out, bands)
