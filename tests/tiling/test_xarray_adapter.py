"""Same output whatever the worker count, the block layout or the input chunking; xarray; progress."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray
import torch
from rasterio.transform import from_origin

from geodiff.apps.despeckle.methods import _classical_block
from tiling.plan import TilePlan
from tiling.progress import Progress
from tiling.raster_io import ArraySource
from tiling.runner import run_array, run_raster
from tiling.xarray_adapter import map_tiles

LEE = functools.partial(_classical_block, name="lee", looks=2.0, window=5, units="intensity")


def seeded_noise(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    """A tile function that uses per-tile seeds and the blend hook's geometry."""
    return t + 0.1 * ctx.randn(tuple(t.shape[1:]), dtype=t.dtype)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    data = rng.gamma(2.0, 0.5, (1, 150, 131)).astype(np.float32)
    data[0, 40:60, 10:30] = -1.0
    path = tmp_path_factory.mktemp("dask") / "scene.tif"
    prof = {"driver": "GTiff", "height": 150, "width": 131, "count": 1, "dtype": "float32", "nodata": -1.0}
    with rasterio.open(path, "w", crs="EPSG:32632", transform=from_origin(5e5, 5e6, 10, 10), **prof) as dst:
        dst.write(data)
    return path


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.mark.slow
def test_workers_and_block_layout_do_not_change_the_output(scene: Path, tmp_path: Path) -> None:
    """1, 2 and 4 worker processes and three block layouts give bit-identical Lee output.

    The array job keeps the workers free of torch (importing it in 4 fresh processes costs minutes
    on a busy 2-core machine); the seeded tile job checks block layouts in-process.
    """
    from distributed import Client, LocalCluster

    def run(tag: str, fn, kind: str, tile: int, block_tiles: int, overlap: int, **kw) -> np.ndarray:  # noqa: ANN001, ANN003
        out = tmp_path / f"{kind}-{tag}.tif"
        run_raster(
            str(scene), str(out), fn, kind=kind, tile=tile, overlap=overlap, halo=2,
            block_tiles=block_tiles, progress=False, **kw,
        )  # fmt: skip
        return _read(out)

    lee_ref = run("one", LEE, "array", 32, 2, 0)
    assert np.array_equal(lee_ref, run("blocks-100", LEE, "array", 100, 1, 0))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            assert np.array_equal(lee_ref, run("two", LEE, "array", 48, 1, 0, client=client))
            cluster.scale(4)
            client.wait_for_workers(4, timeout=120)
            assert len(client.scheduler_info()["workers"]) == 4
            assert np.array_equal(lee_ref, run("four", LEE, "array", 32, 1, 0, client=client))
    assert (lee_ref[0, 45:55, 15:25] == -1.0).all()  # nodata stays nodata

    tiles = [run(f"k{k}", seeded_noise, "tiles", 32, k, 6) for k in (1, 2, 3)]
    assert np.array_equal(tiles[0], tiles[1]) and np.array_equal(tiles[0], tiles[2])
    other_grid = run("grid", seeded_noise, "tiles", 40, 2, 6)
    assert not np.array_equal(tiles[0], other_grid)  # the tile grid (not the blocks) defines the noise


def test_xarray_result_is_lazy_same_grid_and_chunking_independent(scene: Path) -> None:
    ref = run_array(
        ArraySource(_read(scene), nodata=-1.0), TilePlan(150, 131, 40, 0, 2, 1), LEE, kind="array"
    )
    outs = []
    for chunks in ({"x": 50, "y": 64}, {"x": -1, "y": 37}):
        da = rioxarray.open_rasterio(scene, chunks=chunks)
        res = map_tiles(da, LEE, kind="array", tile=40, overlap=0, halo=2, block_tiles=1)
        assert res.chunks is not None  # lazy
        assert res.dims == da.dims and res.shape == da.shape
        assert "spatial_ref" in res.coords and res.rio.crs == da.rio.crs
        assert res.rio.transform() == da.rio.transform()
        assert res.rio.nodata == -1.0 and res.attrs == da.attrs
        outs.append(res.values)
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], np.where(np.isnan(ref), -1.0, ref))
    # masked reading: NaN in the data, nodata kept in the encoding
    masked = rioxarray.open_rasterio(scene, chunks={"x": 64, "y": 64}, masked=True)
    res = map_tiles(
        masked.to_dataset(name="vv"), LEE, kind="array", tile=40, overlap=0, halo=2, block_tiles=1
    )
    assert res["vv"].rio.encoded_nodata == -1.0
    assert np.array_equal(res["vv"].values, ref, equal_nan=True)


def test_xarray_tile_functions_match_the_runner(scene: Path) -> None:
    plan = TilePlan(150, 131, 32, 6, 2, block_tiles=2, seed=1)
    ref = run_array(ArraySource(_read(scene), nodata=-1.0), plan, seeded_noise, kind="tiles")
    da = rioxarray.open_rasterio(scene, chunks={"x": 70, "y": 70}, masked=True)
    res = map_tiles(da, seeded_noise, tile=32, overlap=6, halo=2, block_tiles=2, seed=1)
    assert np.array_equal(res.values, ref, equal_nan=True)


def test_progress_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEODIFF_PROGRESS", "json")
    buf = io.StringIO()
    with Progress(4, stream=buf) as p:
        for _ in range(4):
            p.update()
    values = [json.loads(line)["progress"] for line in buf.getvalue().splitlines()]
    assert values == [0.0, 0.25, 0.5, 0.75, 1.0]
