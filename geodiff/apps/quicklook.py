"""Before/after quick-look PNGs: people judge despeckling by eye before they read a table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rasterio.enums import Resampling

from geodiff.errors import InvalidSettingError
from tiling.atomic import atomic_path
from tiling.raster_io import open_raster

_MAX_SIDE = 768


def _read_display(
    path: str | os.PathLike, band: int, max_side: int, units: str | None
) -> tuple[np.ndarray, str]:
    """Decimated read of one band as linear intensity (float64, nodata as NaN) and the units it was
    stored in: ``units`` if given, else the one units detector (AmbiguousUnitsError names --units)."""
    from geodiff.apps.facts import dataset_units_evidence
    from sensors.unit_detection import resolve_units
    from sensors.units import to_intensity

    with open_raster(path) as ds:
        if not 1 <= band <= ds.count:
            raise InvalidSettingError(f"{path}: --band {band} does not exist (the file has {ds.count})")
        evidence = None if units not in (None, "auto") else dataset_units_evidence(ds, band)
        stored_units = resolve_units(units, evidence, str(path))
        step = max(1, int(np.ceil(max(ds.width, ds.height) / max_side)))
        shape = (max(1, ds.height // step), max(1, ds.width // step))
        arr = ds.read(band, out_shape=shape, masked=True, resampling=Resampling.average)
    return to_intensity(np.ma.filled(arr.astype("float64"), np.nan), stored_units), stored_units


def to_db_display(intensity: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear intensity (any shape, float) -> uint8 grey of the same shape through dB: ``lo`` dB is
    black, ``hi`` dB white; non-positive and NaN pixels are black."""
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10 * np.log10(np.where(intensity > 0, intensity, np.nan))
    grey = np.clip((db - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    return np.nan_to_num(grey, nan=0).astype(np.uint8)


def before_after_png(
    before: str | os.PathLike,
    after: str | os.PathLike,
    png: str | os.PathLike,
    band: int = 1,
    labels: tuple[str, str] = ("input", "geodiff"),
    max_side: int = _MAX_SIDE,
    units: str | None = None,
) -> Path:
    """Write a side-by-side PNG of band ``band`` of two SAR rasters on one shared dB stretch (the
    1st-99th percentiles of AFTER), each decimated to at most ``max_side`` px and captioned with
    ``labels``; written atomically. Returns the PNG path.

    ``units``: BEFORE's units (intensity, amplitude or db; None: detected). AFTER is read in the units
    its own metadata states (a geodiff output records them), else in BEFORE's.

    Raises:
        tiling's RasterNotFoundError / RasterOpenError: an unreadable raster.
        InvalidSettingError (a ValueError): no such band.
        AmbiguousUnitsError (a ValueError): BEFORE's units cannot be told (pass --units).
    """
    from geodiff.apps.facts import dataset_units_evidence

    a, before_units = _read_display(before, band, max_side, units)
    with open_raster(after) as ds:
        own = dataset_units_evidence(ds, band) if 1 <= band <= ds.count else None
    after_units = own.units if own is not None and own.source == "metadata" else before_units
    b, _ = _read_display(after, band, max_side, after_units)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = 10 * np.log10(b[np.isfinite(b) & (b > 0)])
    lo, hi = np.percentile(ref, [1, 99]) if ref.size else (-25.0, 5.0)
    panels = [Image.fromarray(to_db_display(x, lo, hi)) for x in (a, b)]
    gap, head = 8, 22
    w = sum(p.width for p in panels) + gap
    h = max(p.height for p in panels) + head
    canvas = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(canvas)
    x = 0
    for panel, label in zip(panels, labels, strict=True):
        canvas.paste(panel, (x, head))
        draw.text((x + 4, 4), label, fill=0)
        x += panel.width + gap
    out = Path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG")
    return out
