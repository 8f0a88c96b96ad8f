"""Shared fixtures: the shared data folder, the bundled sample scene, CUDA and QGIS detection."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GEODIFF_SHARED_DATA", REPO.parent / "shared" / "data"))


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    skip_qgis = pytest.mark.skip(reason="needs QGIS (apt-get install qgis python3-qgis)")
    has_cuda = _cuda()
    has_qgis = shutil.which("qgis_process") is not None
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "qgis" in item.keywords and not has_qgis:
            item.add_marker(skip_qgis)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's shared imagery; tests that need it skip with a reason where it is absent."""
    if not (SHARED_DATA / "MANIFEST.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set GEODIFF_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_scene() -> Path:
    from geodiff import sample_scene

    return sample_scene()


def shared_geotiffs() -> list[Path]:
    """Every GeoTIFF in the shared data (empty where the folder is absent)."""
    return sorted(SHARED_DATA.rglob("*.tif")) if SHARED_DATA.exists() else []


@pytest.fixture(scope="session")
def images():  # noqa: ANN201 - (a, b) float64 (128, 128) in [0, 1]
    """Two unrelated 128x128 grey images in [0, 1] (scikit-image camera and moon): fusion inputs."""
    from skimage import data

    return data.camera()[::4, ::4] / 255.0, data.moon()[::4, ::4] / 255.0
