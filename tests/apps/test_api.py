"""The Python API and xarray accessors: same results as the CLI path, lazy same-grid xarray results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

import geodiff

FAST = dict(prior="tiny", steps=2, samples=2, looks=4.0, tile=64, overlap=16, device="cpu")


@pytest.fixture
def scene(sample_scene: Path) -> xr.DataArray:
    return rioxarray.open_rasterio(sample_scene).isel(band=0)[:96, :128]


def test_dataarray_accessor_is_lazy_on_the_same_grid_and_matches_the_file_path(scene, tmp_path) -> None:
    lazy = scene.geodiff.despeckle(**FAST)
    assert lazy.chunks is not None  # dask-backed: nothing computed yet
    assert lazy.dims == scene.dims and lazy.shape == scene.shape
    assert np.array_equal(lazy.x, scene.x) and np.array_equal(lazy.y, scene.y)
    src = tmp_path / "in.tif"
    scene.rio.to_raster(src)
    geodiff.despeckle(src, tmp_path / "out.tif", progress=False, **FAST)
    with rasterio.open(tmp_path / "out.tif") as d:
        from_file = d.read(1)
    assert np.allclose(lazy.values, from_file, rtol=1e-5)


def test_default_tiling_is_the_file_paths(scene, tmp_path) -> None:
    """Without tile/overlap the array path plans its tiles as the file path does (a 96 x 128 scene: one
    tile just covering it), so numpy in equals the CLI's file out."""
    opts = {k: v for k, v in FAST.items() if k not in ("tile", "overlap")}
    src = tmp_path / "in.tif"
    scene.rio.to_raster(src)
    geodiff.despeckle(src, tmp_path / "out.tif", progress=False, **opts)
    with rasterio.open(tmp_path / "out.tif") as d:
        from_file = d.read(1)
    assert np.allclose(geodiff.despeckle(scene.values, units="intensity", **opts), from_file, rtol=1e-5)


def test_numpy_in_numpy_out_with_uncertainty(scene) -> None:
    y = scene.values.astype(np.float64)  # a bare array: no metadata, so the units are declared
    mean, std = geodiff.despeckle(y, uncertainty=True, units="intensity", **FAST)
    assert isinstance(mean, np.ndarray) and mean.shape == y.shape and std.shape == y.shape
    assert np.isfinite(mean).all() and (std >= 0).all() and std.mean() > 0
    again = geodiff.despeckle(y, units="intensity", **FAST)
    assert np.allclose(again, mean)  # same seed, same result
    # band by band; the scale follows each band
    stack = geodiff.despeckle(np.stack([y, 2 * y]), units="intensity", **FAST)
    assert stack.shape == (2, *y.shape) and np.allclose(stack[1], 2 * stack[0], rtol=2e-3)


def test_classical_method_through_the_api(scene) -> None:
    from sensors.speckle_filters import apply_filter

    y = scene.values.astype(np.float64)
    out = geodiff.despeckle(y, method="lee", looks=4.0, units="intensity")
    ref = apply_filter("lee", np.pad(y, 3, mode="reflect"), None, 4.0, 7)[3:-3, 3:-3]
    assert np.allclose(out, ref, rtol=1e-5)


def test_dataset_accessors(scene) -> None:
    ds = xr.Dataset({"VV": scene, "VH": scene * 0.3})
    out = ds.geodiff.despeckle(**FAST)
    assert set(out.data_vars) == {"VV", "VH"} and out["VV"].chunks is not None
    assert np.allclose(out["VH"].values, 0.3 * out["VV"].values, rtol=2e-3)
    with pytest.raises(ValueError, match="no variable"):
        ds.geodiff.fuse(optical="RGB", sar="VV")


def test_dataset_fuse_is_lazy_and_matches_numpy(scene) -> None:
    rng = np.random.default_rng(0)
    sar = scene.values.astype(np.float32)[:64, :64]
    optical = (0.1 + 0.05 * rng.random((3, 64, 64))).astype(np.float32)
    ds = xr.Dataset({"optical": (("band", "y", "x"), optical), "sar": (("y", "x"), sar)})
    opts = dict(method="average")
    lazy = ds.geodiff.fuse(**opts)
    assert lazy.chunks is not None and lazy.shape == optical.shape
    assert np.allclose(lazy.values, geodiff.fuse(optical, sar, **opts))
    with pytest.raises(ValueError, match="same grid"):
        geodiff.fuse(ds["optical"], ds["sar"][:32], **opts)


def test_api_bad_input(scene, tmp_path) -> None:
    with pytest.raises(ValueError, match="out="):
        geodiff.despeckle(tmp_path / "x.tif")
    with pytest.raises(ValueError, match="unknown despeckling method"):
        geodiff.despeckle(scene.values, method="nope")
    with pytest.raises(ValueError, match="shape"):
        geodiff.despeckle(np.zeros(5))
    with pytest.raises(ValueError, match="one DataArray"):
        geodiff.despeckle(xr.Dataset({"a": scene}))


def _block_tasks(lazy: xr.DataArray) -> int:
    """Tile-plan block tasks left in ``lazy``'s task graph once culled to what it needs."""
    from dask.core import flatten
    from dask.optimization import cull

    graph, _ = cull(dict(lazy.data.__dask_graph__()), list(flatten(lazy.data.__dask_keys__())))
    return sum(str(k[0] if isinstance(k, tuple) else k).startswith("geodiff-block") for k in graph)


def test_accessor_window_computes_only_the_blocks_that_touch_it(sample_scene: Path) -> None:
    vv = rioxarray.open_rasterio(sample_scene, chunks={"x": 128, "y": 128}).isel(band=0)[:200, :384]
    lazy = vv.geodiff.despeckle(**FAST)  # blocks of 4 tiles x (64 - 16) px = 192 px
    assert lazy.chunks == ((192, 8), (192, 192))
    assert _block_tasks(lazy) == 4
    window = lazy[:64, 200:264]
    assert _block_tasks(window) == 1  # a 64² window inside block (0, 1): one block's work
    assert np.array_equal(window.values, lazy.values[:64, 200:264])  # the same pixels as the whole
    # classical filters: the result keeps the input's chunks
    lee = vv.geodiff.despeckle(method="lee", looks=4.0)
    assert lee.chunks == vv.chunks


@pytest.mark.slow
def test_accessor_results_compute_on_the_active_distributed_client(scene) -> None:
    import dask
    from distributed import Client, LocalCluster, get_task_stream

    lazy = scene.geodiff.despeckle(**FAST)
    with dask.config.set(scheduler="sync"):
        in_process = lazy.values
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
        get_task_stream() as stream,
    ):
        on_cluster = lazy.values  # no scheduler named: dask uses the active client
    assert any(str(t["key"]).find("geodiff-block") >= 0 for t in stream.data)  # the block ran on a worker
    assert np.allclose(on_cluster, in_process, rtol=1e-5)  # a worker's torch runs on one thread
