"""xarray: lazy same-grid results, map_overlap == the file path, tile functions == the runner, nodata."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import rioxarray
import torch
import xarray as xr

from geodiff.apps.despeckle.methods import _classical_block
from tiling.plan import TilePlan, TileSpec
from tiling.runner import run_array, run_raster
from tiling.sources import ArraySource
from tiling.xarray_adapter import map_overlap, map_tiles, resolve_nodata

LEE = functools.partial(_classical_block, name="lee", looks=2.0, window=5, units="intensity")
HALO = 2  # Lee with a 5x5 window


def seeded_noise(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    """A tile function that uses per-tile seeds."""
    return t + 0.1 * ctx.randn(tuple(t.shape[1:]), dtype=t.dtype)


@pytest.fixture(scope="module")
def lee_from_file(nodata_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Lee through the file path (run_raster), (1, 150, 131) float32 with nodata -1."""
    import rasterio

    out = tmp_path_factory.mktemp("lee") / "lee.tif"
    run_raster(
        str(nodata_scene), str(out), LEE, TileSpec(tile=64, overlap=0, halo=HALO, block_tiles=1), kind="array"
    )
    with rasterio.open(out) as ds:
        return ds.read()


@pytest.mark.parametrize("chunks", [{"x": 50, "y": 64}, {"x": -1, "y": 37}, {"x": 7, "y": 9}])
def test_map_overlap_is_lazy_same_grid_and_equals_the_file_path(
    nodata_scene: Path, lee_from_file: np.ndarray, chunks: dict
) -> None:
    da = rioxarray.open_rasterio(nodata_scene, chunks=chunks)
    res = map_overlap(da, LEE, HALO)
    assert res.chunks is not None  # lazy
    assert res.dims == da.dims and res.shape == da.shape
    assert "spatial_ref" in res.coords and res.rio.crs == da.rio.crs
    assert res.rio.transform() == da.rio.transform()
    assert res.rio.nodata == -1.0 and res.attrs == da.attrs
    got = res.values
    assert (got[0, 40:60, 10:30] == -1.0).all()  # nodata stays nodata
    # chunk edges are not block edges: the same sums in another order, equal to float rounding
    np.testing.assert_allclose(got, lee_from_file, rtol=2e-6, atol=0)


def test_map_overlap_on_a_masked_dataset_keeps_the_encoding(
    nodata_scene: Path, lee_from_file: np.ndarray
) -> None:
    masked = rioxarray.open_rasterio(nodata_scene, chunks={"x": 64, "y": 64}, masked=True)
    res = map_overlap(masked.to_dataset(name="vv"), LEE, HALO)
    assert res["vv"].rio.encoded_nodata == -1.0
    ref = np.where(lee_from_file == -1.0, np.nan, lee_from_file)
    np.testing.assert_allclose(res["vv"].values, ref, rtol=2e-6, equal_nan=True)


def test_map_overlap_on_numpy_backed_2d_data_without_nodata() -> None:
    from scipy import ndimage

    x = np.random.default_rng(0).random((33, 20)).astype(np.float32)

    def mean3(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(block, size=(1, 3, 3), mode="mirror")

    res = map_overlap(xr.DataArray(x, dims=("y", "x")), mean3, 1)
    ref = ndimage.uniform_filter(np.pad(x, 1, mode="reflect"), 3)[1:-1, 1:-1]
    np.testing.assert_allclose(res.values, ref, rtol=1e-6)
    with pytest.raises(ValueError, match="halo=-1"):
        map_overlap(xr.DataArray(x, dims=("y", "x")), mean3, -1)


def test_tile_functions_match_the_runner_whatever_the_chunking(nodata_scene: Path, read_tif) -> None:  # noqa: ANN001
    spec = TileSpec(tile=32, overlap=6, halo=2, block_tiles=2)
    ref = run_array(
        ArraySource(read_tif(nodata_scene), nodata=-1.0), TilePlan(150, 131, spec, seed=1), seeded_noise
    )
    for chunks in ({"x": 70, "y": 70}, {"x": 13, "y": -1}):
        da = rioxarray.open_rasterio(nodata_scene, chunks=chunks, masked=True)
        res = map_tiles(da, seeded_noise, spec, seed=1)
        assert res.chunks is not None and res.dims == da.dims
        assert np.array_equal(res.values, ref, equal_nan=True)  # bit-identical: blocks follow the plan


def test_resolve_nodata_reads_every_place_nodata_hides(nodata_scene: Path) -> None:
    plain = rioxarray.open_rasterio(nodata_scene)
    assert resolve_nodata(plain) == -1.0  # from the file (rioxarray attrs)
    masked = rioxarray.open_rasterio(nodata_scene, masked=True)
    assert np.isnan(resolve_nodata(masked)) and masked.rio.encoded_nodata == -1.0  # data holds NaN
    arr = xr.DataArray(np.zeros((4, 4), np.float32), dims=("y", "x"))
    assert resolve_nodata(arr) is None
    assert resolve_nodata(arr.assign_attrs(_FillValue=-9999)) == -9999.0
    assert resolve_nodata(arr.assign_attrs(nodata=0)) == 0.0
    assert resolve_nodata(arr.rio.write_nodata(-5.0)) == -5.0
    odd = xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "lat", "lon"), attrs={"missing_value": 7})
    assert resolve_nodata(odd) == 7.0


