"""Raster input and output for block-wise processing.

Input: :class:`RasterSource` reads any pixel window of a GeoTIFF/COG/VRT on demand (it holds only a
path, so it pickles cheaply to dask workers); pixels outside the raster are reflect-padded by index,
so a block at the edge sees exactly what an untiled, reflect-padded scene would show.

Output: :class:`CogWriter` writes windows into a tiled GeoTIFF under a temporary name in the output
folder, then turns it into a Cloud-Optimized GeoTIFF with GDAL's COG driver and renames it into place
atomically. GDAL's COG driver is used instead of ``rio_cogeo.cog_translate`` because the latter warps
GCP-georeferenced rasters onto a geotransform and adds an OVERVIEW_RESAMPLING tag; the COG driver
keeps GCPs, tags, descriptions, scales/offsets and units as they are. ``rio_cogeo.cogeo.cog_validate``
checks the result in the tests.
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

log = logging.getLogger(__name__)

# GDAL block cache for block-wise jobs: enough for a few rows of 512 px blocks, constant in scene size.
GDAL_CACHE_BYTES = 64 * 2**20


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer pixel index onto [0, n) by mirror reflection without repeating the edge.

    Same as ``numpy.pad(mode="reflect")`` (``scipy.ndimage`` mode "mirror"), for any pad width.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.abs(idx) % period
    return np.where(m >= n, period - m, m)


# ---- metadata -----------------------------------------------------------------------------------
@dataclass
class RasterMeta:
    """Everything about a raster that an output must keep, apart from its pixels."""

    width: int
    height: int
    count: int
    dtype: str
    crs: Any = None
    transform: Any = None
    gcps: list = field(default_factory=list)
    gcp_crs: Any = None
    nodata: float | None = None
    descriptions: tuple = ()
    tags: dict = field(default_factory=dict)
    band_tags: list = field(default_factory=list)
    scales: tuple = ()
    offsets: tuple = ()
    units: tuple = ()
    colorinterp: tuple = ()
    uses_masks: bool = False  # validity from an internal mask or alpha band, not from a nodata value

    @property
    def georeferenced(self) -> bool:
        return bool(self.gcps) or (self.crs is not None and not self.transform.is_identity)


def read_meta(ds: rasterio.io.DatasetReader) -> RasterMeta:
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


def open_raster(path: str | os.PathLike) -> rasterio.io.DatasetReader:
    """Open a raster for reading or raise an error naming the problem and the fix."""
    p = Path(path)
    if not str(path).startswith(("/vsi", "http://", "https://", "s3://")):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file (check the path)")
        if p.is_dir():
            raise IsADirectoryError(f"{p}: is a folder, not a raster file")
        if p.stat().st_size == 0:
            raise ValueError(f"{p}: the file is empty (0 bytes); it is not a raster")
        if not os.access(p, os.R_OK):
            raise PermissionError(f"{p}: not readable; fix its permissions (chmod +r)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(p)
    except RasterioIOError as exc:
        raise ValueError(f"{p}: not a raster GDAL can read ({str(exc).splitlines()[0]})") from exc


# ---- input --------------------------------------------------------------------------------------
def _valid_mask(data: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = np.isfinite(data)
    if nodata is not None and not np.isnan(nodata):
        valid &= data != nodata
    return valid


class RasterSource:
    """Windowed, reflect-padded reads of selected bands of a raster file (picklable: holds a path)."""

    def __init__(self, path: str | os.PathLike, bands: list[int] | None = None) -> None:
        self.path = str(path)
        with open_raster(self.path) as ds:
            self.meta = read_meta(ds)
        self.bands = list(bands) if bands else list(range(1, self.meta.count + 1))
        self._ds: rasterio.io.DatasetReader | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_ds"] = None
        return state

    @property
    def height(self) -> int:
        return self.meta.height

    @property
    def width(self) -> int:
        return self.meta.width

    @property
    def nodata(self) -> float | None:
        return self.meta.nodata

    @property
    def compute_dtype(self) -> np.dtype:
        return np.dtype(np.float64) if np.dtype(self.meta.dtype) == np.float64 else np.dtype(np.float32)

    def _dataset(self) -> rasterio.io.DatasetReader:
        if self._ds is None or self._ds.closed:
            self._ds = open_raster(self.path)
        return self._ds

    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()
            self._ds = None

    def _read_raw(self, r0: int, c0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds, win = self._dataset(), Window(c0, r0, w, h)
            masks = ds.read_masks(self.bands, window=win) > 0 if self.meta.uses_masks else None
            return ds.read(self.bands, window=win), masks

    def read(self, row0: int, col0: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (C, h, w) in the compute dtype and their validity mask; the window may pass the edges."""
        rows = reflect_index(np.arange(row0, row0 + height), self.height)
        cols = reflect_index(np.arange(col0, col0 + width), self.width)
        rlo, rhi, clo, chi = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        raw, masks = self._read_raw(rlo, clo, rhi - rlo + 1, chi - clo + 1)
        inside = row0 >= 0 and col0 >= 0 and row0 + height <= self.height and col0 + width <= self.width
        if not inside:
            raw = raw[:, rows - rlo][:, :, cols - clo]
            masks = None if masks is None else masks[:, rows - rlo][:, :, cols - clo]
        valid = _valid_mask(raw, self.nodata)
        if masks is not None:
            valid &= masks
        return raw.astype(self.compute_dtype, copy=False), valid


