"""The despeckling QA job (shared/docs/PROTOCOL.md §2): ratio image, bias, ENL of a processed scene.

One streaming loop, :func:`accumulate_quality`, serves both `geodiff qa` (two files on disk) and the
despeckle job (which measures its own output before the COG gets its final name): both rasters are
read in blocks on the 32-px QA window grid, so memory depends on the block size, not the scene's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from geodiff.errors import GridMismatchError, InvalidSettingError
from sensors.quality import WINDOW, QualityAccumulator

#: (stored values (h, w)) -> (linear intensity (h, w), valid (h, w) bool)
Decoder = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def accumulate_quality(
    original: Any,
    processed: Any,
    *,
    band: int,
    processed_band: int,
    decode: Decoder,
    decode_processed: Decoder | None = None,
    strip: int = 1024,
    columns: int = 1024,
) -> QualityAccumulator:
    """Stream two open rasterio datasets of one grid in strips into a :class:`QualityAccumulator`.

    ``band`` / ``processed_band`` (1-based) are compared; ``decode`` turns the original's stored values
    (h, w) into (linear intensity (h, w) float64, valid (h, w) bool) (``decode_processed`` the processed
    file's, default the same). Pixels masked in either file (nodata, internal masks) or invalid after
    decoding are left out. Blocks are ``strip`` rows by ``columns`` columns (each rounded down to the
    QA window, 32 px), so memory depends on the block size only, whatever the scene's width; the
    figures do not depend on the block size and equal :func:`sensors.quality.quality_report` on the
    whole scene (PROTOCOL §2).
    """
    decode_processed = decode_processed or decode
    strip = max(WINDOW, strip // WINDOW * WINDOW)
    columns = max(WINDOW, columns // WINDOW * WINDOW)
    acc = QualityAccumulator()
    from tiling.geometry import PixelWindow
    from tiling.raster_io import read_window

    for row in range(0, original.height, strip):
        for col in range(0, original.width, columns):
            win = PixelWindow(row, col, min(strip, original.height - row), min(columns, original.width - col))
            y_raw = read_window(original, win, band, masked=True)
            x_raw = read_window(processed, win, processed_band, masked=True)
            y, valid_y = decode(np.ma.getdata(y_raw))
            x, valid_x = decode_processed(np.ma.getdata(x_raw))
            mask = valid_y & valid_x & ~np.ma.getmaskarray(y_raw) & ~np.ma.getmaskarray(x_raw)
            acc.add(y, x, mask, origin=(row, col))
    return acc


def _check_band(ds: Any, band: int, what: str) -> None:
    if not 1 <= band <= ds.count:
        raise InvalidSettingError(
            f"{what} {ds.name}: --band {band} does not exist, the file has {ds.count} band(s)"
        )


def _units_stated_by(dx: Any, band_x: int, dy: Any, band: int) -> str | None:  # noqa: ANN401
    """PROCESSED's stated units (a geodiff output records them in GEODIFF_UNITS) where ORIGINAL's own
    evidence cannot tell them: a despeckle run with --units, then qa, asks only once."""
    from geodiff.apps.facts import dataset_units_evidence

    stated = dataset_units_evidence(dx, band_x, values=False)
    if stated.units is None or stated.units == "complex":
        return None
    return stated.units if dataset_units_evidence(dy, band).units is None else None


def qa_files(
    original: str | os.PathLike,
    processed: str | os.PathLike,
    *,
    looks: float | None = None,
    band: int = 1,
    sensor: str = "auto",
    strip: int = 1024,
    columns: int = 1024,
    units: str | None = None,
) -> dict[str, Any]:
    """The QA report of PROCESSED against ORIGINAL (one band), as a JSON-ready dict.

    Both files are decoded to linear intensity through ORIGINAL's sensor profile (a processed file
    keeps its input's convention). Looks not given are estimated on full-resolution blocks spread
    over ORIGINAL (as `geodiff info` does). ``strip`` x ``columns``: the block read at a time (the
    figures do not depend on it). ``units``: ORIGINAL's declared units (None: the one
    units detector, as every job).

    Returns the ratio-image figures (ratio mean, L·var(ratio), bias dB, ENL in/out, windows) with
    the looks, band, sensor profile and units used.

    Raises:
        InvalidSettingError: ``band`` missing in either file, looks <= 0.
        GridMismatchError: PROCESSED is not the size of ORIGINAL.
        AmbiguousUnitsError (ValueError): the units cannot be told (pass ``units=`` / --units).
        ValueError (sensors): the units contradict the values.
    """
    from geodiff.apps.facts import detect_raster
    from sensors.detect import filled_sample
    from sensors.looks import estimate_looks
    from sensors.profiles import get_profile
    from tiling.raster_io import open_raster
    from tiling.sampling import read_blocks, read_decimated

    if looks is not None and not looks > 0:
        raise InvalidSettingError(f"--looks must be positive, got {looks}")
    with open_raster(original) as dy, open_raster(processed) as dx:
        _check_band(dy, band, "ORIGINAL")
        if units in (None, "auto") and (sensor or "auto").lower() == "auto":
            units = _units_stated_by(dx, band if dx.count >= band else 1, dy, band)
        profile = detect_raster(
            dy, sensor=sensor, kind="sar", sample=read_decimated(dy, band=band), units=units, band=band
        )
        if (dx.height, dx.width) != (dy.height, dy.width):
            raise GridMismatchError(
                f"PROCESSED {processed} is {dx.width}x{dx.height} px but ORIGINAL is "
                f"{dy.width}x{dy.height}: pass the despeckled version of the same scene"
            )
        band_x = band if dx.count >= band else 1
        _check_band(dx, band_x, "PROCESSED")
        # A despeckled SLC comes back as intensity (no phase), every other convention as it went in.
        out_profile = profile
        if profile.units == "complex" and not np.dtype(dx.dtypes[band_x - 1]).kind == "c":
            out_profile = get_profile("sar-intensity")
        out_profile.check_values(filled_sample(read_decimated(dx, band=band_x), dx.nodata), dx.nodata)
        estimate = None
        if looks is None:
            intensity, mask = profile.decode(read_blocks(dy, band), dy.nodata)
            estimate = estimate_looks(intensity, mask)
            looks = estimate.looks
        acc = accumulate_quality(
            dy,
            dx,
            band=band,
            processed_band=band_x,
            decode=lambda v: profile.decode(v, dy.nodata),
            decode_processed=lambda v: out_profile.decode(v, dx.nodata),
            strip=strip,
            columns=columns,
        )
        report = acc.report(looks, "given" if estimate is None else "estimated")
    out: dict[str, Any] = {
        "original": str(original),
        "processed": str(processed),
        "band": band,
        "sensor": profile.name,
        "units": profile.units,
        **report.to_dict(),
    }
    if estimate is not None:
        out["looks_interval"] = [estimate.low, estimate.high]
    out["nominal_looks"] = profile.nominal_looks
    return out
