"""The block runner: tiled == untiled, seams, seeds, worker counts and block layouts."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from conftest import tile_plans
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin
from scipy import ndimage

from geodiff.apps.despeckle.methods import _classical_block
from sensors.speckle_filters import lee
from tiling.errors import TileFunctionError
from tiling.plan import TilePlan, TileSpec
from tiling.runner import RasterOutput, RunOptions, run_array, run_raster
from tiling.sources import ArraySource

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LEE = functools.partial(_classical_block, name="lee", looks=2.0, window=5, units="intensity")


@st.composite
def scenes(draw: st.DrawFn) -> tuple[TilePlan, np.ndarray, np.ndarray]:
    plan = draw(tile_plans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.gamma(2.0, 1.0, (1, plan.height, plan.width)).astype(np.float32)
    pattern = draw(st.sampled_from(["none", "random", "stripe", "corner"]))
    invalid = np.zeros_like(x, dtype=bool)
    if pattern == "random":
        invalid = rng.random(x.shape) < 0.2
    elif pattern == "stripe":
        invalid[:, :, : plan.width // 3] = True
    elif pattern == "corner":
        invalid[:, : plan.height // 2, : plan.width // 2] = True
    x[invalid] = -9999.0
    return plan, x, ~invalid


def _square(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    return torch.where(ctx.valid, t * t + 0.5, t)


@pytest.mark.slow
@SETTINGS
@given(scenes())
def test_pixelwise_function_bit_identical_tiled_and_untiled(scene) -> None:  # noqa: ANN001
    plan, x, valid = scene
    out = run_array(ArraySource(x, nodata=-9999.0), plan, _square, kind="tiles")
    ref = np.where(valid, x * x + np.float32(0.5), np.nan)
    assert np.array_equal(out, ref, equal_nan=True)  # bit-identical, NaN where nodata


def _median_tiles(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    a = t.numpy()
    return torch.from_numpy(
        np.stack([ndimage.median_filter(a[i], size=(1, 5, 5), mode="mirror") for i in range(len(a))])
    )


def _lee_array(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return lee(block[0], valid[0], looks=2.0, window=5)[None]


@pytest.mark.slow
@SETTINGS
@given(scenes())
def test_neighbourhood_filter_identical_away_from_nodata(scene) -> None:  # noqa: ANN001
    plan, x, valid = scene
    radius = 2
    if plan.halo < radius:
        spec = TileSpec(max(plan.tile, radius), plan.overlap, radius, plan.block_tiles)
        plan = TilePlan(plan.height, plan.width, spec)
    pad = plan.halo
    xp = np.pad(np.where(valid, x, 0), ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    vp = np.pad(valid, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    crop = (slice(None), slice(pad, pad + plan.height), slice(pad, pad + plan.width))
    # median (not nodata-aware): identical where no nodata lies within the radius
    out = run_array(ArraySource(x, nodata=-9999.0), plan, _median_tiles, kind="tiles")
    ref = ndimage.median_filter(xp, size=(1, 5, 5), mode="mirror")[crop]
    clean = ndimage.minimum_filter(vp.astype(np.uint8), size=(1, 5, 5), mode="mirror")[crop].astype(bool)
    assert np.array_equal(out[clean], ref[clean])
    # nodata-aware Lee: identical at every valid pixel, through the array path too
    ref_lee = _lee_array(xp, vp)[crop]
    for kind, fn in (("array", _lee_array), ("tiles", _lee_tiles)):
        got = run_array(ArraySource(x, nodata=-9999.0), plan, fn, kind=kind)
        assert np.array_equal(got[valid], ref_lee[valid]), kind
        assert np.isnan(got[~valid]).all()


def _lee_tiles(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    a, v = t.numpy(), ctx.valid.numpy()
    return torch.from_numpy(np.stack([_lee_array(a[i], v[i]) for i in range(len(a))]))


def _noisy(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    return t + ctx.randn(tuple(t.shape[1:]), dtype=t.dtype)


def test_seeded_tiles_do_not_depend_on_block_layout() -> None:
    x = np.random.default_rng(1).random((1, 90, 77)).astype(np.float32)
    outs = [
        run_array(
            ArraySource(x), TilePlan(90, 77, TileSpec(16, 6, 2, block_tiles=k), seed=5), _noisy, kind="tiles"
        )
        for k in (1, 2, 5)
    ]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    other_seed = run_array(
        ArraySource(x), TilePlan(90, 77, TileSpec(16, 6, 2, block_tiles=2), seed=6), _noisy
    )
    assert not np.array_equal(outs[0], other_seed)


def seeded_noise(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    """A tile function that uses per-tile seeds and the blend hook's geometry."""
    return t + 0.1 * ctx.randn(tuple(t.shape[1:]), dtype=t.dtype)


@pytest.mark.slow
def test_workers_and_block_layout_do_not_change_the_output(
    nodata_scene: Path, tmp_path: Path, read_tif
) -> None:  # noqa: ANN001
    """1, 2 and 4 worker processes and three block layouts give bit-identical Lee output.

    The array job keeps the workers free of torch (importing it in 4 fresh processes costs minutes
    on a busy 2-core machine); the seeded tile job checks block layouts in-process.
    """
    from distributed import Client, LocalCluster

    def run(tag: str, fn, kind: str, tile: int, block_tiles: int, overlap: int, client=None) -> np.ndarray:  # noqa: ANN001
        out = tmp_path / f"{kind}-{tag}.tif"
        spec = TileSpec(tile=tile, overlap=overlap, halo=2, block_tiles=block_tiles)
        run_raster(str(nodata_scene), str(out), fn, spec, kind=kind, options=RunOptions(client=client))
        return read_tif(out)

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


def _planes(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.concatenate([block, 10 * block])  # estimate and a second plane per input band


def test_band_groups_and_planes_per_band_reach_their_output_bands(
    tmp_path: Path, write_tif, read_tif
) -> None:  # noqa: ANN001

    data = np.random.default_rng(2).random((2, 20, 24)).astype(np.float32) + 1
    src = write_tif(tmp_path / "in.tif", data, crs="EPSG:32632", transform=from_origin(5e5, 5e6, 10, 10))
    out = tmp_path / "out.tif"
    output = RasterOutput(band_groups=[[1], [2]], outputs_per_band=2, descriptions=["a", "b", "a2", "b2"])
    spec = TileSpec(tile=16, overlap=0, halo=1, block_tiles=1)
    summary = run_raster(str(src), str(out), _planes, spec, kind="array", output=output)
    got = read_tif(out)
    assert got.shape == (4, 20, 24)
    np.testing.assert_array_equal(got[:2], data)  # plane 0 of band b -> output band b
    np.testing.assert_allclose(got[2:], 10 * data, rtol=1e-6)  # plane 1 of band b -> band b + count
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("a", "b", "a2", "b2")
    assert summary["valid_fraction"] == 1.0 and summary["blocks"] == 4 and summary["bands"] == 2
    with pytest.raises(TileFunctionError, match="3 functions for 2 band groups"):
        run_raster(str(src), str(tmp_path / "o.tif"), [_planes] * 3, TileSpec(16, 0), kind="array",
                   output=RasterOutput(band_groups=[[1], [2]]))  # fmt: skip


def _wrong_size(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    return t[..., 1:, 1:]


def test_tile_function_with_the_wrong_output_size_is_named() -> None:
    plan = TilePlan(20, 20, TileSpec(tile=8, overlap=2, halo=1))
    with pytest.raises(TileFunctionError, match="expected 10 \\(with halo\\) or 8"):
        run_array(ArraySource(np.ones((1, 20, 20), np.float32)), plan, _wrong_size)
