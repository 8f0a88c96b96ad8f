"""The info job: size, georeferencing, value ranges, units, sensor and looks of a raster scene."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import rasterio

from geodiff.apps.facts import dataset_units_evidence, declared, detect_raster
from sensors.unit_detection import UnitsEvidence
from sensors.units import parse_units
from tiling.raster_io import open_raster
from tiling.sampling import read_blocks, read_decimated

log = logging.getLogger(__name__)

_MAX_SAMPLE = 1024  # decimated read: info stays fast on a 25k x 17k scene


def scene_info(path: str | os.PathLike, sensor: str = "auto", units: str | None = None) -> dict[str, Any]:
    """The facts `geodiff info` prints, as a JSON-ready dict, from a decimated read (<= 1024 px a side).

    Keys: path, driver, width, height, count, dtype, crs, transform (6 affine terms, None for GCP-only
    scenes), gcp_count, nodata, nodata_is_nan, descriptions, tags, bands (index, description, min,
    max, mean, valid_fraction_sampled), units (None where ambiguous), units_source ("metadata",
    which includes declared units and --sensor profiles, "values" or "ambiguous"), units_guess,
    units_evidence (the one units detector on band 1, as every job sees it), sensor (a profile name
    or None), looks_estimate and looks_interval (SAR band 1, on full-resolution blocks). ``sensor``: a
    profile name or "auto"; ``units``: declared units or None/"auto".

    Raises:
        tiling's RasterNotFoundError / RasterOpenError (FileNotFoundError / ValueError): unreadable path.
        ValueError: an explicit ``sensor`` that contradicts the file.
    """
    with open_raster(path) as ds:
        data = read_decimated(ds, _MAX_SAMPLE)
        gcps, gcp_crs = ds.gcps
        bands = []
        for i in range(ds.count):
            band = data[i]
            if np.iscomplexobj(band):
                band = np.abs(band)
            valid = band.compressed() if np.ma.isMaskedArray(band) else np.ravel(band)
            valid = valid[np.isfinite(valid)]
            bands.append(
                {
                    "index": i + 1,
                    "description": ds.descriptions[i],
                    "min": float(valid.min()) if valid.size else None,
                    "max": float(valid.max()) if valid.size else None,
                    "mean": float(valid.mean()) if valid.size else None,
                    "valid_fraction_sampled": float(valid.size / max(1, np.ravel(band).size)),
                }
            )
        crs = ds.crs or gcp_crs
        given = parse_units(units) if units not in (None, "auto") else None
        evidence = declared(given) if given else dataset_units_evidence(ds, 1)
        profile, looks = _sensor_and_looks(ds, data, sensor, given)
        if profile is not None and (profile.kind != "sar" or sensor.lower() != "auto"):
            # an optical product, or an explicit --sensor: the profile states the units
            evidence = UnitsEvidence(
                profile.units, "metadata", f"sensor profile {profile.name}", profile.units
            )
        return {
            "path": str(path),
            "driver": ds.driver,
            "width": ds.width,
            "height": ds.height,
            "count": ds.count,
            "dtype": ds.dtypes[0],
            "crs": crs.to_string() if crs else None,
            "transform": None if ds.transform.is_identity and gcps else list(ds.transform)[:6],
            "gcp_count": len(gcps),
            "nodata": None if ds.nodata is None or not np.isfinite(ds.nodata) else ds.nodata,
            "nodata_is_nan": bool(ds.nodata is not None and np.isnan(ds.nodata)),
            "descriptions": list(ds.descriptions),
            "tags": ds.tags(),
            "bands": bands,
            "units": evidence.units,
            "units_source": evidence.source,
            "units_guess": evidence.guess,
            "units_evidence": evidence.evidence,
            "sensor": None if profile is None else profile.name,
            "looks_estimate": None if looks is None else round(looks.looks, 3),
            "looks_interval": None if looks is None else [round(looks.low, 3), round(looks.high, 3)],
        }


def _sensor_and_looks(
    ds: rasterio.io.DatasetReader, data: np.ndarray, sensor: str, units: str | None
) -> tuple[Any, Any]:
    """Detected sensor profile (None where it cannot be told, e.g. ambiguous units) and, for SAR, the
    looks of band 1 estimated on full-resolution blocks spread over the scene. With auto detection
    info never fails on these; an explicit ``sensor`` that contradicts the file is an error."""
    from sensors.looks import estimate_looks

    if sensor.lower() != "auto":
        profile = detect_raster(ds, sensor=sensor, sample=data)
    else:
        try:
            profile = detect_raster(ds, sample=data, units=units)
        except ValueError as exc:
            log.info("%s: sensor not detected: %s", ds.name, exc)
            return None, None
    if profile.kind != "sar":
        return profile, None
    try:
        intensity, mask = profile.decode(read_blocks(ds, 1), ds.nodata)
        return profile, estimate_looks(intensity, mask)
    except ValueError as exc:
        log.info("%s: looks not estimated: %s", ds.name, exc)
        return profile, None


def format_info(info: dict[str, Any]) -> str:
    """Human-readable text for `geodiff info` from :func:`scene_info`'s dict (one fact a line)."""
    lines = [
        f"{info['path']}  ({info['driver']})",
        f"  size        {info['width']} x {info['height']} px, {info['count']} band(s), {info['dtype']}",
        f"  crs         {info['crs'] or 'none'}",
    ]
    if info["transform"] is not None:
        lines.append("  transform   " + ", ".join(f"{v:.10g}" for v in info["transform"]))
    if info["gcp_count"]:
        lines.append(f"  gcps        {info['gcp_count']}")
    nod = "nan" if info["nodata_is_nan"] else info["nodata"]
    lines.append(f"  nodata      {nod}")
    if info["units"] is None:
        guess = f", best guess {info['units_guess']}" if info.get("units_guess") else ""
        lines.append(f"  units       ambiguous{guess}: {info['units_evidence']}")
        lines.append("              jobs on this scene need --units intensity|amplitude|db")
    else:
        lines.append(f"  units       {info['units']} ({info['units_source']}: {info['units_evidence']})")
    for extra in ("sensor", "looks_estimate"):
        if extra in info:
            lines.append(f"  {extra:<11} {info[extra]}")
    for b in info["bands"]:
        rng = "no valid pixels" if b["min"] is None else f"{b['min']:.6g} .. {b['max']:.6g}"
        lines.append(f"  band {b['index']:<6} {b['description'] or '-'}: {rng}")
    return "\n".join(lines)
