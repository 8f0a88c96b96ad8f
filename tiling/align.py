"""Put the SAR onto the optical grid before fusing.

Why: optical and SAR products rarely share a grid (Sentinel-2 in UTM, Sentinel-1 GRD in another
zone or in EPSG:4326, different pixel sizes and extents). Fusion is pixel-wise, so the SAR is
warped onto the optical grid: bilinear on *linear* intensity (averaging dB values would bias the
radiometry), nodata kept as NaN, and the output covers exactly the optical grid. The overlap is
checked first on the two footprints in one CRS so that disjoint inputs fail with a clear message
instead of an all-nodata result.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import array_bounds
from rasterio.warp import reproject, transform_geom
from shapely.geometry import box, mapping, shape

log = logging.getLogger(__name__)

__all__ = ["Grid", "SMALL_OVERLAP", "align_to_grid", "check_overlap", "footprint_in"]

SMALL_OVERLAP = 0.5  # warn when the SAR covers less than this fraction of the optical footprint


@dataclass(frozen=True)
class Grid:
    """Where a raster's pixels lie: CRS, affine transform and size."""

    crs: Any  # rasterio CRS or None
    transform: Any  # affine.Affine
    width: int
    height: int

    @classmethod
    def of(cls, ds: Any) -> Grid:
        """Grid of an open rasterio dataset or a tiling.raster_io.RasterMeta."""
        return cls(ds.crs, ds.transform, int(ds.width), int(ds.height))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.height, self.width

    @property
    def georeferenced(self) -> bool:
        """True with a CRS and a non-identity geotransform."""
        return self.crs is not None and self.transform is not None and not self.transform.is_identity

    def footprint(self) -> shapely.Polygon:
        """Outline of the raster in its own CRS."""
        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return box(west, south, east, north)

    def same_as(self, other: Grid, rtol: float = 1e-9) -> bool:
        """True when both grids put every pixel at the same place (no resampling needed)."""
        if self.shape != other.shape:
            return False
        if (self.crs is None) != (other.crs is None):
            return False
        if self.crs is not None and CRS.from_user_input(self.crs) != CRS.from_user_input(other.crs):
            return False
        a, b = np.asarray(self.transform)[:6], np.asarray(other.transform)[:6]
        pixel = max(abs(a[0]), abs(a[4]), 1e-300)
        return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(a), pixel) + 1e-6 * pixel))


def footprint_in(grid: Grid, crs: Any) -> shapely.Geometry:
    """The grid's footprint transformed into ``crs``, densified so that curved edges stay close."""
    poly = grid.footprint()
    if grid.crs is None or CRS.from_user_input(grid.crs) == CRS.from_user_input(crs):
        return poly
    w, s, e, n = poly.bounds
    dense = shapely.segmentize(poly, max(e - w, n - s) / 32)
    return shapely.make_valid(shape(transform_geom(grid.crs, crs, mapping(dense))))


def _describe(geom: shapely.Geometry, crs: Any) -> str:
    w, s, e, n = geom.bounds
    name = CRS.from_user_input(crs).to_string() if crs is not None else "pixel coordinates"
    return f"({w:.6g}, {s:.6g}, {e:.6g}, {n:.6g}) in {name}"


