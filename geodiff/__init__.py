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


__all__ = ["__version__", "sample_scene", "SAMPLE_SCENE"]
