"""Tell which sensor profile a raster follows, from its name, metadata, dtype and values.

Metadata wins over values: product names (S1A_IW_GRDH…, S2B_MSIL2A…, LC08_L2SP…), band
descriptions and tags (VV, γ0, dB, B04, SR_B4, …). Values decide only what metadata leaves open,
and where they cannot (positive float SAR values that could be dB or linear), we refuse with an
error that names the ``--sensor`` choices instead of guessing: a wrong guess silently ruins a
despeckling run.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np

from sensors.errors import AmbiguousUnitsError
from sensors.profiles import PROFILES, Profile, get_profile
from sensors.unit_detection import DB_TOKENS, UnitsEvidence, units_from_values, units_from_words
from sensors.units import words

log = logging.getLogger(__name__)

Kind = Literal["sar", "optical"]

_S1_PRODUCT = re.compile(r"s1[abcd][-_](?:iw|ew|sm|wv|s\d)[-_](grd[hmf]?|slc|raw|ocn)")
_S2_PRODUCT = re.compile(r"s2[abcd][-_]msil(1c|2a)(?:[-_](\d{8})t)?")
_S2_BASELINE = re.compile(r"[-_]n(\d{4})[-_]")
_LANDSAT_PRODUCT = re.compile(r"l[cote]0[4-9][-_](?:\d{6}[-_])?(l1tp|l1gt|l1gs|l2sp|l2sr)?")
# Baseline 04.00 (the −1000 offset) went live on 25 January 2022.
_S2_OFFSET_FROM = date(2022, 1, 25)

_SAR_TOKENS = {
    "vv",
    "vh",
    "hh",
    "hv",
    "sar",
    "slc",
    "grd",
    "grdh",
    "backscatter",
    "sigma0",
    "gamma0",
    "beta0",
    "σ0",
    "γ0",
    "β0",
    "sentinel1",
    "rtc",
}
_OPTICAL_TOKENS = {
    "reflectance",
    "boa",
    "toa",
    "rgb",
    "red",
    "green",
    "blue",
    "nir",
    "swir",
    "sentinel2",
    "l2a",
    "l1c",
    "msil2a",
    "msil1c",
    "landsat",
    "sr",
}
_OPTICAL_BAND = re.compile(r"^(b\d{1,2}a?|sr_b\d|b\d_\w+)$")


def _tokens(text: str) -> set[str]:
    return words(text)


def _valid_sample(sample: np.ndarray | None, nodata: float | None) -> np.ndarray:
    if sample is None:
        return np.empty(0)
    v = np.ma.getdata(sample)[~np.ma.getmaskarray(sample)] if np.ma.isMaskedArray(sample) else sample
    v = np.asarray(np.abs(v) if np.iscomplexobj(v) else v, dtype=np.float64).ravel()
    keep = np.isfinite(v)
    if nodata is not None and np.isfinite(nodata):
        keep &= v != nodata
    return v[keep]


def _sar_units(
    toks: set[str],
    dt: np.dtype,
    vals: np.ndarray,
    sample: np.ndarray | None,
    nodata: float | None,
    source: str,
    evidence: UnitsEvidence | None,
) -> str:
    """SAR units by the one detector (:mod:`sensors.unit_detection`): words, integer DN, then values.

    ``evidence`` (the caller's :func:`~sensors.unit_detection.detect_units` on its units sample,
    metadata included) decides alone where given, so a profile never disagrees with the jobs'
    units. Raises AmbiguousUnitsError naming --units / --sensor where nothing decides.
    """
    if evidence is None:
        units = units_from_words(toks) or ("amplitude" if dt.kind in "iu" else None)
        if units is not None:
            return units
        if vals.size == 0 or not np.any(vals != 0):
            raise ValueError(
                f"{source}: the scene holds no valid non-zero pixels (all zero or nodata): there is nothing "
                "to measure or process; check the band (--band) and the file's nodata value"
            )
        evidence = units_from_values(filled_sample(sample, nodata), nodata)
    if evidence.units is None:
        raise AmbiguousUnitsError(
            f"{source}: cannot tell whether the values are SAR intensity, amplitude or dB "
            f"({evidence.evidence}): pass --units intensity|amplitude|db (units=... in the Python API) "
            "or a --sensor profile (sar-intensity, sar-amplitude, sar-db, s1-grd-intensity, ...)",
            evidence,
        )
    return evidence.units


def _s2_profile(level: str, text: str, tags: Mapping[str, str], vals: np.ndarray) -> tuple[str, str]:
    base = "s2-l2a" if level == "2a" else "s2-l1c"
    for key in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"):
        for k, v in tags.items():
            if k.upper().startswith(key):
                try:
                    off = float(v)
                except ValueError:
                    continue
                return (base if off != 0 else base + "-pre0400"), f"tag {k}={v}"
    m = _S2_BASELINE.search(text)
    if m:
        return (base if int(m.group(1)) >= 400 else base + "-pre0400"), f"processing baseline N{m.group(1)}"
    for k, v in tags.items():
        if "PROCESSING_BASELINE" in k.upper():
            try:
                return (base if float(v) >= 4.0 else base + "-pre0400"), f"tag {k}={v}"
            except ValueError:
                pass
    m = _S2_PRODUCT.search(text)
    if m and m.group(2):
        d = date(int(m.group(2)[:4]), int(m.group(2)[4:6]), int(m.group(2)[6:8]))
        return (base if d >= _S2_OFFSET_FROM else base + "-pre0400"), f"sensing date {d} vs baseline 04.00"
    if vals.size:
        # With the −1000 offset even dark water sits at DN ≥ 1000; without it, most scenes hold DN < 1000.
        p1 = float(np.percentile(vals[vals > 0], 1)) if np.any(vals > 0) else 0.0
        if p1 < 1000:
            return base + "-pre0400", f"1st percentile DN {p1:.0f} < 1000 (no offset)"
        return base, f"1st percentile DN {p1:.0f} >= 1000 (offset −1000)"
    return base, "no baseline information; assuming baseline >= 04.00"


def detect_profile(
    *,
    dtype: np.dtype | str,
    count: int = 1,
    descriptions: Sequence[str | None] = (),
    tags: Mapping[str, str] | None = None,
    path: str | os.PathLike | None = None,
    sample: np.ndarray | None = None,
    nodata: float | None = None,
    sensor: str = "auto",
    kind: Kind | None = None,
    check: bool = True,
    units: UnitsEvidence | None = None,
) -> Profile:
    """The profile a raster follows; ``sensor`` other than "auto" names it explicitly.

    ``sample`` is a read of the values ((bands, h, w) or (h, w), masked or plain), ``kind`` what the
    caller needs ("sar" for despeckling and QA) where the data leaves it open. The SAR units come
    from the one units detector: ``units`` is the caller's evidence for them (from
    :func:`sensors.unit_detection.detect_units` on its units sample), else it runs on ``sample``.
    With ``check`` the profile is also checked against the band count, dtype and values.

    Raises ValueError (with the fix) for a contradicting ``sensor``/``kind``, and
    :class:`~sensors.errors.AmbiguousUnitsError` where the SAR units cannot be told.
    """
    tags = dict(tags or {})
    source = Path(path).name if path is not None else "the raster"
    if sensor and sensor.lower() != "auto":
        profile = get_profile(sensor)
        reason = "--sensor"
    else:
        profile, reason = _auto(dtype, count, descriptions, tags, path, sample, nodata, kind, source, units)
    log.info("%s: sensor profile %s (%s)", source, profile.name, reason)
    if kind is not None and profile.kind != kind:
        raise ValueError(
            f"{source} is {profile.kind} data (profile {profile.name}, from {reason}); this needs {kind} "
            f"data: pass the right file, or --sensor with one of the {kind} profiles "
            f"({', '.join(p for p, v in PROFILES.items() if v.kind == kind)})"
        )
    if check:
        profile.check_band_count(count)
        profile.check_dtype(dtype)
        if sample is not None:
            profile.check_values(filled_sample(sample, nodata), nodata)
    return profile


def _auto(
    dtype: np.dtype | str,
    count: int,
    descriptions: Sequence[str | None],
    tags: Mapping[str, str],
    path: str | os.PathLike | None,
    sample: np.ndarray | None,
    nodata: float | None,
    kind: Kind | None,
    source: str,
    evidence: UnitsEvidence | None = None,
) -> tuple[Profile, str]:
    dt = np.dtype(dtype)
    p = Path(path) if path is not None else None
    fname = p.name.lower() if p else ""
    folder = str(p.parent).lower() if p else ""  # all ancestors: …/S2B_MSIL2A_…SAFE/GRANULE/…/B04.jp2
    meta = " ".join([*(d or "" for d in descriptions), *(f"{k} {v}" for k, v in tags.items())]).lower()
    own = f"{fname} {meta}"
    toks = _tokens(own)
    vals = _valid_sample(sample, nodata)

    # 1. product names: the file itself first, then its metadata, then the folders it sits in
    #    (a BigEarthNet folder named after the S2 product also holds the S1 file).
    sar_words = bool(toks & _SAR_TOKENS) or (bool(toks & DB_TOKENS) and dt.kind == "f")
    optical_words = bool(toks & _OPTICAL_TOKENS) or _has_bands(toks)
    for text, where in ((fname, "file name"), (meta, "metadata"), (folder, "folder names")):
        if not text:
            continue
        # The file's own words beat its folder's product name of the other kind.
        s1_here = _S1_PRODUCT.search(text) and not (where == "folder names" and optical_words)
        optical_here = not (where == "folder names" and sar_words)
        if s1_here and (m := _S1_PRODUCT.search(text)):
            if dt.kind == "c" or m.group(1) == "slc":
                return PROFILES["s1-slc"], f"Sentinel-1 SLC product name in {where}"
            units = _sar_units(toks, dt, vals, sample, nodata, source, evidence)
            return PROFILES[f"s1-grd-{units}"], f"Sentinel-1 GRD product name in {where}, {units}"
        if optical_here and (m := _S2_PRODUCT.search(text)):
            if dt.kind == "f":
                return PROFILES["optical"], f"Sentinel-2 product name in {where}, float reflectance"
            name, why = _s2_profile(m.group(1), f"{text} {own}", tags, vals)
            return PROFILES[name], f"Sentinel-2 L{m.group(1).upper()} product name in {where}, {why}"
        landsat = optical_here and (m := _LANDSAT_PRODUCT.search(text))
        if landsat and m.group(1) in ("l2sp", "l2sr") and dt.kind in "iu":
            return PROFILES["landsat-c2-l2"], f"Landsat Collection 2 L2 product name in {where}"

    # 2. words in the file name, band descriptions and tags
    if dt.kind == "c":
        return PROFILES["sar-complex"], "complex values"
    if "sentinel1" in toks and dt.kind in "iu":
        return PROFILES["s1-grd-amplitude"], "Sentinel-1 integer DN"
    if sar_words and not optical_words:
        prefix = "s1-grd" if toks & {"sentinel1", "s1"} else "sar"
        units = _sar_units(toks, dt, vals, sample, nodata, source, evidence)
        return PROFILES[f"{prefix}-{units}"], f"SAR words in name/metadata, {units}"
    if optical_words and not sar_words:
        level = next((lv for lv in ("1c", "2a") if toks & {f"l{lv}", f"msil{lv}"}), None)
        if level and toks & {"s2", "sentinel2"} and dt.kind in "iu":
            name, why = _s2_profile(level, own, tags, vals)
            return PROFILES[name], f"Sentinel-2 L{level.upper()} words, {why}"
        if "sr" in toks or any(t.startswith("sr_b") for t in toks):
            if dt.kind in "iu":
                return PROFILES["landsat-c2-l2"], "surface-reflectance band names (SR_B*)"
        return PROFILES["optical"], "optical band names/words"

    # 3. nothing in the metadata: dtype, band count and values
    if dt.kind in "iu" and (dt.itemsize == 1 or count >= 3):
        return PROFILES["optical"], f"{dt} with {count} band(s)"
    if dt.kind == "f" and count >= 3 and vals.size and vals.min() >= 0 and vals.max() <= 1.5:
        return PROFILES["optical"], f"{count} float bands within 0..1.5"
    if kind == "optical":
        return PROFILES["optical"], "optical requested"
    if dt.kind in "iu":
        if kind == "sar":
            return PROFILES["sar-amplitude"], "integer SAR DN taken as amplitude"
        raise ValueError(
            f"{source}: cannot tell whether this {dt} raster is SAR amplitude DN or an optical band: "
            "pass --sensor sar-amplitude (or s1-grd-amplitude) or --sensor optical"
        )
    units = _sar_units(set(), dt, vals, sample, nodata, source, evidence)
    return PROFILES[f"sar-{units}"], f"SAR {units} ({evidence.evidence if evidence else 'values'})"


def filled_sample(sample: np.ndarray, nodata: float | None) -> np.ndarray:
    """A masked read as a plain array whose masked pixels decode as invalid."""
    if not np.ma.isMaskedArray(sample):
        return np.asarray(sample)
    if sample.dtype.kind in "iu":
        return sample.filled(0 if nodata is None or not np.isfinite(nodata) else nodata)
    return sample.filled(np.nan)


def _has_bands(toks: set[str]) -> bool:
    return any(_OPTICAL_BAND.match(t) for t in toks)
