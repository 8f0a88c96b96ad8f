"""Tell the radiometric units of a raster from its dtype, metadata and values.

Despeckling is only valid on linear intensity, so every entry point first needs to know
whether it was handed intensity, amplitude, dB, complex, reflectance or raw DN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

UNITS = ("intensity", "amplitude", "db", "complex", "reflectance", "dn")

_DB_WORDS = ("db", "decibel")
_AMP_WORDS = ("amplitude", "amp", "dn_amplitude")
_INT_WORDS = ("intensity", "power", "gamma0", "sigma0", "beta0", "γ0", "σ0", "linear")
_REFL_WORDS = ("reflectance", "sr_b", "boa", "toa")


def _words(texts: Sequence[str | None]) -> str:
    return " ".join(t.lower() for t in texts if t)


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
    text = _words(list(descriptions) + [f"{k} {v}" for k, v in (tags or {}).items()])
    if np.dtype(dtype).kind == "c" or "complex" in text or "slc" in text.split():
        return "complex"
    if any(w in text for w in _DB_WORDS):
        return "db"
    if any(w in text for w in _AMP_WORDS):
        return "amplitude"
    if any(w in text for w in _REFL_WORDS):
        return "reflectance"
    if any(w in text for w in _INT_WORDS):
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
