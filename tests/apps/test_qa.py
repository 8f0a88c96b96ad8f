"""No-reference QA (PROTOCOL.md §2): closed-form checks of the report, and `geodiff qa` on real
GeoTIFFs, including the bad-input errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from scipy.ndimage import uniform_filter

from geodiff.cli import cli
from sensors.quality import homogeneous_windows, quality_report

RTC = "s1_rtc_geotiff/sentinel1_rtc_vv_gamma0_epsg32632.tif"


def _smooth_scene(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return 1.0 + 0.5 * np.sin(xx / 40.0) * np.cos(yy / 55.0)


def test_perfect_despeckling_gives_the_ideal_figures() -> None:
    x = _smooth_scene((512, 512))
    looks = 3.0
    y = x * np.random.default_rng(0).gamma(looks, 1 / looks, x.shape)
    r = quality_report(y, x, looks)
    assert r.ratio_mean == pytest.approx(1.0, abs=0.01)
    assert r.ratio_var_times_looks == pytest.approx(1.0, abs=0.03)
    assert abs(r.bias_db) < 0.02
    assert r.enl_input == pytest.approx(looks, rel=0.15)
    assert r.enl_output > 100  # the clean scene is nearly constant on 32x32 windows
    d = r.to_dict()
    for key in ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output"):
        assert isinstance(d[key], float)


def test_closed_forms_bias_identity_and_scaling() -> None:
    y = _smooth_scene() * np.random.default_rng(1).gamma(2.0, 0.5, (256, 256))
    r = quality_report(y, 2.0 * y, looks=2.0)
    assert r.bias_db == pytest.approx(10 * math.log10(2.0), abs=1e-9)
    assert r.ratio_mean == pytest.approx(0.5, abs=1e-12)
    assert r.ratio_var_times_looks == pytest.approx(0.0, abs=1e-12)
    assert r.enl_output == pytest.approx(r.enl_input, rel=1e-9)  # ENL is scale-free


def test_windows_are_the_lowest_cv_tenth() -> None:
    y = np.random.default_rng(2).gamma(1.0, 1.0, (320, 320))
    y[:64, :64] = 5.0 + 0.01 * y[:64, :64]  # four very homogeneous windows
    mask = np.ones_like(y, dtype=bool)
    wins = homogeneous_windows(y, mask)
    assert len(wins) == 10  # 10 % of 100 windows
    picked = {(w[0].start, w[1].start) for w in wins[:4]}
    assert picked == {(0, 0), (0, 32), (32, 0), (32, 32)}


def test_masked_pixels_are_left_out() -> None:
    x = _smooth_scene()
    y = x * np.random.default_rng(3).gamma(4.0, 0.25, x.shape)
    out = x.copy()
    out[:50] = 1e9  # garbage where the mask says invalid
    mask = np.ones_like(x, dtype=bool)
    mask[:50] = False
    r = quality_report(y, out, 4.0, mask)
    assert r.ratio_mean == pytest.approx(1.0, abs=0.02)
    assert r.valid_pixels == mask.sum()


# ---- the CLI on real GeoTIFFs -----------------------------------------------------------------
def _write(path: Path, data: np.ndarray, like: Path | None = None, **extra) -> Path:
    data = data if data.ndim == 3 else data[None]
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": data.shape[0]}
    tags, desc = {}, None
    profile.update(crs="EPSG:32632", transform=Affine(10, 0, 500000, 0, -10, 5000000))
    if like is not None:
        with rasterio.open(like) as src:
            profile.update(crs=src.crs, transform=src.transform)
            tags, desc = src.tags(), src.descriptions
    profile.update(dtype=data.dtype, **extra)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
        if desc and len(desc) == data.shape[0]:
            dst.descriptions = desc
    return path


def _qa(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["qa", *map(str, args)])


@pytest.mark.slow  # a real subprocess: the installed entry point, not CliRunner
def test_qa_cli_matches_the_library_on_real_rtc(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / RTC
    with rasterio.open(src) as ds:
        y = ds.read(1).astype(np.float64)
    x = uniform_filter(y, 5)
    out = _write(tmp_path / "boxcar.tif", x.astype(np.float32), like=src)
    res = subprocess.run(
        [sys.executable, "-m", "geodiff", "qa", str(src), str(out), "--looks", "4.4", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    want = quality_report(y, x.astype(np.float32).astype(np.float64), 4.4)
    for key in ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output"):
        assert got[key] == pytest.approx(getattr(want, key), rel=1e-9, abs=1e-12), key
    assert got["sensor"] == "s1-grd-intensity" and got["looks_source"] == "given"
    assert abs(got["bias_db"]) < 0.01 and 0.9 < got["ratio_mean"] <= 1.0


def test_streamed_strips_match_the_in_memory_report(shared_data: Path, tmp_path: Path) -> None:
    from geodiff.apps.qa import qa_files

    src = shared_data / RTC
    with rasterio.open(src) as ds:
        y = ds.read(1).astype(np.float64)
    x = uniform_filter(y, 7).astype(np.float32)
    out = _write(tmp_path / "boxcar7.tif", x, like=src)
    got = qa_files(src, out, looks=4.0, strip=96)  # 11 strips, the last one partial
    want = quality_report(y, x, 4.0)
    for key in ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output", "n_windows"):
        assert got[key] == pytest.approx(getattr(want, key), rel=1e-9), key


def test_qa_cli_decodes_db_and_estimates_looks(shared_data: Path, tmp_path: Path) -> None:
    src = next(shared_data.glob("bigearthnet_s1s2_pairs/*/s1_VV_VH_db.tif"))
    with rasterio.open(src) as ds:
        db = ds.read().astype(np.float64)
    lin = 10 ** (db / 10)
    filtered = np.stack([uniform_filter(b, 3) for b in lin])
    out = _write(
        tmp_path / "s1_VV_VH_db_filtered.tif", (10 * np.log10(filtered)).astype(np.float32), like=src
    )
    res = _qa(src, out, "--band", "2", "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["sensor"] == "s1-grd-db" and got["units"] == "db" and got["band"] == 2
    assert got["looks_source"] == "estimated" and 1.5 < got["looks"] < 10
    want = quality_report(lin[1], filtered[1], got["looks"])
    assert got["bias_db"] == pytest.approx(want.bias_db, abs=1e-4)
    assert got["ratio_mean"] == pytest.approx(want.ratio_mean, rel=1e-4)


# ---- bad input: one test each, through the CLI -------------------------------------------------
def _one_line_error(res, needle: str) -> None:  # noqa: ANN001
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr


def test_wrong_band_count_for_profile(shared_data: Path) -> None:
    rgb = shared_data / "rasterio_rgb_byte/RGB.byte.tif"
    _one_line_error(_qa(rgb, rgb, "--sensor", "s1-grd-db"), "expects 1 to 2 band(s), the file has 3")


def test_db_values_declared_linear(shared_data: Path) -> None:
    src = next(shared_data.glob("bigearthnet_s1s2_pairs/*/s1_VV_VH_db.tif"))
    _one_line_error(_qa(src, src, "--sensor", "sar-intensity"), "look like dB")


def test_all_zero_scene(tmp_path: Path, shared_data: Path) -> None:
    zero = _write(tmp_path / "zero.tif", np.zeros((128, 128), np.float32), like=shared_data / RTC)
    _one_line_error(_qa(zero, zero), "no valid non-zero pixels")


def test_units_cannot_be_told_with_auto(tmp_path: Path) -> None:
    """Positive float values, no metadata, no speckle tail: dB or linear? We refuse to guess."""
    scene = (20.0 + 5.0 * _smooth_scene()).astype(np.float32)
    path = _write(tmp_path / "scene.tif", scene)
    _one_line_error(_qa(path, path), "--units intensity|amplitude|db")
    res = _qa(path, path, "--sensor", "sar-intensity", "--looks", "1")  # a fix the message names
    assert res.exit_code == 0, res.output
    res = _qa(path, path, "--units", "intensity", "--looks", "1")  # the other
    assert res.exit_code == 0, res.output


def test_mismatched_scenes_and_bands(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / RTC
    small = _write(tmp_path / "small.tif", np.ones((64, 64), np.float32), like=src)
    _one_line_error(_qa(src, small), "pass the despeckled version of the same scene")
    _one_line_error(_qa(src, src, "--band", "3"), "--band 3 does not exist")
    _one_line_error(_qa(shared_data / "rasterio_rgb_byte/RGB.byte.tif", src), "needs sar data")


def test_qa_of_a_despeckled_slc(shared_data: Path, tmp_path: Path) -> None:
    """Complex SLC in, intensity out (no phase after despeckling): decoded as |z|² and intensity."""
    amp = np.load(shared_data / "sar2sar_s1_singlelook/lely_1.npy").astype(np.float64)
    phase = np.random.default_rng(4).uniform(-np.pi, np.pi, amp.shape)
    slc = _write(
        tmp_path / "S1A_IW_SLC__1SDV_20200101T000000_crop.tif",
        (amp * np.exp(1j * phase)).astype(np.complex64),
    )
    out = _write(tmp_path / "despeckled.tif", uniform_filter(amp**2, 5).astype(np.float32))
    res = _qa(slc, out, "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["sensor"] == "s1-slc" and got["units"] == "complex"
    want = quality_report(amp**2, uniform_filter(amp**2, 5), got["looks"])
    assert got["bias_db"] == pytest.approx(want.bias_db, abs=1e-3)
    assert 0.85 < got["looks"] < 1.15


def _blocks(h: int, w: int, rows: int, cols: int):  # noqa: ANN202 - (row, col, slices) on the block grid
    for r in range(0, h, rows):
        for c in range(0, w, cols):
            yield r, c, (slice(r, min(r + rows, h)), slice(c, min(c + cols, w)))


def test_blocks_of_any_size_give_the_whole_scene_report_exactly() -> None:
    from sensors.quality import QualityAccumulator

    rng = np.random.default_rng(7)
    h, w = 203, 331  # partial windows on the bottom and right edges
    x = _smooth_scene((h, w))
    y = x * rng.gamma(3.0, 1 / 3.0, x.shape)
    y[:64, :96] = np.tile(y[:32, :32], (2, 3))  # six windows with the same CV: ties broken row-major
    mask = rng.random(x.shape) > 0.02
    mask[150:, 40:90] = False
    want = quality_report(y, x, 3.0, mask).to_dict()
    for rows, cols in [(32, 32), (64, 96), (96, 10_000), (10_000, 64), (160, 288)]:
        acc = QualityAccumulator()
        for r, c, sl in _blocks(h, w, rows, cols):
            acc.add(y[sl], x[sl], mask[sl], origin=(r, c))
        assert acc.report(3.0).to_dict() == want, (rows, cols)
    with pytest.raises(ValueError, match="QA window grid"):
        QualityAccumulator().add(y[:32, 5:40], x[:32, 5:40], origin=(0, 5))


def test_qa_files_chunked_equals_unchunked_exactly(shared_data: Path, tmp_path: Path) -> None:
    from geodiff.apps.qa import qa_files

    src = shared_data / RTC
    with rasterio.open(src) as ds:
        y = ds.read(1).astype(np.float64)
    out = _write(tmp_path / "boxcar5.tif", uniform_filter(y, 5).astype(np.float32), like=src)
    whole = qa_files(src, out, looks=4.0, strip=1 << 20, columns=1 << 20)
    for strip, columns in [(96, 64), (32, 1 << 20), (1 << 20, 160)]:
        assert qa_files(src, out, looks=4.0, strip=strip, columns=columns) == whole, (strip, columns)