class ArraySource:
    """The same interface over an in-memory (C, H, W) or (H, W) array (tests, small scenes)."""

    def __init__(self, array: np.ndarray, nodata: float | None = None) -> None:
        a = np.asarray(array)
        self.array = a[None] if a.ndim == 2 else a
        self.meta = RasterMeta(
            width=self.array.shape[2],
            height=self.array.shape[1],
            count=self.array.shape[0],
            dtype=str(a.dtype),
        )
        self.meta.nodata = nodata
        self.bands = list(range(1, self.array.shape[0] + 1))

    height = RasterSource.height
    width = RasterSource.width
    nodata = RasterSource.nodata
    compute_dtype = RasterSource.compute_dtype

    def close(self) -> None:
        pass

    def read(self, row0: int, col0: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        rows = reflect_index(np.arange(row0, row0 + height), self.height)
        cols = reflect_index(np.arange(col0, col0 + width), self.width)
        raw = self.array[:, rows][:, :, cols]
        return raw.astype(self.compute_dtype, copy=False), _valid_mask(raw, self.nodata)


# ---- output -------------------------------------------------------------------------------------
def check_output_path(out_path: str | os.PathLike, overwrite: bool, inputs: tuple = ()) -> Path:
    """Refuse outputs that clobber an input, an existing file (unless overwrite) or an unwritable folder."""
    out = Path(out_path)
    for src in inputs:
        if Path(src).exists() and out.exists() and out.resolve() == Path(src).resolve():
            raise ValueError(
                f"{out}: the output is the input; choose another output path (inputs are never modified)"
            )
    if out.is_dir():
        raise IsADirectoryError(f"{out}: is a folder; give an output file name such as {out / 'out.tif'}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: output folder does not exist; create it first (mkdir -p {folder})"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{folder}: output folder is not writable; choose another output folder")
    return out


class CogWriter:
    """Window-by-window writer that only ever shows a complete COG under the final name.

    Use as a context manager: on any exception (KeyboardInterrupt included) the temporary files are
    removed and nothing appears under ``out_path``.
    """

    def __init__(
        self,
        out_path: str | os.PathLike,
        meta: RasterMeta,
        *,
        count: int | None = None,
        dtype: str = "float32",
        nodata: float | None = None,
        overwrite: bool = False,
        inputs: tuple = (),
        blocksize: int = 512,
        compress: str = "DEFLATE",
        overviews: bool = True,
        descriptions: list[str] | None = None,
        before_cog: Callable[[str], None] | None = None,
    ) -> None:
        """``descriptions`` names the output bands (default: the input's, when the counts match);
        ``before_cog(tmp_path)`` runs on the complete temporary GeoTIFF before it becomes the COG
        (e.g. to read it back and add QA tags), still inside the all-or-nothing guarantee."""
        self.out = check_output_path(out_path, overwrite, inputs)
        self.descriptions = descriptions
        self.before_cog = before_cog
        self.meta = meta
        self.count = count or meta.count
        self.dtype = dtype
        self.nodata = meta.nodata if nodata is None else nodata
        self.blocksize = blocksize
        self.compress = compress
        self.overviews = overviews
        token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp = self.out.with_name(f".{self.out.name}.{token}.part.tif")
        self.tmp_cog = self.out.with_name(f".{self.out.name}.{token}.cog.tif")
        self._dst: rasterio.io.DatasetWriter | None = None

    def _profile(self) -> dict:
        m = self.meta
        bs = self.blocksize
        tiled = m.width >= 16 and m.height >= 16
        prof: dict = {
            "driver": "GTiff",
            "width": m.width,
            "height": m.height,
            "count": self.count,
            "dtype": self.dtype,
            "nodata": self.nodata,
            "tiled": tiled,
            # The temporary file is rewritten as a COG at the end: compress it fast, not small.
            "compress": "ZSTD",
            "zstd_level": 1,
            "BIGTIFF": "IF_SAFER",
        }
        if tiled:
            prof.update(
                blockxsize=min(bs, 16 * ((m.width + 15) // 16)),
                blockysize=min(bs, 16 * ((m.height + 15) // 16)),
            )
        if not m.gcps:  # GCPs (and their CRS) are set after opening, in _copy_metadata
            prof["crs"] = m.crs
            prof["transform"] = m.transform
        return prof

    def __enter__(self) -> CogWriter:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._dst = rasterio.open(self.tmp, "w", **self._profile())
        self._copy_metadata(self._dst)
        return self

    def _copy_metadata(self, dst: rasterio.io.DatasetWriter) -> None:
        m = self.meta
        if m.gcps:
            dst.gcps = (m.gcps, m.gcp_crs)
        if m.tags:
            dst.update_tags(**m.tags)
        same_bands = self.count == m.count
        for i in range(self.count):
            if self.descriptions is not None:
                if i < len(self.descriptions) and self.descriptions[i]:
                    dst.set_band_description(i + 1, self.descriptions[i])
            elif same_bands and m.descriptions and m.descriptions[i]:
                dst.set_band_description(i + 1, m.descriptions[i])
            if same_bands and m.band_tags and m.band_tags[i]:
                dst.update_tags(i + 1, **m.band_tags[i])
        if same_bands and m.scales:
            dst.scales = m.scales
            dst.offsets = m.offsets
        if same_bands and m.colorinterp:
            dst.colorinterp = m.colorinterp
        if same_bands and m.units and any(m.units):
            dst.units = tuple(u or "" for u in m.units)

    def write(
        self,
        data: np.ndarray,
        row0: int,
        col0: int,
        bands: list[int] | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Write (C, h, w) pixels at (row0, col0) into the given 1-based output bands (default: all)."""
        assert self._dst is not None, "use CogWriter as a context manager"
        idx = bands or list(range(1, self.count + 1))
        h, w = data.shape[-2:]
        self._dst.write(data.astype(self.dtype, copy=False), idx, window=Window(col0, row0, w, h))
        if valid is not None and self.meta.uses_masks and idx[0] == 1:
            # input validity came from an internal mask/alpha band: keep it as a per-dataset mask
            self._dst.write_mask(np.where(valid[0], 255, 0).astype(np.uint8), window=Window(col0, row0, w, h))

    def _finish(self) -> None:
        assert self._dst is not None
        self._dst.close()
        self._dst = None
        if self.before_cog is not None:
            self.before_cog(str(self.tmp))
        predictor = "FLOATING_POINT" if np.dtype(self.dtype).kind == "f" else "YES"
        opts = {
            "COMPRESS": self.compress,
            "PREDICTOR": predictor,
            "BLOCKSIZE": self.blocksize,
            "OVERVIEWS": "AUTO" if self.overviews else "NONE",
            "OVERVIEW_RESAMPLING": "AVERAGE",
            "BIGTIFF": "IF_SAFER",
            "NUM_THREADS": "ALL_CPUS",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            rasterio.shutil.copy(str(self.tmp), str(self.tmp_cog), driver="COG", **opts)
        os.replace(self.tmp_cog, self.out)

    def _cleanup(self) -> None:
        if self._dst is not None:
            try:
                self._dst.close()
            except Exception:  # noqa: BLE001 - already failing; cleanup must not mask the first error
                log.debug("closing the temporary output failed", exc_info=True)
            self._dst = None
        for p in (self.tmp, self.tmp_cog):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove temporary file %s", p)

    def __exit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        try:
            if exc_type is None:
                self._finish()
        finally:
            self._cleanup()
        return False
