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


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: the API loads on first use
    """``geodiff.despeckle`` / ``geodiff.fuse`` are :func:`geodiff.api.despeckle` / :func:`geodiff.api.fuse`
    themselves (real signatures and docstrings for ``help()``), imported on first access so that
    ``geodiff --version`` and ``geodiff info`` never import torch."""
    if name in ("batch", "despeckle", "fuse"):
        from geodiff import api

        return getattr(api, name)
    raise AttributeError(f"module 'geodiff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "batch", "despeckle", "fuse"])


try:  # registers da.geodiff / ds.geodiff; xarray is a core dependency
    from geodiff import accessors as _accessors  # noqa: F401
except ImportError:  # pragma: no cover - a broken install; the CLI still works
    pass

__all__ = ["__version__", "sample_scene", "SAMPLE_SCENE", "batch", "despeckle", "fuse"]
