"""The one raster opener, raster metadata, and guarded window reads.

:func:`open_raster` is how every part of geodiff opens a raster for reading. GDAL path strings
(``/vsizip/archive.zip/scene.tif``, ``/vsicurl/https://host/scene.tif``, ``s3://bucket/key.tif``,
``zip+file://archive.zip!scene.tif``, ``HDF5:"file.h5"://dataset``) reach ``rasterio.open`` exactly as
given: they never go through :mod:`pathlib`, which would collapse ``//`` into ``/`` and turn
``/vsicurl/https://host`` into ``/vsicurl/https:/host``. Local files are checked first so that a
missing, empty, unreadable file or a folder fails with a message naming the problem and the fix.

:func:`read_window` reads one :class:`~tiling.geometry.PixelWindow` and turns GDAL's late failures
(a truncated GeoTIFF opens fine; its missing blocks fail on read) into an error naming the file and
the window.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError

from tiling.errors import (
    RasterIsFolderError,
    RasterNotFoundError,
    RasterOpenError,
    RasterPermissionError,
    RasterReadError,
)
from tiling.geometry import PixelWindow

log = logging.getLogger(__name__)

__all__ = [
    "GDAL_CACHE_BYTES",
    "RasterMeta",
    "gdal_path",
    "is_gdal_path",
    "open_raster",
    "read_meta",
    "read_window",
]

# GDAL block cache for block-wise jobs: enough for a few rows of 512 px blocks, constant in scene size.
GDAL_CACHE_BYTES = 64 * 2**20

# "/vsizip/...", "/vsicurl/...", URLs and URIs ("s3://", "zip+file://", "https://"), and GDAL
# subdataset names ("NETCDF:", "HDF5:", "SENTINEL2_L1C:" ...; two letters at least, so "C:" stays a drive).
_GDAL_PATH = re.compile(r"^(/vsi[a-z0-9_]+/|[a-z][a-z0-9+.-]*://|[A-Z][A-Z0-9_]+:)", re.IGNORECASE)


def is_gdal_path(path: str | os.PathLike) -> bool:
    """True for GDAL virtual paths, URLs/URIs and subdataset names; False for ordinary local paths."""
    return isinstance(path, str) and bool(_GDAL_PATH.match(path))


def gdal_path(path: str | os.PathLike) -> str:
    """The string to hand to GDAL: a GDAL path string unchanged, a local path as ``os.fspath``.

    Raises:
        TypeError: ``path`` is neither a string nor a path-like object.
    """
    if isinstance(path, str):
        return path
    if isinstance(path, os.PathLike):
        return os.fspath(path)
    raise TypeError(f"a raster path must be a str or os.PathLike, not {type(path).__name__}")


def _check_local(name: str) -> None:
    p = Path(name)
    if not p.exists():
        raise RasterNotFoundError(f"{name}: no such file (check the path)")
    if p.is_dir():
        raise RasterIsFolderError(f"{name}: is a folder, not a raster file; give the file inside it")
    if not os.access(p, os.R_OK):
        raise RasterPermissionError(f"{name}: not readable; fix its permissions (chmod +r) or copy it")
    if p.stat().st_size == 0:
        raise RasterOpenError(f"{name}: the file is empty (0 bytes); it is not a raster. Copy it again")


def open_raster(path: str | os.PathLike) -> rasterio.io.DatasetReader:
    """Open a raster for reading (a context manager, like ``rasterio.open``).

    ``path`` is a local file (str or path-like) or a GDAL path string (``/vsizip/``, ``/vsicurl/``,
    ``s3://``, ``zip+file://``, a subdataset name), passed to GDAL unchanged.

    Raises:
        RasterNotFoundError (FileNotFoundError): the local file does not exist.
        RasterIsFolderError (IsADirectoryError): the path is a folder.
        RasterPermissionError (PermissionError): the file is not readable.
        RasterOpenError (ValueError): empty, truncated or not a raster GDAL can read, or a GDAL path
            GDAL cannot open (wrong member of an archive, unreachable URL).
    """
    name = gdal_path(path)
    remote = is_gdal_path(name)
    if not remote:
        _check_local(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(name)
    except RasterioIOError as exc:
        reason = _reason(exc)
        if remote:
            raise RasterOpenError(
                f"{name}: GDAL cannot open this path ({reason}); check the member name inside the "
                "archive or the URL, and that the server or bucket is reachable from this machine"
            ) from exc
        raise RasterOpenError(
            f"{name}: not a raster GDAL can read ({reason}); give a GeoTIFF/COG/VRT, or copy the file "
            "again if it may be truncated"
        ) from exc


def read_window(
    ds: rasterio.io.DatasetReader,
    window: PixelWindow,
    bands: list[int] | int | None = None,
    *,
    masks: bool = False,
    **kwargs: Any,
) -> np.ndarray:
    """Pixels of ``window`` (inside the raster) from an open dataset, in the file's dtype.

    ``bands`` are 1-based (a list gives (C, h, w), an int (h, w), None all bands); ``masks=True`` reads
    GDAL's validity masks (uint8, 0 = invalid) instead of the pixels; ``kwargs`` go to ``ds.read``
    (e.g. ``out_shape``, ``resampling``, ``masked``).

    Raises:
        RasterReadError (OSError): GDAL failed on the blocks of that window (e.g. a truncated file).
    """
    read = ds.read_masks if masks else ds.read
    try:
        return read(bands, window=window.to_rasterio(), **kwargs)
    except RasterioError as exc:
        raise RasterReadError(
            f"{ds.name}: rows {window.row}-{window.row_stop - 1}, cols {window.col}-{window.col_stop - 1} "
            f"could not be read ({_reason(exc)}); the file may be truncated or damaged: copy or "
            "download it again"
        ) from exc


def _reason(exc: BaseException) -> str:
    """GDAL's own words: rasterio puts them in the cause ("See previous exception for details")."""
    cause = exc.__cause__ or exc.__context__
    text = str(cause if cause is not None and str(cause) else exc)
    return text.splitlines()[0] if text else type(exc).__name__


# ---- metadata -----------------------------------------------------------------------------------
@dataclass
class RasterMeta:
    """Everything about a raster that an output must keep, apart from its pixels.

    Sizes in pixels; ``dtype`` is the first band's numpy dtype name; ``crs``/``transform`` are rasterio
    objects (identity transform when absent); ``gcps`` rasterio GroundControlPoints; per-band tuples
    (``descriptions``, ``scales``, ``offsets``, ``units``, ``colorinterp``) have ``count`` entries.
    ``uses_masks`` is True when validity comes from an internal mask or alpha band, not nodata.
    ``nodata`` is band 1's nodata, ``nodatavals`` every band's (see :meth:`band_nodata`).
    """

    width: int
    height: int
    count: int
    dtype: str
    crs: Any = None
    transform: Any = None
    gcps: list = field(default_factory=list)
    gcp_crs: Any = None
    nodata: float | None = None
    nodatavals: tuple = ()  # per band (a VRT or GDAL-written file may give each band its own)
    descriptions: tuple = ()
    tags: dict = field(default_factory=dict)
    band_tags: list = field(default_factory=list)
    scales: tuple = ()
    offsets: tuple = ()
    units: tuple = ()
    colorinterp: tuple = ()
    uses_masks: bool = False

    def band_nodata(self, band: int) -> float | None:
        """The nodata value of 1-based ``band`` (its own where the file gives each band one)."""
        return self.nodatavals[band - 1] if len(self.nodatavals) >= band else self.nodata

    @property
    def mixed_nodata(self) -> bool:
        """True when the bands declare different nodata values (a GeoTIFF holds only one)."""
        vals = {("nan" if v is not None and np.isnan(v) else v) for v in self.nodatavals}
        return len(vals) > 1

    @property
    def georeferenced(self) -> bool:
        """True with GCPs or with a CRS and a non-identity geotransform."""
        return bool(self.gcps) or (
            self.crs is not None and self.transform is not None and not self.transform.is_identity
        )


def read_meta(ds: rasterio.io.DatasetReader) -> RasterMeta:
    """The :class:`RasterMeta` of an open dataset (reads headers only, no pixels)."""
    gcps, gcp_crs = ds.gcps
    return RasterMeta(
        width=ds.width,
        height=ds.height,
        count=ds.count,
        dtype=ds.dtypes[0],
        crs=ds.crs,
        transform=ds.transform,
        gcps=list(gcps),
        gcp_crs=gcp_crs,
        nodata=ds.nodata,
        nodatavals=tuple(ds.nodatavals),
        descriptions=tuple(ds.descriptions),
        tags=ds.tags(),
        band_tags=[ds.tags(i + 1) for i in range(ds.count)],
        scales=tuple(ds.scales),
        offsets=tuple(ds.offsets),
        units=tuple(ds.units),
        colorinterp=tuple(ds.colorinterp),
        uses_masks=any(
            MaskFlags.per_dataset in flags or MaskFlags.alpha in flags for flags in ds.mask_flag_enums
        ),
    )
