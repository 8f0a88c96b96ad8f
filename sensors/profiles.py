"""Sensor profiles: how a product stores its radiometry, and how to decode and encode it.

``decode`` turns stored values into the quantity every algorithm works on (linear intensity for
SAR, reflectance for optical) plus a validity mask; ``encode`` turns results back into the
stored convention and dtype, so a user who brings dB gets dB back and one who brings uint16
Sentinel-2 DN gets uint16 DN back. Only ``s1-slc`` / ``sar-complex`` cannot round-trip: a
despeckled scene has no phase, so they encode to linear intensity (``encoded_units``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sensors.units import from_intensity, negative_fraction, to_intensity

log = logging.getLogger(__name__)

# A linear quantity with more than this share of negative values is not linear: it is dB.
_MAX_NEGATIVE_LINEAR = 0.01


@dataclass(frozen=True)
class Profile:
    """One stored radiometric convention.

    SAR: ``units`` is the stored SAR quantity (intensity, amplitude, db, complex); decoding gives
    linear intensity. Optical: reflectance = DN · gain + bias (``gain=None``: by dtype, 1/255 for
    8-bit, 1e-4 for 16-bit, 1 for float); decoding gives reflectance.
    """

    name: str
    kind: Literal["sar", "optical"]
    units: str
    nominal_looks: float | None
    description: str
    bands: tuple[int, int] = (1, 4)
    gain: float | None = 1.0
    bias: float = 0.0
    nodata_value: float | None = None  # the convention's own fill value where the file declares none
    zero_is_nodata: bool = False

    @property
    def decoded_units(self) -> str:
        """What :meth:`decode` returns: ``intensity`` (SAR) or ``reflectance`` (optical)."""
        return "intensity" if self.kind == "sar" else "reflectance"

    @property
    def encoded_units(self) -> str:
        """What :meth:`encode` returns; complex data comes back as intensity (no phase)."""
        return "intensity" if self.units == "complex" else self.units

    # ----- checks ------------------------------------------------------------------------------
    def check_band_count(self, count: int) -> None:
        lo, hi = self.bands
        if not lo <= count <= hi:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise ValueError(
                f"sensor profile {self.name!r} ({self.description}) expects {want} band(s), the file has "
                f"{count}: pass the right --sensor (see `geodiff info`) or select the band with --band"
            )

    def check_dtype(self, dtype: np.dtype | str) -> None:
        kind = np.dtype(dtype).kind
        if self.units == "complex" and kind != "c":
            raise ValueError(
                f"sensor profile {self.name!r} expects complex (SLC) values, the file holds "
                f"{np.dtype(dtype)}: "
                "pass --sensor sar-intensity, sar-amplitude or sar-db to say what the values are"
            )
        if self.units != "complex" and kind == "c":
            raise ValueError(
                f"the file holds complex values but sensor profile {self.name!r} is {self.units}: "
                "pass --sensor s1-slc or --sensor sar-complex"
            )

    def check_values(self, sample: np.ndarray, nodata: float | None = None) -> None:
        """Refuse a scene whose values contradict the profile (checked once on a scene sample)."""
        values, mask = self.decode(sample, nodata)
        good = values[mask]
        if good.size == 0 or not np.any(good != 0):
            raise ValueError(
                "the scene holds no valid non-zero pixels (all zero or nodata): there is nothing to "
                "measure or process; check the band (--band) and the file's nodata value"
            )
        if self.units == "db":
            from sensors.unit_detection import units_from_values

            stored = np.asarray(sample, dtype=np.float64)
            keep = np.isfinite(stored)
            if nodata is not None and np.isfinite(nodata):
                keep &= stored != nodata
            evidence = units_from_values(np.where(keep, stored, np.nan), nodata)
            linear = evidence.source == "values" and evidence.units in ("intensity", "amplitude")
            if linear or (stored[keep].size and _plainly_linear(stored[keep])):
                why = evidence.evidence if linear else f"none negative, median {np.median(stored[keep]):.3g}"
                raise ValueError(
                    f"sensor profile {self.name!r} says dB, but the values look linear ({why}): pass "
                    "--units intensity or amplitude (or --sensor sar-intensity / sar-amplitude), or convert "
                    "the file to dB"
                )

    # ----- decode / encode ---------------------------------------------------------------------
    def _nodata(self, nodata: float | None) -> float | None:
        return self.nodata_value if nodata is None else nodata

    def decode(self, array: np.ndarray, nodata: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stored values → (linear intensity or reflectance, valid mask). Never modifies ``array``.

        Output is float64 for float64/complex128 input and float32 otherwise.
        """
        arr = np.asarray(array)
        self.check_dtype(arr.dtype)
        out_dtype = np.float64 if arr.dtype in (np.float64, np.complex128) else np.float32
        nod = self._nodata(nodata)
        valid = np.isfinite(arr) if arr.dtype.kind in "fc" else np.ones(arr.shape, dtype=bool)
        if nod is not None:
            valid &= ~(np.isnan(arr) if np.isnan(nod) else arr == nod)
        if self.zero_is_nodata:
            valid &= arr != 0
        if self.kind == "sar":
            if self.units in ("intensity", "amplitude"):
                neg = negative_fraction(arr[valid])
                if neg > _MAX_NEGATIVE_LINEAR:
                    raise ValueError(
                        f"{neg:.0%} of the values are negative, which linear {self.units} cannot be: the "
                        "values look like dB; pass --sensor sar-db (or s1-grd-db), or convert to linear"
                    )
                valid &= ~(arr < 0)
            with np.errstate(over="ignore", invalid="ignore"):
                values = to_intensity(np.where(valid, arr, 0), self.units)
            if self.units == "db":
                valid &= np.isfinite(values)
        else:
            gain = self.gain if self.gain is not None else _gain_for(arr.dtype)
            values = np.where(valid, arr.astype(np.float64) * gain + self.bias, 0.0)
        return np.where(valid, values, 0).astype(out_dtype), valid

    def encode(
        self,
        values: np.ndarray,
        mask: np.ndarray | None = None,
        nodata: float | None = None,
        dtype: np.dtype | str | None = None,
    ) -> np.ndarray:
        """Linear intensity / reflectance → the stored convention in ``dtype`` (the input's dtype).

        Invalid pixels (``mask`` False) get ``nodata``, else the convention's fill value (0 for
        integers and linear SAR, NaN for floats). Integers are rounded and clipped to their range.
        Complex input dtypes give real intensity of the matching precision.
        """
        v = np.asarray(values, dtype=np.float64)
        valid = np.ones(v.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        dt = np.dtype(dtype) if dtype is not None else np.dtype(np.float32)
        if dt.kind == "c":
            dt = np.dtype(np.float64 if dt == np.complex128 else np.float32)
        if self.kind == "sar":
            with np.errstate(divide="ignore", invalid="ignore"):
                stored = from_intensity(np.maximum(np.where(valid, v, 0.0), 0.0), self.units)
        else:
            gain = self.gain if self.gain is not None else _gain_for(dt)
            stored = (np.where(valid, v, 0.0) - self.bias) / gain
        nod = self._nodata(nodata)
        if nod is None:
            nod = np.nan if dt.kind == "f" and not (self.kind == "sar" and self.units != "db") else 0
        if dt.kind in "iu":
            info = np.iinfo(dt)
            stored = np.clip(np.rint(np.nan_to_num(stored, nan=0.0)), info.min, info.max)
            if np.isnan(nod):
                nod = 0
        out = np.where(valid, stored, nod)
        return out.astype(dt)


def _gain_for(dtype: np.dtype | str) -> float:
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        return 1.0 / 255.0 if dt.itemsize == 1 else 1e-4
    return 1.0


def _plainly_linear(stored: np.ndarray) -> bool:
    """True when values declared dB are plainly linear without any speckle statistics: σ0/γ0 in dB mostly
    lie in -40…+10 dB with a left-skewed histogram, so all non-negative values with a large median (DN)
    or a small median and a heavy right tail are not dB. The speckle test of
    :func:`sensors.unit_detection.units_from_values` catches the rest."""
    if np.any(stored < 0):
        return False
    med = float(np.median(stored))
    if med > 35.0:
        return True
    tail = float(np.percentile(stored, 99.5)) / max(med, 1e-12)
    return med < 2.0 and tail > 5.0


_S1 = "Sentinel-1"
_PROFILES: tuple[Profile, ...] = (
    Profile(
        "s1-grd-amplitude",
        "sar",
        "amplitude",
        4.4,
        f"{_S1} GRD amplitude DN (uncalibrated)",
        (1, 2),
        zero_is_nodata=True,
    ),
    Profile(
        "s1-grd-intensity",
        "sar",
        "intensity",
        4.4,
        f"{_S1} GRD calibrated σ0/γ0/β0, linear power",
        (1, 2),
        zero_is_nodata=True,
    ),
    Profile("s1-grd-db", "sar", "db", 4.4, f"{_S1} GRD calibrated σ0/γ0/β0 in dB", (1, 2)),
    Profile(
        "s1-slc",
        "sar",
        "complex",
        1.0,
        f"{_S1} SLC complex (encodes back to intensity)",
        (1, 2),
        zero_is_nodata=True,
    ),
    Profile("sar-intensity", "sar", "intensity", None, "generic SAR linear intensity (power)", (1, 4)),
    Profile("sar-amplitude", "sar", "amplitude", None, "generic SAR linear amplitude", (1, 4)),
    Profile("sar-db", "sar", "db", None, "generic SAR intensity in dB", (1, 4)),
    Profile(
        "sar-complex", "sar", "complex", 1.0, "generic SAR complex SLC (encodes back to intensity)", (1, 4)
    ),
    Profile(
        "s2-l2a",
        "optical",
        "dn",
        None,
        "Sentinel-2 L2A BOA reflectance × 10000, offset −1000 (processing baseline ≥ 04.00)",
        (1, 13),
        gain=1e-4,
        bias=-0.1,
        nodata_value=0,
    ),
    Profile(
        "s2-l2a-pre0400",
        "optical",
        "dn",
        None,
        "Sentinel-2 L2A BOA reflectance × 10000, no offset (processing baseline < 04.00)",
        (1, 13),
        gain=1e-4,
        bias=0.0,
        nodata_value=0,
    ),
    Profile(
        "s2-l1c",
        "optical",
        "dn",
        None,
        "Sentinel-2 L1C TOA reflectance × 10000, offset −1000 (processing baseline ≥ 04.00)",
        (1, 13),
        gain=1e-4,
        bias=-0.1,
        nodata_value=0,
    ),
    Profile(
        "s2-l1c-pre0400",
        "optical",
        "dn",
        None,
        "Sentinel-2 L1C TOA reflectance × 10000, no offset (processing baseline < 04.00)",
        (1, 13),
        gain=1e-4,
        bias=0.0,
        nodata_value=0,
    ),
    Profile(
        "landsat-c2-l2",
        "optical",
        "dn",
        None,
        "Landsat Collection 2 L2 surface reflectance (SR_B1…B7: DN · 2.75e-5 − 0.2)",
        (1, 7),
        gain=2.75e-5,
        bias=-0.2,
        nodata_value=0,
    ),
    Profile(
        "optical",
        "optical",
        "dn",
        None,
        "generic optical (8-bit /255, 16-bit /10000, float as is)",
        (1, 64),
        gain=None,
    ),
)

PROFILES: dict[str, Profile] = {p.name: p for p in _PROFILES}

ALIASES: dict[str, str] = {
    "s1-grd": "s1-grd-intensity",
    "s1-grd-sigma0": "s1-grd-intensity",
    "s1-grd-gamma0": "s1-grd-intensity",
    "s1-grd-linear": "s1-grd-intensity",
    "s1-grd-dn": "s1-grd-amplitude",
    "sar-linear": "sar-intensity",
    "sar-power": "sar-intensity",
    "sar-slc": "sar-complex",
    "s2-l2a-n0400": "s2-l2a",
    "landsat": "landsat-c2-l2",
    "optical-float": "optical",
}


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (or an alias), or a ValueError listing the choices."""
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in PROFILES:
        raise ValueError(f"unknown sensor profile {name!r}; choose one of: auto, {', '.join(PROFILES)}")
    return PROFILES[key]
