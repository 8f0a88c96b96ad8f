"""geodiff: diffusion posterior sampling for SAR despeckling and optical-SAR fusion on GeoTIFF scenes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("geodiff")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"

SAMPLE_SCENE = Path(__file__).parent / "data" / "sample_s1_vv_gamma0.tif"


def sample_scene() -> Path:
    """Path of the bundled Sentinel-1 VV gamma0 sample (512x512, EPSG:32632); see data/ATTRIBUTION.txt."""
    return SAMPLE_SCENE


def despeckle(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """Despeckle a path, numpy array or DataArray; see :func:`geodiff.api.despeckle`."""
    from geodiff.api import despeckle as _despeckle

    return _despeckle(*args, **kwargs)


def fuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """Fuse optical with SAR (paths, numpy or DataArrays); see :func:`geodiff.api.fuse`."""
    from geodiff.api import fuse as _fuse

    return _fuse(*args, **kwargs)


try:  # registers da.geodiff / ds.geodiff; xarray is a core dependency
    from geodiff import accessors as _accessors  # noqa: F401
except ImportError:  # pragma: no cover - a broken install; the CLI still works
    pass

__all__ = ["__version__", "sample_scene", "SAMPLE_SCENE", "despeckle", "fuse"]
