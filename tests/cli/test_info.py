"""`geodiff info` and the CLI conventions (exit codes, one-line errors, --json)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import shared_geotiffs

from geodiff import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geodiff", *args], capture_output=True, text=True, timeout=300
    )


def test_help_and_version() -> None:
    out = run_cli("--help")
    assert out.returncode == 0 and "info" in out.stdout
    out = run_cli("--version")
    assert out.returncode == 0 and __version__ in out.stdout


def _check_against_rasterio(path: Path, info: dict) -> None:
    with rasterio.open(path) as ds:
        assert info["width"] == ds.width and info["height"] == ds.height
        assert info["count"] == ds.count and info["dtype"] == ds.dtypes[0]
        assert info["crs"] == ds.crs.to_string()
        assert info["transform"] == pytest.approx(list(ds.transform)[:6])
        if ds.nodata is None:
            assert info["nodata"] is None and not info["nodata_is_nan"]
        elif np.isnan(ds.nodata):
            assert info["nodata_is_nan"]
        else:
            assert info["nodata"] == ds.nodata
        assert info["descriptions"] == list(ds.descriptions)
        full = ds.read(masked=True).astype("float64")
        for b, band in zip(info["bands"], full, strict=True):
            valid = band.compressed()
            valid = valid[np.isfinite(valid)]
            # Values come from a decimated read: they lie inside the full range.
            assert valid.min() <= b["min"] <= b["max"] <= valid.max()
    if info["units"] is None:  # the one units detector could not decide: info says why
        assert info["units_source"] == "ambiguous" and info["units_evidence"]
    else:
        assert info["units"] in {"intensity", "amplitude", "db", "complex", "reflectance", "dn"}


def test_info_sample_scene_json(sample_scene: Path) -> None:
    out = run_cli("info", str(sample_scene), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    _check_against_rasterio(sample_scene, info)
    assert info["units"] == "intensity"
    assert info["crs"] == "EPSG:32632"


def test_info_text(sample_scene: Path) -> None:
    out = run_cli("info", str(sample_scene))
    assert out.returncode == 0
    assert "512 x 512" in out.stdout and "EPSG:32632" in out.stdout


@pytest.mark.parametrize("path", shared_geotiffs(), ids=lambda p: p.parent.name + "/" + p.name)
def test_info_every_shared_geotiff(path: Path) -> None:
    from geodiff.apps.info import scene_info

    info = scene_info(path)
    _check_against_rasterio(path, info)


def test_info_units_of_shared_data(shared_data: Path) -> None:
    from geodiff.apps.info import scene_info

    assert scene_info(next(shared_data.glob("bigearthnet_s1s2_pairs/*/s1_VV_VH_db.tif")))["units"] == "db"
    assert scene_info(shared_data / "rasterio_rgb_byte/RGB.byte.tif")["units"] == "dn"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d / "missing.tif", "no such file"),
        (lambda d: _write(d / "empty.tif", b""), "empty"),
        (lambda d: _write(d / "text.tif", b"hello, not an image"), "not a raster"),
    ],
    ids=["missing", "empty", "not-a-raster"],
)
def test_info_bad_input_one_line_error(tmp_path: Path, make, needle: str) -> None:
    path = make(tmp_path)
    out = run_cli("info", str(path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle in lines[0] and "Traceback" not in out.stderr


def test_sensor_option_sets_the_profile_and_units(sample_scene: Path) -> None:
    out = run_cli("info", str(sample_scene), "--json", "--sensor", "sar-amplitude")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["sensor"], info["units"]) == ("sar-amplitude", "amplitude")
    auto = json.loads(run_cli("info", str(sample_scene), "--json").stdout)
    assert auto["sensor"] != "sar-amplitude" and auto["looks_estimate"] != info["looks_estimate"]


def test_version_and_info_do_not_import_torch(sample_scene: Path) -> None:
    """The light commands stay light: torch is imported only by the commands that sample."""
    code = (
        "import sys; from geodiff.cli import main; sys.argv = ['geodiff', 'info', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'geodiff info imported torch'"
    )
    out = subprocess.run([sys.executable, "-c", code, str(sample_scene)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmd = [sys.executable, "-X", "importtime", "-m", "geodiff", "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0 and " torch" not in out.stderr


def test_help_shows_the_real_api_signatures() -> None:
    import inspect

    import geodiff
    from geodiff import api

    assert geodiff.despeckle is api.despeckle and geodiff.fuse is api.fuse
    params = inspect.signature(geodiff.despeckle).parameters
    assert list(params)[:2] == ["data", "out"] and params["method"].default == "sar-dps"
    assert "config" in inspect.signature(geodiff.fuse).parameters
    assert "Raises" in geodiff.despeckle.__doc__ and "Raises" in geodiff.fuse.__doc__