# ---- lazy means lazy: a window computes only the chunks / blocks that touch it ---------------------
def _computed(lazy: xr.DataArray, calls: list) -> tuple[np.ndarray, list]:
    """(values, the recorded calls) of ``lazy`` computed on the synchronous scheduler."""
    import dask

    calls.clear()
    with dask.config.set(scheduler="sync"):
        values = lazy.values
    return values, list(calls)


def _graph_tasks(lazy: xr.DataArray, prefix: str) -> int:
    """Tasks named ``prefix...`` left in ``lazy``'s graph once dask has culled what it does not need."""
    from dask.core import flatten
    from dask.optimization import cull

    graph, _ = cull(dict(lazy.data.__dask_graph__()), list(flatten(lazy.data.__dask_keys__())))
    return sum(str(k[0] if isinstance(k, tuple) else k).startswith(prefix) for k in graph)


def test_map_overlap_keeps_the_input_chunks_and_a_window_runs_only_its_chunks(nodata_scene: Path) -> None:
    calls: list = []

    def lee(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
        calls.append(block.shape)
        return LEE(block, valid)

    da = rioxarray.open_rasterio(nodata_scene, chunks={"x": 50, "y": 64})
    res = map_overlap(da, lee, HALO)
    assert res.chunks == da.chunks  # the pad's halo does not shift the chunk edges
    full, ran = _computed(res, calls)
    assert len(ran) == 3 * 3  # (64, 64, 22) x (50, 50, 31)
    window, ran = _computed(res[:, 10:40, 60:90], calls)
    assert ran == [(1, 64 + 2 * HALO, 50 + 2 * HALO)]  # one chunk and its halo
    assert np.array_equal(window, full[:, 10:40, 60:90], equal_nan=True)
    _, ran = _computed(res[:, 60:70, 45:55], calls)
    assert len(ran) == 4  # a window on a chunk corner touches four chunks
    # numpy-backed: 1024 px blocks, the file path's blocks (bit-identical to it on a small scene)
    x = np.random.default_rng(0).gamma(2.0, 0.5, (1, 1100, 40)).astype(np.float32)
    on_numpy = map_overlap(xr.DataArray(x, dims=("band", "y", "x")), LEE, HALO)
    assert on_numpy.chunks == ((1,), (1024, 76), (40,))


def test_map_tiles_chunks_are_the_plan_blocks_and_a_window_runs_only_its_blocks(
    nodata_scene: Path, read_tif
) -> None:  # noqa: ANN001
    calls: list = []

    def recorded(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
        calls.append(ctx.block.index)
        return seeded_noise(t, ctx)

    spec = TileSpec(tile=32, overlap=6, halo=2, block_tiles=2)  # blocks of 2 * 26 = 52 px
    plan = TilePlan(150, 131, spec, seed=1)
    da = rioxarray.open_rasterio(nodata_scene, chunks={"x": 70, "y": 70}, masked=True)
    res = map_tiles(da, recorded, spec, seed=1)
    assert res.chunks == ((1,), (52, 52, 46), (52, 52, 27))
    window = res[:, 10:40, 60:90]
    assert _graph_tasks(window, "geodiff-block") == 1  # the task graph holds only block (0, 1)
    values, ran = _computed(window, calls)
    assert ran == [(0, 1)]
    ref = run_array(ArraySource(read_tif(nodata_scene), nodata=-1.0), plan, seeded_noise)
    assert np.array_equal(values, ref[:, 10:40, 60:90], equal_nan=True)  # the same pixels as the whole
    across = res[:, 50:60, 0:10]  # rows 50-59 straddle blocks (0, 0) and (1, 0)
    assert _graph_tasks(across, "geodiff-block") == 2
    assert sorted(_computed(across, calls)[1]) == [(0, 0), (1, 0)]
    assert _graph_tasks(res, "geodiff-block") == plan.block_grid[0] * plan.block_grid[1]