def check_overlap(optical: Grid, sar: Grid, small: float = SMALL_OVERLAP) -> float:
    """Fraction of the optical footprint that the SAR footprint covers (0..1).

    Warns (UserWarning) when the fraction is below ``small``. Inputs without CRS are compared in
    pixel coordinates and must then have the same size.

    Raises:
        ValueError: the footprints do not overlap, or one input has no CRS and the sizes differ.
    """
    if optical.crs is None or sar.crs is None:
        if optical.crs is None and sar.crs is None and optical.shape == sar.shape:
            warnings.warn(
                "OPTICAL and SAR have no CRS; assuming they share one pixel grid", UserWarning, stacklevel=2
            )
            return 1.0
        raise ValueError(
            "OPTICAL and SAR cannot be aligned: "
            f"{'OPTICAL' if optical.crs is None else 'SAR'} has no CRS; "
            "georeference it (e.g. gdal_translate -a_srs/-a_ullr) or give both inputs on one pixel grid"
        )
    opt_fp = optical.footprint()
    sar_fp = footprint_in(sar, optical.crs)
    inter = opt_fp.intersection(sar_fp)
    frac = float(inter.area / opt_fp.area) if opt_fp.area > 0 else 0.0
    if inter.is_empty or frac <= 0:
        raise ValueError(
            "OPTICAL and SAR do not overlap (footprints "
            f"{_describe(opt_fp, optical.crs)} and {_describe(sar.footprint(), sar.crs)}); "
            "check the inputs' CRS/extent"
        )
    if frac < small:
        warnings.warn(
            f"the SAR covers only {100 * frac:.1f}% of the optical footprint; the rest of the output keeps "
            "the optical pixels unfused",
            UserWarning,
            stacklevel=2,
        )
    log.info("SAR covers %.1f%% of the optical footprint", 100 * frac)
    return frac


def _integer_offset(src: Grid, dst: Grid, tol: float = 1e-6) -> tuple[int, int] | None:
    """(row, col) of dst's origin in src when dst is a whole-pixel sub-window of src, else None."""
    if src.crs is None or dst.crs is None or CRS.from_user_input(src.crs) != CRS.from_user_input(dst.crs):
        return None
    s, d = src.transform, dst.transform
    if not np.allclose([s.a, s.b, s.d, s.e], [d.a, d.b, d.d, d.e], rtol=1e-9, atol=0) or s.b or s.d:
        return None
    col = (d.c - s.c) / s.a
    row = (d.f - s.f) / s.e
    if abs(col - round(col)) > tol or abs(row - round(row)) > tol:
        return None
    r0, c0 = int(round(row)), int(round(col))
    if r0 < 0 or c0 < 0 or r0 + dst.height > src.height or c0 + dst.width > src.width:
        return None
    return r0, c0


def align_to_grid(
    sar: np.ndarray,
    src: Grid,
    dst: Grid,
    src_nodata: float | None = None,
    resampling: Resampling = Resampling.bilinear,
) -> np.ndarray:
    """Warp linear SAR intensity (or amplitude) ``sar`` (H, W) or (C, H, W) from ``src`` onto ``dst``.

    Returns float32 (H', W') or (C, H', W') on the destination grid with NaN where the SAR has no
    data (``src_nodata``, NaN/inf or outside its footprint). Same grid: returned as is; ``dst`` a
    whole-pixel sub-window of ``src``: cropped; otherwise warped with ``resampling``.

    Raises:
        ValueError: the array does not match ``src``; negative values (dB: resampling must happen on
            linear values); different grids where one has no georeferencing.
    """
    arr = np.asarray(sar)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != src.shape:
        raise ValueError(f"SAR array of shape {np.shape(sar)} does not match its grid {src.shape}")
    data = arr.astype(np.float32, copy=True)
    if src_nodata is not None and not np.isnan(src_nodata):
        data[data == src_nodata] = np.nan
    data[~np.isfinite(data)] = np.nan
    if np.nanmin(data, initial=0.0) < 0:
        raise ValueError(
            "SAR values are negative, so they look like dB; convert to linear intensity "
            "(10 ** (dB / 10)) before aligning"
        )
    if dst.same_as(src):
        return data[0] if squeeze else data
    crop = _integer_offset(src, dst)
    if crop is not None:  # dst is a sub-window of src: crop, no resampling
        r0, c0 = crop
        out = data[:, r0 : r0 + dst.height, c0 : c0 + dst.width]
        return out[0] if squeeze else out
    if not (src.georeferenced and dst.georeferenced):
        raise ValueError(
            f"SAR grid {src.shape} differs from the optical grid {dst.shape} and one of them has no "
            "georeferencing; georeference both or give them the same pixel grid"
        )
    out = np.full((data.shape[0], *dst.shape), np.nan, dtype=np.float32)
    reproject(
        source=data,
        destination=out,
        src_transform=src.transform,
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    log.info("SAR resampled onto the optical grid (%s, %dx%d)", dst.crs, dst.width, dst.height)
    return out[0] if squeeze else out
