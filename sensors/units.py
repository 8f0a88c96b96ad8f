"""SAR units: their names, and the one conversion between them (numpy and torch).

Despeckling works on linear intensity I (power, σ0/γ0/β0). A SAR raster may store it as
intensity, as amplitude A = √I, as 10·log10(I) dB, or as complex SLC z with I = |z|². These are the
only places the conventions are converted; :mod:`sensors.unit_detection` decides which one a
raster holds.

``to_intensity``/``from_intensity`` take a numpy array (float64 out) or a torch tensor (same dtype
and device out); torch is never imported here, tensors are recognised by duck typing.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from sensors.errors import UnknownUnitsError

UNITS = ("intensity", "amplitude", "db", "complex", "reflectance", "dn")
SAR_UNITS = ("intensity", "amplitude", "db", "complex")
# What a user may declare with --units / units=: detected data (complex has its own dtype).
DECLARABLE_UNITS = ("intensity", "amplitude", "db")

_ALIASES = {
    "power": "intensity",
    "linear": "intensity",
    "amp": "amplitude",
    "magnitude": "amplitude",
    "decibel": "db",
    "decibels": "db",
    "slc": "complex",
}


def parse_units(name: str, *, allow_complex: bool = True) -> str:
    """Canonical SAR units name ("dB" → "db", "power" → "intensity").

    Raises :class:`~sensors.errors.UnknownUnitsError` naming the choices.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    allowed = SAR_UNITS if allow_complex else DECLARABLE_UNITS
    if key not in allowed:
        raise UnknownUnitsError(
            f"unknown SAR units {name!r}: use one of {', '.join(allowed)} "
            "(--units on the command line, units= in the Python API)"
        )
    return key


def words(text: str) -> set[str]:
    """Lower-case word tokens of metadata text ("VV_dB" → {"vv", "db"}; "SR_B4" also → "sr_b4")."""
    low = text.lower().replace("sentinel-1", "sentinel1").replace("sentinel-2", "sentinel2")
    return set(re.findall(r"[a-z0-9σγβ]+", low)) | set(re.findall(r"[a-z]+_b\d+", low))


_TINY = float(np.finfo(np.float32).tiny)


def _is_tensor(values: Any) -> bool:  # noqa: ANN401
    """True for a torch tensor, told without importing torch."""
    return type(values).__module__.split(".")[0] == "torch" and hasattr(values, "device")


# --- conversions between SAR conventions -------------------------------------------------------
def db_to_linear(db: np.ndarray) -> np.ndarray:
    """10·log10 intensity → linear intensity (float64; -inf dB → 0)."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def linear_to_db(intensity: np.ndarray) -> np.ndarray:
    """Linear intensity → dB (float64; 0 → -inf, as 10·log10 says)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(np.asarray(intensity, dtype=np.float64))


def to_intensity(values: Any, units: str) -> Any:  # noqa: ANN401
    """Stored SAR values in ``units`` → linear intensity.

    ``values``: numpy array of any shape (float64 out) or torch tensor (same dtype and device out).
    ``units``: intensity (I), amplitude (I = A²), db (I = 10^(x/10)) or complex (I = |z|², numpy
    only). Raises :class:`~sensors.errors.UnknownUnitsError` for another name and ValueError for
    complex values declared as something else.
    """
    units = parse_units(units)
    if _is_tensor(values):
        if values.is_complex():
            raise UnknownUnitsError("complex tensors are not supported: pass |z|² (intensity) instead")
        if units == "complex":
            raise UnknownUnitsError(
                "units 'complex' need complex values; a real tensor is intensity, amplitude or db"
            )
        if units == "amplitude":
            return values * values
        if units == "db":
            return 10.0 ** (values / 10.0)
        return values
    if units == "complex":
        z = np.asarray(values)
        return (z.real.astype(np.float64) ** 2) + (z.imag.astype(np.float64) ** 2)
    if np.iscomplexobj(values):
        raise ValueError(
            f"complex values were declared as {units}; complex (SLC) data must be declared as complex "
            "(pass --sensor s1-slc or --sensor sar-complex)"
        )
    v = np.asarray(values, dtype=np.float64)
    if units == "amplitude":
        return v * v
    if units == "db":
        return db_to_linear(v)
    return v


def from_intensity(intensity: Any, units: str) -> Any:  # noqa: ANN401
    """Linear intensity → ``units`` (the inverse of :func:`to_intensity`).

    numpy in: float64 out; torch in: same dtype and device out. Amplitude is √max(I, 0); dB is
    10·log10(max(I, tiny)) with tiny the smallest normal float32, so zero intensity becomes about
    -379 dB, never -inf, in an output. Complex comes back as intensity: a despeckled scene has no phase.
    """
    units = parse_units(units)
    if _is_tensor(intensity):
        if units == "amplitude":
            return intensity.clamp_min(0).sqrt()
        if units == "db":
            return 10.0 * intensity.clamp_min(_TINY).log10()
        return intensity
    v = np.asarray(intensity, dtype=np.float64)
    if units == "amplitude":
        return np.sqrt(np.maximum(v, 0.0))
    if units == "db":
        return linear_to_db(np.maximum(v, _TINY))
    return v


def negative_fraction(values: np.ndarray) -> float:
    """Share of finite values below zero (linear SAR quantities are never negative)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float((v < 0).mean()) if v.size else 0.0
