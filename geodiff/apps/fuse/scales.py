"""Radiometry of the two fusion inputs: SAR to linear intensity, robust scaling to [0, 1].

Why here: fusion compares an optical luminance with a SAR amplitude pixel by pixel, so both must
be linear (never dB) and on one [0, 1] scale that a few bright outliers (corner reflectors, clouds)
cannot squash. Decoding itself belongs to sensors.profiles; files are detected by sensors.detect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from geodiff.errors import NoValidPixelsError

log = logging.getLogger(__name__)

__all__ = ["SAR_UNITS", "UnitScale", "fusion_scales", "robust_unit", "sar_to_intensity"]

SAR_UNITS = ("intensity", "amplitude", "db", "complex")


def sar_to_intensity(values: np.ndarray, units: str, nodata: float | None = None) -> np.ndarray:
    """Linear intensity (same shape, float32, NaN where invalid) from SAR ``values`` in ``units``
    ("intensity", "amplitude", "db" or "complex"), decoded by the generic SAR profile of
    sensors.profiles (so dB/amplitude/complex follow the project's one convention); ``nodata`` pixels
    become NaN.

    Raises:
        ValueError: unknown ``units`` (the message lists the choices).
    """
    from sensors.profiles import get_profile

    if units not in SAR_UNITS:
        raise ValueError(f"unknown SAR units {units!r}; use one of {', '.join(SAR_UNITS)}")
    intensity, valid = get_profile(f"sar-{units}").decode(np.asarray(values), nodata)
    return np.where(valid, intensity, np.nan).astype(np.float32)


@dataclass(frozen=True)
class UnitScale:
    """Affine map of one image onto [0, 1]: u = (x - lo) / (hi - lo), clipped."""

    lo: float
    hi: float

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (any shape) -> u in [0, 1] (clipped), float64."""
        return np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """u in [0, 1] -> x (not clipped), float64."""
        return self.lo + u * (self.hi - self.lo)


def robust_unit(
    x: np.ndarray, valid: np.ndarray | None = None, pct: tuple[float, float] = (0.5, 99.5)
) -> UnitScale:
    """Percentile stretch (``pct``, default 0.5-99.5 %) of the valid, finite pixels of ``x`` (any
    shape; ``valid`` a bool mask of that shape) onto [0, 1], robust to a few bright outliers; a constant
    image maps to 0 (with a warning).

    Raises:
        NoValidPixelsError (a ValueError): nothing valid.
    """
    arr = np.asarray(x, dtype=np.float64)
    mask = np.isfinite(arr) if valid is None else (valid & np.isfinite(arr))
    vals = arr[mask]
    if vals.size == 0:
        raise NoValidPixelsError("the image has no valid pixels (all nodata/NaN); give a scene with data")
    lo, hi = (float(v) for v in np.percentile(vals, pct))
    if not hi > lo:
        lo, hi = float(vals.min()), float(vals.max())
    if not hi > lo:
        hi = lo + 1.0  # constant image: maps to 0
        log.warning("image is constant (%g); it carries no structure to fuse", lo)
    return UnitScale(lo, hi)


def fusion_scales(
    lum: np.ndarray, amp: np.ndarray, optical_valid: np.ndarray, valid: np.ndarray
) -> tuple[UnitScale, UnitScale]:
    """The [0, 1] stretches (A, B) of the optical luminance ``lum`` (over valid optical pixels) and of
    the SAR amplitude ``amp`` (over pixels where both are valid), arrays of one shape: one definition
    for in-memory and streamed fusion. Raises NoValidPixelsError as :func:`robust_unit`."""
    return robust_unit(lum, optical_valid), robust_unit(amp, valid)
