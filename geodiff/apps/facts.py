"""What a job must know about a SAR band before it runs: units, looks, and a scene sample.

Every job (despeckle, fuse, qa, info) and every front (CLI, numpy API, xarray accessor) asks here,
so the same scene gets the same answer whichever way it comes in.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensors.units import guess_units, to_intensity

log = logging.getLogger(__name__)

#: Edge of the central window that units, looks and the scene scale are measured on (pixels).
SAMPLE_SIZE = 1024


@dataclass
class BandFacts:
    """Units and looks of one SAR band, with the central sample they were measured on.

    ``intensity`` (h, w) float64 linear intensity and ``valid`` (h, w) bool: the central window of at
    most :data:`SAMPLE_SIZE` px; tiles methods take their scene scale from it.
    """

    units: str
    looks: float
    intensity: np.ndarray
    valid: np.ndarray
    looks_estimate: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _looks_of(intensity: np.ndarray, valid: np.ndarray, looks: float | None) -> tuple[float, dict | None]:
    if looks is not None:
        if not looks > 0:
            raise ValueError(f"looks={looks} must be > 0 (e.g. --looks 4.4)")
        return float(looks), None
    from sensors.looks import estimate_looks

    try:
        est = estimate_looks(intensity, valid & (intensity > 0))
    except ValueError as exc:
        log.warning("could not estimate the looks (%s); using L = 1 (pass --looks to set it)", exc)
        return 1.0, None
    return float(est.looks), est.to_dict()


def _sar_units(units: str, where: str) -> str:
    if units == "complex":
        raise ValueError(f"{where}: complex (SLC) data; despeckle needs detected intensity, amplitude or dB")
    if units in ("reflectance", "dn"):
        log.warning("%s: units look like %s, not SAR; filtering the values as linear intensity", where, units)
        return "intensity"
    return units


def file_band_facts(
    path: str | os.PathLike,
    *,
    band: int = 1,
    units: str | None = None,
    looks: float | None = None,
    sensor: str = "auto",
) -> BandFacts:
    """Facts of band ``band`` (1-based) of a raster file, from its metadata and a central sample.

    Raises:
        ValueError: units or looks cannot be used (complex data, looks <= 0, a contradicting --sensor).
        FileNotFoundError: ``path`` does not exist.
    """
    from rasterio.windows import Window

    from tiling.raster_io import open_raster

    with open_raster(path) as ds:
        h, w = min(SAMPLE_SIZE, ds.height), min(SAMPLE_SIZE, ds.width)
        win = Window((ds.width - w) // 2, (ds.height - h) // 2, w, h)
        sample = ds.read(band, window=win, masked=True).astype(np.float64)
        valid = ~np.ma.getmaskarray(sample) & np.isfinite(sample.filled(np.nan))
        values = sample.filled(np.nan)
        if units is None and sensor and sensor.lower() != "auto":
            from sensors.detect import detect_dataset

            units = detect_dataset(ds, sensor, kind="sar").units
        if units is None:
            units = guess_units(ds.dtypes[0], values[valid], ds.descriptions, ds.tags(), ds.count)
    units = _sar_units(units, str(path))
    intensity = to_intensity(values, units)
    lk, est = _looks_of(intensity, valid, looks)
    return BandFacts(units, lk, intensity, valid, est)


def array_band_facts(
    values: np.ndarray,
    *,
    units: str | None = None,
    looks: float | None = None,
    nodata: float | None = None,
    attrs: dict[str, Any] | None = None,
) -> BandFacts:
    """Facts of one band given as an array (a central sample of it is enough).

    ``values`` (h, w) in stored units; ``nodata`` marks invalid pixels besides NaN.

    Raises:
        ValueError: as :func:`file_band_facts`.
    """
    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v)
    if nodata is not None and np.isfinite(nodata):
        valid &= v != nodata
    if units is None:
        units = guess_units(str(np.asarray(values).dtype), v[valid], (), dict(attrs or {}), 1)
    units = _sar_units(units, "the array")
    intensity = to_intensity(np.where(valid, v, np.nan), units)
    lk, est = _looks_of(intensity, valid, looks)
    return BandFacts(units, lk, intensity, valid, est)
