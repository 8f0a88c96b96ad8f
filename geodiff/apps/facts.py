"""What a job must know about a SAR band before it runs: units, looks, nodata and a scene sample.

Every job (info, qa, despeckle, fuse) and every front (CLI, numpy API, xarray accessor) asks here,
so the same scene gets the same answer whichever way it comes in:

- the sample is the central window of at most :data:`tiling.sampling.CENTRAL_SIZE` px, read by
  :mod:`tiling.sampling` from a file or cut from an array with the same geometry;
- the units come from the one detector, :func:`sensors.unit_detection.detect_units` (metadata first:
  tags incl. ``GEODIFF_UNITS``, band unit types, descriptions, file names, xarray ``attrs["units"]``;
  then values only where decisive), resolved by :func:`sensors.unit_detection.resolve_units`: a
  given ``units`` (``--units`` / ``units=``) wins, an explicit ``--sensor`` profile fixes them,
  and where neither decides an :class:`~sensors.errors.AmbiguousUnitsError` names ``--units``;
- the looks are given or estimated on the same sample (:func:`sensors.looks.estimate_looks`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensors.detect import Kind, detect_profile
from sensors.profiles import Profile
from sensors.unit_detection import UnitsEvidence, detect_units, resolve_units
from sensors.units import to_intensity
from tiling.errors import NoValidPixelsError
from tiling.sampling import (
    CENTRAL_SIZE,
    block_origins,
    blocks_of,
    central_of,
    read_blocks,
    read_central,
    read_decimated,
)

log = logging.getLogger(__name__)

#: Edge of the central window that units, looks and the scene scale are measured on (pixels).
SAMPLE_SIZE = CENTRAL_SIZE


@dataclass
class BandFacts:
    """Units and looks of one SAR band, with the central sample they were measured on.

    ``intensity`` (h, w) float64 linear intensity and ``valid`` (h, w) bool: the central window of at
    most :data:`SAMPLE_SIZE` px; tiles methods take their scene scale from it. ``evidence``: what the
    units detector found (also when ``units`` were given).
    """

    units: str
    looks: float
    intensity: np.ndarray
    valid: np.ndarray
    looks_estimate: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    evidence: UnitsEvidence | None = None


# ---- units -------------------------------------------------------------------------------------
def _numpy_dtype(gdal_dtype: str) -> np.dtype:
    """The numpy dtype of a rasterio dtype name; GDAL's complex integers (CInt16 "complex_int16",
    CInt32), which numpy lacks, as the complex64 they are read as."""
    return np.dtype(np.complex64) if str(gdal_dtype).startswith("complex_int") else np.dtype(gdal_dtype)


def dataset_units_evidence(
    ds: Any,  # noqa: ANN401 - rasterio dataset
    band: int = 1,
    sample: np.ndarray | None = None,
    values: bool = True,
) -> UnitsEvidence:
    """The units detector on band ``band`` (1-based) of an open rasterio dataset: its metadata
    (dataset and band tags, band description and unit type, file name) and, with ``values``, its
    central window (``sample``: that window if already read)."""
    if not values:
        sample = None
    elif sample is None:
        sample = read_central(ds, band)
    if sample is not None and not _has_values(sample, ds.nodata):  # a nodata centre: look all over
        sample = np.ma.masked_invalid(read_blocks(ds, band).astype(np.float64))
        if not _has_values(sample, ds.nodata):
            whole = block_origins(ds.height, ds.width) is None
            where = "every pixel is nodata or zero" if whole else "the sampled windows are nodata or zero"
            raise NoValidPixelsError(
                f"{ds.name}: {where}: no valid non-zero pixels in band {band} (nodata={ds.nodata}, NaN/inf "
                "count as nodata); nothing to measure or process: check the band (--band) and the nodata"
            )
    tags = {**ds.tags(), **ds.tags(band)}
    return detect_units(
        sample,
        dtype=_numpy_dtype(ds.dtypes[band - 1]),
        descriptions=(ds.descriptions[band - 1],),
        tags=tags,
        name=str(ds.name),
        band_units=(ds.units[band - 1],),
        nodata=ds.nodata,
    )


def array_units_evidence(
    values: Any,  # noqa: ANN401
    *,
    attrs: dict[str, Any] | None = None,
    name: str = "",
    nodata: float | None = None,
) -> UnitsEvidence:
    """The units detector on a 2-D numpy array or DataArray: ``attrs`` (``units``, ``GEODIFF_UNITS``,
    descriptions...), its name, and its central window (the same window a file would give)."""
    sample = central_of(values)
    if not _has_values(sample, nodata):  # a nodata centre: look all over the array
        sample = blocks_of(values)
    if attrs is None and hasattr(values, "attrs"):
        attrs = dict(values.attrs)
    if not name and getattr(values, "name", None) is not None:
        name = str(values.name)
    return detect_units(sample, dtype=np.asarray(sample).dtype, attrs=attrs, name=name, nodata=nodata)


def _has_values(sample: Any, nodata: float | None) -> bool:  # noqa: ANN401
    """True when ``sample`` holds a finite, non-zero value that is not ``nodata`` and not masked."""
    data = (
        np.ma.getdata(sample).astype(np.float64, copy=False) if np.asarray(sample).dtype.kind != "c" else None
    )
    if data is None:
        return True
    ok = np.isfinite(data) & ~np.ma.getmaskarray(sample) & (data != 0)
    if nodata is not None and np.isfinite(nodata):
        ok &= data != nodata
    return bool(ok.any())


def declared(units: str) -> UnitsEvidence:
    """Evidence for units the user declared (``--units`` / ``units=``)."""
    return UnitsEvidence(units, "metadata", "declared by the user (--units / units=)", units)


def detect_raster(
    ds: Any,  # noqa: ANN401 - rasterio dataset
    sensor: str = "auto",
    kind: Kind | None = None,
    check: bool = True,
    sample: np.ndarray | None = None,
    units: str | None = None,
    band: int = 1,
) -> Profile:
    """:func:`sensors.detect.detect_profile` for an open rasterio dataset, with the SAR units of the
    one detector on band ``band``'s central window (``units`` given: those).

    ``sample``: a decimated read for the product and value checks (read here if None).
    Raises as :func:`sensors.detect.detect_profile` (AmbiguousUnitsError names --units).
    """
    if sample is None:
        sample = read_decimated(ds)
    evidence = None
    if sensor is None or sensor.lower() == "auto":
        evidence = declared(resolve_units(units, None)) if units not in (None, "auto") else None
        if evidence is None and _numpy_dtype(ds.dtypes[0]).kind != "c":
            evidence = dataset_units_evidence(ds, band)
    return detect_profile(
        dtype=_numpy_dtype(ds.dtypes[0]),
        count=ds.count,
        descriptions=ds.descriptions,
        tags=ds.tags(),
        path=ds.name,
        sample=sample,
        nodata=ds.nodata,
        sensor=sensor,
        kind=kind,
        check=check,
        units=evidence,
    )


def _sar_units(units: str, where: str) -> str:
    if units == "complex":
        raise ValueError(f"{where}: complex (SLC) data; despeckle needs detected intensity, amplitude or dB")
    return units


# ---- looks -------------------------------------------------------------------------------------
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


# ---- facts -------------------------------------------------------------------------------------
def file_band_facts(
    path: str | os.PathLike,
    *,
    band: int = 1,
    units: str | None = None,
    looks: float | None = None,
    sensor: str = "auto",
) -> BandFacts:
    """Facts of band ``band`` (1-based) of a raster file, from its metadata and central window.

    ``units``: declared units (None/"auto": detected); ``sensor``: a profile name that fixes them.

    Raises:
        AmbiguousUnitsError (ValueError): the units are neither given nor decidable (pass --units).
        ValueError: units or looks cannot be used (complex data, looks <= 0, a contradicting --sensor).
        FileNotFoundError: ``path`` does not exist.
    """
    from tiling.raster_io import open_raster

    with open_raster(path) as ds:
        sample = read_central(ds, band).astype(np.float64)
        valid = ~np.ma.getmaskarray(sample) & np.isfinite(sample.filled(np.nan))
        values = sample.filled(np.nan)
        evidence = None
        if units in (None, "auto") and sensor and sensor.lower() != "auto":
            units = detect_raster(ds, sensor, kind="sar").units
        if units in (None, "auto"):
            evidence = dataset_units_evidence(ds, band, sample)
        resolved = resolve_units(units, evidence, str(path))
    resolved = _sar_units(resolved, str(path))
    intensity = to_intensity(values, resolved)
    lk, est = _looks_of(intensity, valid, looks)
    return BandFacts(resolved, lk, intensity, valid, est, evidence=evidence or declared(resolved))


def array_band_facts(
    values: Any,  # noqa: ANN401
    *,
    units: str | None = None,
    looks: float | None = None,
    nodata: float | None = None,
    attrs: dict[str, Any] | None = None,
    name: str = "",
) -> BandFacts:
    """Facts of one band given as a 2-D numpy array or DataArray (its central window is measured).

    ``values`` (h, w) in stored units; ``nodata`` marks invalid pixels besides NaN; ``attrs`` (e.g. a
    DataArray's, with ``units``) and ``name`` are its metadata.

    Raises:
        AmbiguousUnitsError (ValueError): the units are neither given nor decidable (pass units=).
        ValueError: as :func:`file_band_facts`.
    """
    evidence = None
    if units in (None, "auto"):
        evidence = array_units_evidence(values, attrs=attrs, name=name, nodata=nodata)
    resolved = _sar_units(resolve_units(units, evidence, name or "the array"), name or "the array")
    v = np.asarray(central_of(values), dtype=np.float64)
    valid = np.isfinite(v)
    if nodata is not None and np.isfinite(nodata):
        valid &= v != nodata
    intensity = to_intensity(np.where(valid, v, np.nan), resolved)
    lk, est = _looks_of(intensity, valid, looks)
    return BandFacts(resolved, lk, intensity, valid, est, evidence=evidence or declared(resolved))
