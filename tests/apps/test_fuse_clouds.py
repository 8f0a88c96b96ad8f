"""Clouds from a Sentinel-2 scene classification (SCL) raster in the fusion job: real GeoTIFFs.

The SCL is written at 20 m on the 10 m optical grid of a shared BigEarthNet pair (pixel edges aligned,
so nearest neighbour is an exact 2x2 repeat); the output's source band must flag exactly the pixels
whose SCL code is 3, 8, 9 or 10, on the streamed DPS path and the in-memory baseline path alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from geodiff.apps.fuse import fuse_scene, load_pair

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"prior": "tiny", "steps": 1, "prox_iters": 5, "tile": 64, "overlap": 16, "despeckle_sar": None}


def _scl(optical: Path, dst: Path, dtype: str = "uint8", nodata: float | None = 0) -> np.ndarray:
    """Write a 20 m SCL over ``optical``'s footprint; returns the expected cloud mask on the optical grid."""
    with rasterio.open(optical) as o:
        crs, t, h, w = o.crs, o.transform, o.height, o.width
    scl = np.full((h // 2, w // 2), 4, np.uint8)  # vegetation
    scl[5:20, 8:30] = 9  # cloud, high probability
    scl[22:30, 8:30] = 3  # its shadow
    scl[40:44, :] = 10  # thin cirrus
    scl[50:55, 40:50] = 8  # cloud, medium probability
    scl[0:3, 0:60] = 6  # water: not a cloud
    scl[45:48, 0:10] = 0  # no data: not a cloud
    prof = {
        "driver": "GTiff", "width": w // 2, "height": h // 2, "count": 1, "dtype": dtype, "crs": crs,
        "transform": t @ Affine.scale(2), "nodata": nodata,
    }  # fmt: skip
    with rasterio.open(dst, "w", **prof) as ds:
        ds.write(scl.astype(dtype)[None])
    return np.isin(np.repeat(np.repeat(scl, 2, 0), 2, 1), [3, 8, 9, 10])


@pytest.mark.parametrize("method", ["dps", "average"])
def test_scl_clouds_are_filled_from_sar_and_flagged(fusion_pair, tmp_path, method) -> None:
    opt, sar = fusion_pair
    clouds = _scl(opt, tmp_path / "scl.tif")
    out = tmp_path / f"fused_{method}.tif"
    summary = fuse_scene(opt, sar, out, method=method, fill_gaps=True, clouds=tmp_path / "scl.tif", **FAST)
    with rasterio.open(out) as f, rasterio.open(opt) as o:
        data, ref = f.read(), o.read()
        assert f.count == o.count + 1 and f.crs == o.crs and f.transform == o.transform
    source = data[-1]
    np.testing.assert_array_equal(source == 2, clouds)  # exactly the SCL cloud classes are filled
    np.testing.assert_array_equal(source == 1, ~clouds)
    assert (data[:-1][:, clouds] > 0).all()  # filled, not left empty
    assert not np.array_equal(data[:-1][:, clouds], ref[:, clouds])  # the filled pixels are an estimate
    assert summary["clouds"] == str(tmp_path / "scl.tif") and summary["cloud_classes"] == [3, 8, 9, 10]
    assert summary["fused_fraction"] == 1.0  # of the clear optical pixels, all fused


def test_clouds_without_fill_gaps_become_nodata_and_leave_the_inputs(fusion_pair, tmp_path) -> None:
    opt, sar = fusion_pair
    clouds = _scl(opt, tmp_path / "scl.tif")
    before = opt.read_bytes(), (tmp_path / "scl.tif").read_bytes()
    out = tmp_path / "fused.tif"
    fuse_scene(opt, sar, out, clouds=tmp_path / "scl.tif", **FAST)
    with rasterio.open(out) as f:
        data, nodata = f.read(), f.nodata
    fill = 0 if nodata is None else nodata  # this optical has no nodata value: 0, as for its own gaps
    assert (data[:, clouds] == fill).all() and (data[:, ~clouds] != fill).all()
    assert (opt.read_bytes(), (tmp_path / "scl.tif").read_bytes()) == before


def test_a_binary_mask_and_the_clouds_in_load_pair(fusion_pair, tmp_path) -> None:
    opt, sar = fusion_pair
    clouds = _scl(opt, tmp_path / "scl.tif")
    with rasterio.open(tmp_path / "scl.tif") as ds:
        prof, scl = ds.profile, ds.read(1)
    prof.update(nodata=None)
    with rasterio.open(tmp_path / "mask.tif", "w", **prof) as ds:  # 0/1 mask: cloud or shadow only
        ds.write(np.isin(scl, [3, 9]).astype(np.uint8)[None])
    p = load_pair(opt, sar, despeckle_sar=None, clouds=tmp_path / "mask.tif", cloud_classes="1")
    expected = np.repeat(np.repeat(np.isin(scl, [3, 9]), 2, 0), 2, 1)
    np.testing.assert_array_equal(np.isnan(p.optical).all(0), expected)
    assert (expected <= clouds).all() and expected.sum() < clouds.sum()


def test_cli_clouds_and_bad_cloud_input_exit_2(fusion_pair, tmp_path, invoke) -> None:
    opt, sar = fusion_pair
    clouds = _scl(opt, tmp_path / "scl.tif")
    base = ("--prior", "tiny", "--steps", "1", "--prox-iters", "5", "--despeckle-sar", "none")
    res = invoke("fuse", opt, sar, tmp_path / "a.tif", *base, "--clouds", tmp_path / "scl.tif", "--fill-gaps",
                 "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["cloud_classes"] == [3, 8, 9, 10]
    with rasterio.open(tmp_path / "a.tif") as f:
        np.testing.assert_array_equal(f.read(f.count) == 2, clouds)
    res = invoke("fuse", opt, sar, tmp_path / "b.tif", *base, "--clouds", tmp_path / "scl.tif",
                 "--cloud-classes", "cloud")  # fmt: skip
    assert res.exit_code == 2 and "--cloud-classes 3,8,9,10" in res.output
    with rasterio.open(tmp_path / "scl.tif") as ds:
        prof = ds.profile
    prof.update(transform=Affine.translation(1e6, 0) @ prof["transform"])
    with rasterio.open(tmp_path / "far.tif", "w", **prof) as ds:
        ds.write(np.full((1, prof["height"], prof["width"]), 9, np.uint8))
    res = invoke("fuse", opt, sar, tmp_path / "c.tif", *base, "--clouds", tmp_path / "far.tif")
    assert res.exit_code == 2 and "--clouds" in res.output
    assert not (tmp_path / "b.tif").exists() and not (tmp_path / "c.tif").exists()
