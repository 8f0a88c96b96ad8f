"""Radiometry of the two fusion inputs: SAR to linear intensity, robust scaling to [0, 1].

Why here: fusion compares an optical luminance with a SAR amplitude pixel by pixel, so both must
be linear (never dB) and on one [0, 1] scale that a few bright outliers (corner reflectors, clouds)
cannot squash. sensors.profiles will take over the decoding once it exists; until then the rules
below cover dB, amplitude, intensity and complex SAR.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sensors.units import guess_units

log = logging.getLogger(__name__)

__all__ = ["SAR_UNITS", "UnitScale", "robust_unit", "sar_units", "sar_to_intensity"]

SAR_UNITS = ("intensity", "amplitude", "db", "complex")


def sar_units(
    values: np.ndarray,
    dtype: str,
    descriptions: Sequence[str | None] = (),
    tags: Mapping[str, str] | None = None,
    name: str = "",
) -> str:
    """Units of a SAR band: metadata words, the file name (``*_db.tif``), then the values decide.

    Negative values can only be dB, whatever the metadata guesser says.
    """
    vals = np.asarray(values)
    if np.iscomplexobj(vals):
        return "complex"
    finite = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals.ravel()
    stem = name.lower()
    if (
        "db" in stem.replace("-", "_").split("_")
        or stem.endswith("db")
        or (finite.size and (finite < 0).any())
    ):
        return "db"
    units = guess_units(dtype, finite[:: max(1, finite.size // 200_000)], descriptions, tags, 1)
    if units in ("dn", "reflectance"):
        units = "amplitude"  # integer SAR products (e.g. S1 GRD DN) store amplitude
    return units


def sar_to_intensity(values: np.ndarray, units: str, nodata: float | None = None) -> np.ndarray:
    """Linear intensity (float32, NaN at nodata) from SAR in ``units``."""
    if units not in SAR_UNITS:
        raise ValueError(f"unknown SAR units {units!r}; use one of {', '.join(SAR_UNITS)}")
    arr = np.asarray(values)
    bad = ~np.isfinite(arr)
    if nodata is not None and not np.isnan(nodata):
        bad |= arr == nodata
    if units == "complex":
        out = np.abs(arr).astype(np.float64) ** 2
    elif units == "db":
        out = 10.0 ** (arr.astype(np.float64) / 10.0)
    elif units == "amplitude":
        out = arr.astype(np.float64) ** 2
    else:
        out = arr.astype(np.float64)
    if units in ("amplitude", "intensity") and np.nanmin(np.where(bad, 0, out), initial=0) < 0:
        raise ValueError(f"SAR declared {units} has negative values; it is probably in dB (pass units='db')")
    out = np.where(bad, np.nan, out)
    return out.astype(np.float32)


@dataclass(frozen=True)
class UnitScale:
    """Affine map of one image onto [0, 1]: u = (x - lo) / (hi - lo), clipped."""

    lo: float
    hi: float

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        return self.lo + u * (self.hi - self.lo)


def robust_unit(
    x: np.ndarray, valid: np.ndarray | None = None, pct: tuple[float, float] = (0.5, 99.5)
) -> UnitScale:
    """Percentile stretch of the valid pixels of ``x`` onto [0, 1]; an error when nothing is valid."""
    arr = np.asarray(x, dtype=np.float64)
    mask = np.isfinite(arr) if valid is None else (valid & np.isfinite(arr))
    vals = arr[mask]
    if vals.size == 0:
        raise ValueError("the image has no valid pixels (all nodata/NaN); give a scene with data")
    lo, hi = (float(v) for v in np.percentile(vals, pct))
    if not hi > lo:
        lo, hi = float(vals.min()), float(vals.max())
    if not hi > lo:
        hi = lo + 1.0  # constant image: maps to 0
        log.warning("image is constant (%g); it carries no structure to fuse", lo)
    return UnitScale(lo, hi)
