"""Helpers of the reliability suite: synthetic scenes, file hashes, leftover checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def write_scene(path: Path, data: np.ndarray, **profile: object) -> Path:
    """A georeferenced GeoTIFF of ``data`` (bands, h, w) or (h, w) float32 (UTM 31N, 10 m pixels)."""
    import rasterio
    from rasterio.transform import from_origin

    arr = data if data.ndim == 3 else data[None]
    prof = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": str(arr.dtype),
        "crs": "EPSG:32631",
        "transform": from_origin(500000, 5000000, 10, 10),
    }
    prof.update(profile)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr)
    return path


def speckled(h: int, w: int, looks: float = 4.0, seed: int = 0) -> np.ndarray:
    """(h, w) float32 gamma speckle of ``looks`` looks on a gentle ramp (linear intensity)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.5, 2.0, w, dtype=np.float32)[None]
    return (rng.gamma(looks, 1 / looks, (h, w)) * ramp).astype(np.float32)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leftovers(folder: Path, keep: tuple[str, ...] = ()) -> list[str]:
    """Hidden or temporary files in ``folder`` (geodiff's scratch names, GDAL side-cars)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in keep
        and (p.name.startswith(".") or p.name.endswith((".tmp", ".part.tif", ".cog.tif", ".ovr")))
    )
