"""The tile-plan job: the tile grid of a scene as footprints (a GeoDataFrame), optionally cut to an AOI."""

from __future__ import annotations

import os


def load_aoi(path: str, crs):  # noqa: ANN001, ANN201 - rasterio CRS in, shapely geometry out
    """Union of the polygons in a vector file, reprojected to ``crs``."""
    import geopandas as gpd

    try:
        aoi = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for unreadable files
        raise ValueError(
            f"{path}: not a vector file GDAL can read ({exc}); give a GeoPackage/GeoJSON"
        ) from exc
    if aoi.empty:
        raise ValueError(f"{path}: the AOI file has no features; draw at least one polygon")
    if aoi.crs is None:
        raise ValueError(f"{path}: the AOI has no CRS; save it with one so it can be reprojected")
    if crs is None:
        raise ValueError("the scene has no CRS, so an AOI cannot be placed on it; drop --aoi")
    return aoi.to_crs(crs).geometry.union_all()


def scene_plan(
    scene: str | os.PathLike,
    tile: int,
    overlap: int,
    halo: int = 0,
    block_tiles: int = 4,
    aoi: str | None = None,
):  # noqa: ANN201
    """GeoDataFrame of the tile footprints of a scene (optionally only those touching an AOI)."""
    from rasterio.transform import from_gcps

    from tiling.plan import TilePlan
    from tiling.raster_io import open_raster, read_meta

    with open_raster(scene) as ds:
        meta = read_meta(ds)
    transform, crs = meta.transform, meta.crs
    if meta.gcps:  # GCP-georeferenced: footprints from the GCP-fitted affine (approximate)
        transform, crs = from_gcps(meta.gcps), meta.gcp_crs
    plan = TilePlan(meta.height, meta.width, tile, overlap, halo, block_tiles)
    geom = load_aoi(aoi, crs) if aoi else None
    return plan.footprints(transform, crs, aoi=geom)


def write_plan(
    scene: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    tile: int,
    overlap: int,
    halo: int = 0,
    aoi: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Write the tile footprints of ``scene`` to a GeoPackage (layer "tiles"), atomically.

    Raises:
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
        ValueError: unreadable scene or AOI, or an AOI on a scene without CRS.
    """
    import uuid
    from pathlib import Path

    from tiling.raster_io import check_output_path

    out = check_output_path(out_path, overwrite, inputs=(scene,))
    gdf = scene_plan(scene, tile, overlap, halo, aoi=aoi)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part.gpkg")
    try:
        gdf.to_file(tmp, driver="GPKG", layer="tiles")
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return {"scene": str(scene), "out": str(out), "tiles": len(gdf), "tile": tile, "overlap": overlap,
            "halo": halo}  # fmt: skip
