"""Output checks and the window-by-window Cloud-Optimized GeoTIFF writer.

:class:`CogWriter` writes windows into a tiled scratch GeoTIFF in the output folder, then turns it
into a COG with GDAL's COG driver through :func:`tiling.atomic.atomic_path`, so only a complete COG
ever appears under the final name. GDAL's COG driver is used instead of ``rio_cogeo.cog_translate``
because the latter warps GCP-georeferenced rasters onto a geotransform and adds an
OVERVIEW_RESAMPLING tag; the COG driver keeps GCPs, tags, descriptions, scales/offsets and units as
they are (``rio_cogeo.cogeo.cog_validate`` checks the result in the tests).
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning

from tiling.atomic import (
    atomic_path,
    check_free_space,
    free_bytes,
    remove_leftovers,
    remove_quietly,
    scratch_path,
    write_error,
)
from tiling.errors import (
    OutputExistsError,
    OutputFolderError,
    OutputIsFolderError,
    OutputIsInputError,
    OutputNotWritableError,
    OutputSuffixError,
    OutputVerifyError,
    TileFunctionError,
)
from tiling.geometry import PixelWindow
from tiling.raster_io import RasterMeta, is_gdal_path

log = logging.getLogger(__name__)

__all__ = ["CogWriter", "check_output_path", "verify_raster"]

#: Accepted output file extensions (GeoTIFF; the writer always writes a COG).
GEOTIFF_SUFFIXES = (".tif", ".tiff")


def check_output_path(
    out_path: str | os.PathLike,
    overwrite: bool,
    inputs: tuple = (),
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """The output path as a Path, after refusing every output that cannot or must not be written.

    ``inputs`` are the job's input paths (GDAL path strings among them are skipped: they are never
    local files an output could clobber); ``suffixes``: the accepted extensions (lower case), if any
    (:data:`GEOTIFF_SUFFIXES` for rasters).

    Raises:
        OutputIsInputError (ValueError): the output is one of the inputs.
        OutputSuffixError (ValueError): the extension is not one of ``suffixes``.
        OutputIsFolderError (IsADirectoryError): the output path is a folder.
        OutputExistsError (FileExistsError): it exists and ``overwrite`` is False.
        OutputFolderError (FileNotFoundError): its folder does not exist.
        OutputNotWritableError (PermissionError): its folder is not writable.
    """
    out = Path(out_path)
    for src in inputs:
        if is_gdal_path(src):
            continue
        if Path(src).exists() and out.exists() and out.resolve() == Path(src).resolve():
            raise OutputIsInputError(
                f"{out}: the output is the input; choose another output path (inputs are never modified)"
            )
    if suffixes and out.suffix.lower() not in suffixes and not out.is_dir():
        got = f"'{out.suffix}'" if out.suffix else "no extension"
        raise OutputSuffixError(
            f"{out}: has {got}, but the output is a Cloud-Optimized GeoTIFF; name it with one of "
            f"{', '.join(suffixes)} (e.g. {out.with_suffix(suffixes[0]).name})"
        )
    if out.is_dir():
        raise OutputIsFolderError(f"{out}: is a folder; give an output file name such as {out / 'out.tif'}")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise OutputFolderError(
            f"{folder}: output folder does not exist; create it first (mkdir -p {folder})"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputNotWritableError(f"{folder}: output folder is not writable; choose another output folder")
    return out


def verify_raster(
    path: str | os.PathLike,
    *,
    width: int,
    height: int,
    count: int,
    dtype: str,
    crs: object = None,
    transform: object = None,
    gcps: int = 0,
    final: str | os.PathLike | None = None,
) -> None:
    """Re-open a just-written raster and check it before it gets its final name.

    Checks the header (size, band count, dtype, CRS, geotransform or the number of GCPs), that the
    file size on disk matches what the file system reports, and that every block of every band and
    every overview level decodes.

    Raises:
        OutputVerifyError (OSError): any check failed; the message names ``final`` (else ``path``)
        and what was wrong.
    """
    name = final or path

    def fail(what: str) -> OutputVerifyError:
        return OutputVerifyError(
            f"{name}: the written file failed verification ({what}); nothing was written under this "
            "name. Check the disk (space, errors) and rerun"
        )

    size = os.path.getsize(path)
    if size == 0:
        raise fail("it is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                got = (src.width, src.height, src.count, src.dtypes[0])
                if got != (width, height, count, np.dtype(dtype).name):
                    raise fail(
                        f"{got[0]}x{got[1]} px, {got[2]} band(s) of {got[3]}; expected "
                        f"{width}x{height} px, {count} band(s) of {np.dtype(dtype).name}"
                    )
                if gcps:
                    if len(src.gcps[0]) != gcps:
                        raise fail(f"{len(src.gcps[0])} GCPs instead of {gcps}")
                else:
                    if crs is not None and src.crs != crs:
                        raise fail(f"CRS {src.crs} instead of {crs}")
                    if transform is not None and not src.transform.almost_equals(transform):
                        raise fail(
                            f"geotransform {tuple(src.transform)[:6]} instead of {tuple(transform)[:6]}"
                        )
                for _, win in src.block_windows(1):
                    src.read(window=win)
                levels = len(src.overviews(1))
            for level in range(levels):
                with rasterio.open(path, overview_level=level) as ovr:
                    for _, win in ovr.block_windows(1):
                        ovr.read(window=win)
    except OutputVerifyError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to decode means a broken file
        raise fail(f"{type(exc).__name__}: {str(exc).strip() or 'unreadable'}") from exc


class CogWriter:
    """Window-by-window writer that only ever shows a complete COG under the final name.

    Use as a context manager; :meth:`write` puts (C, h, w) arrays at :class:`PixelWindow` places. On
    any exception (``KeyboardInterrupt`` included) the scratch files are removed and nothing appears
    under ``out_path``.

    Args:
        out_path: the COG to write (checked by :func:`check_output_path`).
        meta: the input's :class:`~tiling.raster_io.RasterMeta`; georeferencing, tags, descriptions,
            scales/offsets, units and colour interpretation are copied (per-band items only when the
            output has as many bands as the input).
        count: output bands (default ``meta.count``); dtype: output numpy dtype name.
        nodata: output nodata (default ``meta.nodata``); overwrite / inputs: see check_output_path.
        blocksize: COG block edge (pixels); compress: COG compression; overviews: build overviews.
        descriptions: output band names (default: the input's when the counts match).
        before_cog: ``before_cog(tmp_path)`` runs on the complete scratch GeoTIFF before it becomes the
            COG (e.g. to read it back and add QA tags), still inside the all-or-nothing guarantee.

    Raises:
        The :func:`check_output_path` errors on construction; TileFunctionError (ValueError) from
        :meth:`write` when the data does not match the window.
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
        self.out = check_output_path(out_path, overwrite, inputs, GEOTIFF_SUFFIXES)
        self.descriptions = descriptions
        self.before_cog = before_cog
        self.meta = meta
        self.count = count or meta.count
        self.dtype = dtype
        self.nodata = meta.nodata if nodata is None else nodata
        self.blocksize = blocksize
        self.compress = compress
        self.overviews = overviews
        self.tmp = scratch_path(self.out)
        self._dst: rasterio.io.DatasetWriter | None = None
        self.folder = self.out.parent if str(self.out.parent) else Path(".")
        remove_leftovers(self.out)
        # scratch GeoTIFF (fast compression: at most about the raw size) + the COG with its overviews
        raw = meta.width * meta.height * self.count * np.dtype(dtype).itemsize
        self.needed = int(raw * (1 + 4 / 3))
        self.free_before = free_bytes(self.folder)
        check_free_space(self.folder, self.needed)
        self._block_bytes = blocksize * blocksize * self.count * np.dtype(dtype).itemsize

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
            # The scratch file is rewritten as a COG at the end: compress it fast, not small.
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
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dst = rasterio.open(self.tmp, "w", **self._profile())
            self._copy_metadata(self._dst)
        except Exception as exc:
            err = self._translated(exc)
            self._cleanup()
            if err is exc:
                raise
            raise err from exc
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
        window: PixelWindow,
        bands: list[int] | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Write ``data`` (C, h, w) at ``window`` into the 1-based output ``bands`` (default: all).

        ``valid`` (C, h, w) bool is written as the per-dataset mask when the input's validity came
        from a mask or alpha band (only with the write that holds output band 1).

        Raises:
            TileFunctionError (ValueError): ``data`` is not (len(bands), window.height, window.width).
        """
        if self._dst is None:
            raise RuntimeError("use CogWriter as a context manager: with CogWriter(...) as w: w.write(...)")
        idx = bands or list(range(1, self.count + 1))
        if data.ndim != 3 or data.shape[-2:] != window.shape or data.shape[0] != len(idx):
            raise TileFunctionError(
                f"cannot write an array of shape {data.shape} to {window} in {len(idx)} band(s); "
                f"expected ({len(idx)}, {window.height}, {window.width})"
            )
        win = window.to_rasterio()
        try:
            self._dst.write(data.astype(self.dtype, copy=False), idx, window=win)
            if valid is not None and self.meta.uses_masks and idx[0] == 1:
                self._dst.write_mask(np.where(valid[0], 255, 0).astype(np.uint8), window=win)
        except Exception as exc:
            err = self._translated(exc)
            if err is exc:
                raise
            raise err from exc

    def _translated(self, exc: Exception) -> BaseException:
        """``exc`` as a named OutputWriteError where it is a write failure (disk full, I/O error).

        Called while this writer's temporary files still exist. Room a failed step needed: two blocks
        while the scratch file is written; once it is closed, the whole COG (GDAL removes a COG it
        could not finish): the scratch file's size plus a third for the overviews.
        """
        room = 2 * self._block_bytes
        if self._dst is None and self.tmp.exists():
            room = max(room, self.tmp.stat().st_size * 4 // 3)
        space = (self.folder, self.needed, self.free_before, room)
        if isinstance(exc, OutputVerifyError):  # a silently failed write: full disk is the usual cause
            full = write_error(OSError("verification failed"), *space)
            return full if full is not None and full.errno == errno.ENOSPC else exc
        return write_error(exc, *space) or exc

    def _finish(self) -> None:
        assert self._dst is not None
        dst, self._dst = self._dst, None
        try:
            dst.close()
        except Exception as exc:
            err = self._translated(exc)
            if err is exc:
                raise
            raise err from exc
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
        # scratch GeoTIFF -> COG beside the final name, fsynced, re-opened and verified, then renamed
        with warnings.catch_warnings(), atomic_path(self.out, verify=self._verify) as tmp_cog:
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            try:
                rasterio.shutil.copy(str(self.tmp), str(tmp_cog), driver="COG", **opts)
            except Exception as exc:
                err = self._translated(exc)
                if err is exc:
                    raise
                raise err from exc

    def _verify(self, path: Path) -> None:
        m = self.meta
        try:
            verify_raster(
                path,
                width=m.width,
                height=m.height,
                count=self.count,
                dtype=self.dtype,
                crs=None if m.gcps else m.crs,
                transform=None if m.gcps else m.transform,
                gcps=len(m.gcps or ()),
                final=self.out,
            )
        except OutputVerifyError as exc:
            err = self._translated(exc)
            if err is exc:
                raise
            raise err from exc

    def _cleanup(self) -> None:
        if self._dst is not None:
            try:
                self._dst.close()
            except Exception:  # noqa: BLE001 - already failing; cleanup must not mask the first error
                log.debug("closing the scratch output failed", exc_info=True)
            self._dst = None
        remove_quietly(self.tmp)

    def __exit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        try:
            if exc_type is None:
                self._finish()
        finally:
            self._cleanup()
        return False
