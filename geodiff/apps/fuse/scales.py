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

__all__ = ["SAR_UNITS", "GapFill", "UnitScale", "fusion_scales", "robust_unit", "sar_to_intensity"]

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


@dataclass(frozen=True)
class GapFill:
    """The SAR-driven estimate of the optical bands where the optical is missing (nodata, clouds).

    Per band k a least-squares line x_k = offset_k + gain_k * B (``numpy.polynomial.polynomial.polyfit``,
    degree 1) of the optical reflectance on the SAR amplitude B in [0, 1], fitted on the pixels where
    both are valid: a coarse, scene-wide estimate (SAR brightness carries no colour), flagged in the
    output's mask band so that nobody mistakes it for an observation.
    """

    offset: np.ndarray  # (C,)
    gain: np.ndarray  # (C,)

    @classmethod
    def fit(cls, bands: np.ndarray, b: np.ndarray) -> GapFill:
        """Fit from ``bands`` (C, N) reflectance and ``b`` (N,) amplitude in [0, 1] (finite pixels only;
        fewer than 2 gives a constant fill at each band's mean, or 0 without any).

        Raises ValueError for mismatched shapes."""
        from numpy.polynomial import polynomial

        bands = np.asarray(bands, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if bands.ndim != 2 or bands.shape[1] != b.shape[0]:
            raise ValueError(f"bands (C, N) and b (N,) do not match: {bands.shape} and {b.shape}")
        ok = np.isfinite(bands).all(0) & np.isfinite(b)
        offset, gain = np.zeros(bands.shape[0]), np.zeros(bands.shape[0])
        if ok.sum() >= 2 and np.ptp(b[ok]) > 0:
            for k in range(bands.shape[0]):
                offset[k], gain[k] = polynomial.polyfit(b[ok], bands[k, ok], 1)
        elif ok.any():
            offset = bands[:, ok].mean(1)
        return cls(offset, gain)

    def estimate(self, b: np.ndarray) -> np.ndarray:
        """(C, H, W) estimated reflectance from ``b`` (H, W) amplitude in [0, 1] (NaN stays NaN)."""
        return self.offset[:, None, None] + self.gain[:, None, None] * np.asarray(b, dtype=np.float64)[None]
