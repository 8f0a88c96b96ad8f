"""Tell the radiometric units of a raster from its dtype, metadata and values.

Despeckling is only valid on linear intensity, so every entry point first needs to know
whether it was handed intensity, amplitude, dB, complex, reflectance or raw DN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

UNITS = ("intensity", "amplitude", "db", "complex", "reflectance", "dn")

_DB_WORDS = ("db", "decibel")
_AMP_WORDS = ("amplitude", "amp", "dn_amplitude")
_INT_WORDS = ("intensity", "power", "gamma0", "sigma0", "beta0", "γ0", "σ0", "linear")
_REFL_WORDS = ("reflectance", "boa", "toa")


def words(text: str) -> set[str]:
    """Lower-case word tokens of metadata text ("VV_dB" → {"vv", "db"}; "SR_B4" also → "sr_b4")."""
    low = text.lower().replace("sentinel-1", "sentinel1").replace("sentinel-2", "sentinel2")
    return set(re.findall(r"[a-z0-9σγβ]+", low)) | set(re.findall(r"[a-z]+_b\d+", low))


def _mentions(tokens: set[str], vocabulary: Sequence[str]) -> bool:
    """Whole-word match; long words also match as a prefix ("sigma0vv"), short ones ("db", "amp")
    only whole, so that "sample" or "database" do not count."""
    return any(t == w or (len(w) >= 4 and t.startswith(w)) for t in tokens for w in vocabulary)


def guess_units(
    dtype: str,
    sample: np.ndarray,
    descriptions: Sequence[str | None] = (),
    tags: Mapping[str, str] | None = None,
    band_count: int = 1,
) -> str:
    """Best guess of the units of a raster: one of :data:`UNITS`.

    Metadata words win over value statistics; values decide only when metadata is silent.
    ``sample`` is a (possibly decimated) array of valid pixel values.
    """
    toks = words(" ".join([*(d or "" for d in descriptions), *(f"{k} {v}" for k, v in (tags or {}).items())]))
    if np.dtype(dtype).kind == "c" or _mentions(toks, ("complex", "slc")):
        return "complex"
    if _mentions(toks, _DB_WORDS):
        return "db"
    if _mentions(toks, _AMP_WORDS):
        return "amplitude"
    if _mentions(toks, _REFL_WORDS) or any(t.startswith("sr_b") for t in toks):
        return "reflectance"
    if _mentions(toks, _INT_WORDS):
        return "intensity"
    kind = np.dtype(dtype).kind
    vals = np.asarray(sample, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if kind in "iu":
        return "dn"
    if vals.size == 0:
        return "intensity"
    if (vals < 0).mean() > 0.05:
        return "db"
    if band_count >= 3 and vals.max() <= 1.5:
        return "reflectance"
    # Fully developed speckle: intensity has coefficient of variation ~1/sqrt(L) >= amplitude's.
    # A heavy right tail (max/median large) points to intensity rather than amplitude.
    med = float(np.median(vals)) or 1e-12
    tail = float(np.percentile(vals, 99.5)) / med
    return "intensity" if tail > 8.0 else "amplitude"


# --- conversions between SAR conventions -------------------------------------------------------
# Despeckling works on linear intensity; these are the only places the conventions are converted.

SAR_UNITS = ("intensity", "amplitude", "db", "complex")


def db_to_linear(db: np.ndarray) -> np.ndarray:
    """10·log10 intensity → linear intensity (float64; -inf dB → 0)."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def linear_to_db(intensity: np.ndarray) -> np.ndarray:
    """Linear intensity → dB (float64; 0 → -inf, as 10·log10 says)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.asarray(intensity, dtype=np.float64))


def to_intensity(values: np.ndarray, units: str) -> np.ndarray:
    """Stored SAR values in ``units`` → linear intensity (float64)."""
    if units == "complex":
        z = np.asarray(values)
        return (z.real.astype(np.float64) ** 2) + (z.imag.astype(np.float64) ** 2)
    if np.iscomplexobj(values):
        raise ValueError(
            f"complex values were declared as {units}; complex (SLC) data must be declared as complex "
            "(pass --sensor s1-slc or --sensor sar-complex)"
        )
    v = np.asarray(values, dtype=np.float64)
    if units == "intensity":
        return v
    if units == "amplitude":
        return v * v
    if units == "db":
        return db_to_linear(v)
    raise ValueError(f"unknown SAR units {units!r}; expected one of {', '.join(SAR_UNITS)}")


def from_intensity(intensity: np.ndarray, units: str) -> np.ndarray:
    """Linear intensity → ``units`` (float64). Complex data comes back as intensity: the phase
    of a despeckled scene is not defined."""
    v = np.asarray(intensity, dtype=np.float64)
    if units in ("intensity", "complex"):
        return v
    if units == "amplitude":
        return np.sqrt(np.maximum(v, 0.0))
    if units == "db":
        return linear_to_db(v)
    raise ValueError(f"unknown SAR units {units!r}; expected one of {', '.join(SAR_UNITS)}")


def negative_fraction(values: np.ndarray) -> float:
    """Share of finite values below zero (linear SAR quantities are never negative)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float((v < 0).mean()) if v.size else 0.0
