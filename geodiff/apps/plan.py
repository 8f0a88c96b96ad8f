"""The tile-plan job: the tile grid of a scene as footprints (a GeoDataFrame), optionally cut to an AOI."""

from __future__ import annotations

import os

from geodiff.errors import InputError


def load_aoi(path: str, crs):  # noqa: ANN001, ANN201 - rasterio CRS in, shapely geometry out
    """Union of the polygons in a vector file (GeoPackage, GeoJSON, ...), reprojected to ``crs``.

    Raises:
        InputError (a ValueError): unreadable file, no features, no CRS, or a scene without CRS.
    """
    import geopandas as gpd

    try:
        aoi = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for unreadable files
        raise InputError(
            f"{path}: not a vector file GDAL can read ({exc}); give a GeoPackage/GeoJSON"
        ) from exc
    if aoi.empty:
        raise InputError(f"{path}: the AOI file has no features; draw at least one polygon")
    if aoi.crs is None:
        raise InputError(f"{path}: the AOI has no CRS; save it with one so it can be reprojected")
    if crs is None:
        raise InputError("the scene has no CRS, so an AOI cannot be placed on it; drop --aoi")
    return aoi.to_crs(crs).geometry.union_all()


def scene_plan(
    scene: str | os.PathLike,
    tile: int,
    overlap: int,
    block_tiles: int = 4,
    aoi: str | None = None,
):  # noqa: ANN201
    """GeoDataFrame of the tile footprints of a scene (optionally only those touching an AOI).

    One row per tile of the global grid (``tile`` px, ``overlap`` px, ``block_tiles`` x ``block_tiles``
    tiles per block): row, col, row_off, col_off, block_row, block_col, seed and the footprint polygon in
    the scene's CRS (the GCP-fitted affine's for GCP-georeferenced scenes). ``aoi``: a vector file;
    only tiles touching its polygons are kept.

    Raises:
        InputError: unreadable AOI, an AOI without features or CRS, or on a scene without CRS.
        tiling's RasterNotFoundError / RasterOpenError (FileNotFoundError / ValueError): bad scene.
    """
    from rasterio.transform import from_gcps

    from tiling.plan import TilePlan, TileSpec
    from tiling.raster_io import open_raster, read_meta

    with open_raster(scene) as ds:
        meta = read_meta(ds)
    transform, crs = meta.transform, meta.crs
    if meta.gcps:  # GCP-georeferenced: footprints from the GCP-fitted affine (approximate)
        transform, crs = from_gcps(meta.gcps), meta.gcp_crs
    plan = TilePlan(meta.height, meta.width, TileSpec(tile, overlap, 0, block_tiles))
    geom = load_aoi(aoi, crs) if aoi else None
    return plan.footprints(transform, crs, aoi=geom)


def write_plan(
    scene: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    tile: int,
    overlap: int,
    aoi: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Write the tile footprints of ``scene`` to a GeoPackage (layer "tiles"), atomically.

    Raises:
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
        ValueError: unreadable scene or AOI, or an AOI on a scene without CRS.
    """
    from tiling.atomic import atomic_path
    from tiling.cog import check_output_path

    out = check_output_path(out_path, overwrite, inputs=(scene,))
    gdf = scene_plan(scene, tile, overlap, aoi=aoi)
    with atomic_path(out) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer="tiles")

    return {"scene": str(scene), "out": str(out), "tiles": len(gdf), "tile": tile, "overlap": overlap}
