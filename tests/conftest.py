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


def tile_plans(max_size: int = 60):  # noqa: ANN201 - a hypothesis strategy of tiling.plan.TilePlan
    """Hypothesis strategy: tile plans of rasters up to ``max_size`` pixels a side (tiling tests)."""
    from hypothesis import strategies as st

    from tiling.plan import TilePlan, TileSpec

    @st.composite
    def plans(draw: st.DrawFn) -> TilePlan:
        h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
        tile = draw(st.integers(3, 24))
        overlap = draw(st.integers(0, tile - 2))  # stride >= 2 keeps the number of tiles test-sized
        halo = draw(st.integers(0, min(tile, 8)))
        spec = TileSpec(tile, overlap, halo, block_tiles=draw(st.integers(1, 4)))
        return TilePlan(h, w, spec, seed=draw(st.integers(0, 9)))

    return plans()


def crop_geotiff(src: Path, dst: Path, row: int, col: int, height: int, width: int) -> Path:
    """Write the window (row, col, height, width) of GeoTIFF ``src`` to ``dst``, keeping its tags,
    band descriptions, nodata, dtype and georeferencing (the window's transform)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as s:
        win = Window(col, row, width, height)
        prof = s.profile | {"width": width, "height": height, "transform": s.window_transform(win)}
        for key in ("blockxsize", "blockysize", "tiled"):
            prof.pop(key, None)
        with rasterio.open(dst, "w", **prof) as d:
            d.write(s.read(window=win))
            d.update_tags(**s.tags())
            d.descriptions = s.descriptions
    return dst


def write_on_sample_grid(
    path: Path, data, sample: Path, *, nodata: float | None = None, description: str | None = None
) -> Path:  # noqa: ANN001
    """A float32 GeoTIFF of ``data`` (C, H, W) on the sample scene's CRS, its transform at the scene's
    origin; every band gets ``description`` (if any) and the tag SOURCE="test crop"."""
    import numpy as np
    import rasterio

    with rasterio.open(sample) as s:
        crs, tr = s.crs, s.transform
    c, h, w = data.shape
    prof = dict(
        driver="GTiff", width=w, height=h, count=c, dtype="float32", crs=crs, transform=tr, nodata=nodata
    )
    with rasterio.open(path, "w", **prof) as d:
        d.write(np.asarray(data).astype(np.float32))
        if description:
            d.descriptions = (description,) * c
        d.update_tags(SOURCE="test crop")
    return path


@pytest.fixture
def sar_crop(sample_scene: Path, tmp_path: Path) -> Path:
    """A 160x192 GeoTIFF crop of the bundled Sentinel-1 VV intensity scene (its tags, descriptions and
    georeferencing kept), in the test's tmp_path as ``in.tif``."""
    return crop_geotiff(sample_scene, tmp_path / "in.tif", 80, 100, 160, 192)


@pytest.fixture(scope="module")
def one_torch_thread():  # noqa: ANN201
    """Small tiles: one torch thread is faster, and spares the OpenMP spin-up on a busy 2-core box."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


#: A co-registered BigEarthNet optical/SAR pair of the shared data (120x120 px, SAR in dB).
FUSION_PAIR = "bigearthnet_s1s2_pairs/S2A_MSIL2A_20170613T101031_87_48"


@pytest.fixture
def fusion_pair(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Copies of a co-registered optical (4 bands, uint16) / SAR (VV, VH in dB) pair in tmp_path
    (inputs must never change: tests compare their bytes)."""
    opt, sar = tmp_path / "s2.tif", tmp_path / "s1_db.tif"
    shutil.copy(shared_data / FUSION_PAIR / "s2_B02_B03_B04_B08.tif", opt)
    shutil.copy(shared_data / FUSION_PAIR / "s1_VV_VH_db.tif", sar)
    return opt, sar


@pytest.fixture
def invoke():  # noqa: ANN201 - (*args) -> click.testing.Result
    """Run the `geodiff` command line in-process: ``invoke("despeckle", IN, OUT, "--json")``."""
    from click.testing import CliRunner

    from geodiff.cli import cli

    def run(*args: object):  # noqa: ANN202
        return CliRunner().invoke(cli, [str(a) for a in args], env={"GEODIFF_PROGRESS": "none"})

    return run


#: Clean grey aerial images of the shared data (virtual SAR "clean" set), for synthetic-speckle tests.
CLEAN_GRAY = "virtual_sar_clean_gray"


def clean_reflectivity(path: Path, index: int, size: int = 128):  # noqa: ANN201 - (size, size) float64
    """A clean reflectivity map on a realistic SAR intensity scale: the central ``size`` px of an 8-bit
    grey image, (g + 1) / 256, scaled so that its median lies in 0.05 … 0.3 (drawn from ``index``)."""
    import numpy as np
    from PIL import Image

    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    r0, c0 = (grey.shape[0] - size) // 2, (grey.shape[1] - size) // 2
    crop = (grey[r0 : r0 + size, c0 : c0 + size] + 1.0) / 256.0
    median = np.random.default_rng(index).uniform(0.05, 0.3)
    return crop * (median / np.median(crop))


@pytest.fixture(scope="session")
def clean_scenes(shared_data: Path):  # noqa: ANN201 - list of (128, 128) float64
    """40 clean reflectivity maps (see :func:`clean_reflectivity`) from every 19th shared clean image."""
    files = sorted((shared_data / CLEAN_GRAY).glob("*.jpg"))[::19][:40]
    if len(files) < 40:
        pytest.skip(f"{CLEAN_GRAY} holds fewer than 760 images")
    return [clean_reflectivity(f, i) for i, f in enumerate(files)]


def write_untagged(path: Path, data) -> Path:  # noqa: ANN001
    """A single-band float32 GeoTIFF of ``data`` (H, W) with a CRS and transform but no units metadata:
    no tags, no band description, no unit type, a neutral file name chosen by the caller."""
    import numpy as np
    import rasterio
    from affine import Affine

    h, w = data.shape
    prof = dict(driver="GTiff", width=w, height=h, count=1, dtype="float32", crs="EPSG:32632")
    with rasterio.open(path, "w", transform=Affine(10, 0, 500000, 0, -10, 5000000), **prof) as d:
        d.write(np.asarray(data, dtype=np.float32)[None])
    return path
