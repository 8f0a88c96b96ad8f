"""End-to-end fusion of real optical/SAR pairs: georeferencing kept, alignment, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from geodiff.apps.fuse import fuse_arrays, fuse_scene, load_pair
from geodiff.apps.fuse.scene import _encode
from geodiff.cli import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def prior():
    """The tiny trained prior when the registry has it, else an analytic Gaussian stand-in."""
    from geodiff import priors

    load = getattr(priors, "load", None)
    if load is not None:
        try:
            return load("tiny")
        except Exception:  # noqa: BLE001 - fall back to the analytic prior below
            pass
    from geodiff.priors.gaussian import GaussianPrior

    p = GaussianPrior(0.0, 0.5)
    p.domain = "amplitude"
    return p


@pytest.fixture()
def pair(fusion_pair) -> tuple[Path, Path]:
    return fusion_pair


def _write_like(src: Path, dst: Path, data: np.ndarray, **changes) -> Path:
    with rasterio.open(src) as ds:
        prof = ds.profile
        desc = ds.descriptions
    prof.update(count=data.shape[0], dtype=str(data.dtype), **changes)
    with rasterio.open(dst, "w", **prof) as out:
        out.write(data)
        for i, d in enumerate(desc[: data.shape[0]]):
            if d:
                out.set_band_description(i + 1, d)
    return dst


def _sar_in_4326(sar: Path, dst: Path) -> Path:
    """The SAR warped to EPSG:4326 at a different pixel size (dB written as linear intensity)."""
    with rasterio.open(sar) as ds:
        lin = 10 ** (ds.read().astype(np.float64) / 10)
        crs = CRS.from_epsg(4326)
        tr, w, h = calculate_default_transform(
            ds.crs, crs, ds.width, ds.height, *ds.bounds, resolution=1.3e-4
        )
        out = np.full((ds.count, h, w), np.nan, np.float32)
        reproject(
            lin.astype(np.float32),
            out,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=tr,
            dst_crs=crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
        prof = ds.profile
    prof.update(crs=crs, transform=tr, width=w, height=h, nodata=np.nan, dtype="float32")
    with rasterio.open(dst, "w", **prof) as f:
        f.write(out)
        f.set_band_description(1, "VV intensity")
        f.set_band_description(2, "VH intensity")
    return dst


def _georef(path: Path) -> dict:
    with rasterio.open(path) as ds:
        return {
            "crs": ds.crs,
            "transform": ds.transform,
            "size": (ds.width, ds.height),
            "count": ds.count,
            "dtype": ds.dtypes[0],
            "nodata": ds.nodata,
            "descriptions": ds.descriptions,
        }


@pytest.mark.slow
def test_fused_scene_keeps_the_optical_georeferencing(pair, tmp_path, prior) -> None:
    opt, sar = pair
    before = opt.read_bytes(), sar.read_bytes()
    out = tmp_path / "fused.tif"
    summary = fuse_scene(opt, sar, out, steps=3, prior=prior, seed=1)
    assert (opt.read_bytes(), sar.read_bytes()) == before  # inputs untouched
    assert _georef(out) == _georef(opt)
    assert summary["sar_resampled"] is False and summary["sar_units"] == "db"
    assert summary["rgb_bands"] == [2, 1, 0]
    with rasterio.open(out) as f, rasterio.open(opt) as o:
        fused, orig = f.read().astype(float), o.read().astype(float)
        assert "GEODIFF_FUSION" in f.tags()
    assert np.isfinite(fused).all() and not np.array_equal(fused, orig)
    # colour restoration keeps the band ratios (chroma) within integer rounding
    ratio_in = orig[2] / orig[1]
    ratio_out = fused[2] / np.maximum(fused[1], 1)
    bright = orig[1] > 500
    assert np.median(np.abs(ratio_out[bright] / ratio_in[bright] - 1)) < 0.02


def test_sar_on_another_grid_is_aligned_onto_the_optical(pair, tmp_path) -> None:
    opt, sar = pair
    sar_geo = _sar_in_4326(sar, tmp_path / "s1_4326_intensity.tif")
    out_same = tmp_path / "same.tif"
    out_geo = tmp_path / "geo.tif"
    fuse_scene(opt, sar, out_same, method="average")
    summary = fuse_scene(opt, sar_geo, out_geo, method="average")
    assert summary["sar_resampled"] is True and summary["sar_units"] == "intensity"
    assert _georef(out_geo) == _georef(opt)
    with rasterio.open(out_same) as a, rasterio.open(out_geo) as b:
        x, y = a.read(3).astype(float)[8:-8, 8:-8], b.read(3).astype(float)[8:-8, 8:-8]
    assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.9  # the two warps blur but agree


def test_partial_overlap_warns_and_keeps_optical_outside(pair, tmp_path) -> None:
    opt, sar = pair
    with rasterio.open(sar) as ds:
        part = ds.read(window=rasterio.windows.Window(0, 0, 40, 120))
        tr = ds.window_transform(rasterio.windows.Window(0, 0, 40, 120))
    small = _write_like(sar, tmp_path / "s1_part_db.tif", part, width=40, height=120, transform=tr)
    out = tmp_path / "fused.tif"
    with pytest.warns(UserWarning, match="covers only 33"):
        summary = fuse_scene(opt, small, out, method="laplacian")
    assert summary["fused_fraction"] == pytest.approx(40 / 120, abs=0.02)
    with rasterio.open(out) as f, rasterio.open(opt) as o:
        np.testing.assert_array_equal(f.read()[:, :, 45:], o.read()[:, :, 45:])
        assert not np.array_equal(f.read()[:, :, :35], o.read()[:, :, :35])


def test_optical_nodata_is_kept(pair, tmp_path, prior) -> None:
    opt, sar = pair
    with rasterio.open(opt) as ds:
        data = ds.read()
    data[:, :30, :30] = 0
    holed = _write_like(opt, tmp_path / "s2_nodata.tif", data, nodata=0)
    out = tmp_path / "fused.tif"
    fuse_scene(holed, sar, out, steps=2, prior=prior, tile=64, overlap=16)
    assert _georef(out) == _georef(holed)
    with rasterio.open(out) as f:
        res = f.read()
    assert (res[:, :30, :30] == 0).all()
    assert (res[:, 30:, 30:] != 0).all() and (res[:, 30:, :] != 0).mean() > 0.999


def test_multi_tile_dps_has_no_seams(pair, prior) -> None:
    opt, sar = pair
    with rasterio.open(opt) as o, rasterio.open(sar) as s:
        optical, vv = o.read(), s.read(1)
    res = fuse_arrays(
        optical,
        vv,
        sar_units="db",
        rgb=(2, 1, 0),
        steps=3,
        prior=prior,
        tile=48,
        overlap=16,
        return_details=True,
    )
    assert res.info["tiles"] > 4
    f = res.fused
    assert np.isfinite(f).all()
    # tile borders (stride 32) show no more gradient energy than the rest of the image
    gx = np.abs(np.diff(f, axis=1))
    border = gx[:, [31, 63, 95]].mean()
    assert border < 1.5 * gx.mean()


def test_fuse_arrays_bad_input(prior) -> None:
    opt = np.ones((3, 32, 32))
    with pytest.raises(ValueError, match="not on one grid"):
        fuse_arrays(opt, np.ones((30, 32)), method="average")
    with pytest.raises(ValueError, match="one band"):
        fuse_arrays(opt, np.ones((2, 32, 32)), method="average")
    with pytest.raises(ValueError, match="weights"):
        fuse_arrays(opt, np.ones((32, 32)), weights=(1, -1, 1, 1), prior=prior)
    with pytest.raises(ValueError, match="unknown fusion method"):
        fuse_arrays(opt, np.ones((32, 32)), method="magic")
    with pytest.raises(ValueError, match="no valid pixel"):
        fuse_arrays(opt, np.full((32, 32), np.nan), method="average")


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_fuse_json_and_existing_output(pair, tmp_path) -> None:
    opt, sar = pair
    out = tmp_path / "fused.tif"
    res = _cli("fuse", str(opt), str(sar), str(out), "--method", "wavelet", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["method"] == "wavelet" and summary["width"] == 120
    stamp = out.read_bytes()
    res = _cli("fuse", str(opt), str(sar), str(out), "--method", "wavelet")
    assert res.exit_code == 2 and "--overwrite" in res.stderr
    assert out.read_bytes() == stamp
    res = _cli("fuse", str(opt), str(sar), str(out), "--method", "pca", "--overwrite")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != stamp


def test_cli_non_overlapping_inputs_exit_2(pair, tmp_path) -> None:
    opt, sar = pair
    with rasterio.open(sar) as ds:
        data, tr = ds.read(), ds.transform
    far = _write_like(
        sar, tmp_path / "far_db.tif", data, transform=rasterio.Affine(10, 0, tr.c + 1e5, 0, -10, tr.f)
    )
    out = tmp_path / "fused.tif"
    res = _cli("fuse", str(opt), str(far), str(out), "--method", "average")
    assert res.exit_code == 2
    assert "OPTICAL and SAR do not overlap" in res.stderr and "check the inputs' CRS/extent" in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".fused.tif*"))


def test_cli_swapped_or_wrong_inputs_exit_2(pair, tmp_path, shared_data) -> None:
    opt, sar = pair
    out = tmp_path / "fused.tif"
    res = _cli("fuse", str(sar), str(opt), str(out), "--method", "average")
    assert res.exit_code == 2 and "swap" in res.stderr  # a 4-band optical cannot be the SAR
    s1 = shared_data / "sen1floods11_s1s2_pairs/Spain_7370579/s1_VV_VH_db.tif"
    res = _cli("fuse", str(s1), str(sar), str(out), "--method", "average")
    assert res.exit_code == 2 and "OPTICAL" in res.stderr and "negative" in res.stderr
    res = _cli("fuse", str(opt), str(sar), str(out), "--sar-band", "3")
    assert res.exit_code == 2 and "--sar-band 3" in res.stderr
    res = _cli("fuse", str(opt), str(tmp_path / "missing.tif"), str(out))
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = _cli("fuse", str(opt), str(sar), str(out), "--weights", "1,2")
    assert res.exit_code == 2
    assert not out.exists()


def test_sar_despeckled_first_when_asked(pair, tmp_path) -> None:
    opt, sar = pair
    with rasterio.open(opt) as o, rasterio.open(sar) as s:
        optical, vv = o.read(), s.read(1)
    raw = fuse_arrays(optical, vv, sar_units="db", method="average", despeckle_sar=None, return_details=True)
    lee = fuse_arrays(optical, vv, sar_units="db", method="average", despeckle_sar="lee", return_details=True)
    assert lee.info["despeckle_sar"]["method"] == "lee" and lee.info["despeckle_sar"]["looks"] > 0
    assert raw.info["despeckle_sar"] is None
    # speckle removed: less pixel-to-pixel variation in the SAR that was fused
    assert np.abs(np.diff(lee.sar, axis=1)).mean() < 0.8 * np.abs(np.diff(raw.sar, axis=1)).mean()
    res = _cli("fuse", str(opt), str(sar), str(tmp_path / "x.tif"), "--despeckle-sar", "nope")
    assert res.exit_code == 2 and "unknown despeckling method 'nope'" in res.stderr


@pytest.mark.slow
def test_streamed_scene_equals_in_memory_fusion(pair, tmp_path, prior) -> None:
    """fuse_scene streams DPS block by block (3 x 3 blocks here); the result equals the in-memory
    fusion of the same decoded pair with the same tile plan and seeds."""
    opt, sar = pair
    out = tmp_path / "streamed.tif"
    summary = fuse_scene(opt, sar, out, steps=2, prior=prior, tile=32, overlap=8, seed=5)
    assert summary["streamed"] is True and summary["blocks"] == 9
    p = load_pair(opt, sar)
    res = fuse_arrays(
        p.optical, p.sar, rgb=p.rgb, steps=2, prior=prior, tile=32, overlap=8, seed=5, despeckle_sar=None
    )
    expected = _encode(p.optical_profile, res, p.meta.dtype, p.meta.nodata)
    with rasterio.open(out) as f:
        got = f.read()
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_scene_despeckles_the_sar_in_its_own_geometry(pair, tmp_path) -> None:
    opt, sar = pair
    sar_geo = _sar_in_4326(sar, tmp_path / "s1_4326_intensity.tif")
    summary = fuse_scene(opt, sar_geo, tmp_path / "f.tif", method="average", despeckle_sar="lee")
    assert summary["despeckle_sar"]["method"] == "lee" and summary["despeckle_sar"]["looks"] > 1
    raw = load_pair(opt, sar_geo, despeckle_sar=None)
    lee = load_pair(opt, sar_geo, despeckle_sar="lee")
    assert np.nanstd(np.diff(np.log(lee.sar), axis=1)) < 0.8 * np.nanstd(np.diff(np.log(raw.sar), axis=1))


def test_interrupt_leaves_no_output(pair, tmp_path, prior, monkeypatch) -> None:
    """Ctrl-C in mid-run: nothing under the final name, temporary files removed, inputs untouched."""
    from geodiff.apps.fuse import dps as app

    opt, sar = pair
    calls = {"n": 0}
    original = app.DpsTiles.__call__

    def interrupted(self, tiles, ctx):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, tiles, ctx)

    monkeypatch.setattr(app.DpsTiles, "__call__", interrupted)
    out = tmp_path / "fused.tif"
    with pytest.raises(KeyboardInterrupt):
        fuse_scene(opt, sar, out, steps=1, prior=prior, tile=32, overlap=8)
    assert calls["n"] == 2
    assert not out.exists() and not list(tmp_path.glob(".fused.tif*"))


@pytest.mark.slow
def test_streamed_scene_with_a_warped_sar_matches_in_memory(pair, tmp_path, prior) -> None:
    """Block-wise warping of a SAR in another CRS gives (nearly) the whole-scene warp: the streamed
    DPS output stays within a few DN of the in-memory fusion of the same pair."""
    opt, sar = pair
    sar_geo = _sar_in_4326(sar, tmp_path / "s1_4326_intensity.tif")
    out = tmp_path / "streamed.tif"
    summary = fuse_scene(opt, sar_geo, out, steps=2, prior=prior, tile=32, overlap=8, seed=2)
    assert summary["sar_resampled"] is True and summary["blocks"] == 9
    assert _georef(out) == _georef(opt)
    p = load_pair(opt, sar_geo)
    res = fuse_arrays(
        p.optical, p.sar, rgb=p.rgb, steps=2, prior=prior, tile=32, overlap=8, seed=2, despeckle_sar=None
    )
    expected = _encode(p.optical_profile, res, p.meta.dtype, p.meta.nodata).astype(int)
    with rasterio.open(out) as f:
        got = f.read().astype(int)
    diff = np.abs(got - expected)
    assert np.median(diff) <= 1 and np.percentile(diff, 99) <= 0.02 * np.percentile(expected, 99)
