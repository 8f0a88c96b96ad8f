"""`geodiff despeckle`: outputs, units round trip, method registry, exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

from geodiff.apps.despeckle import METHODS, Method, despeckle_scene, register
from geodiff.apps.despeckle.record import DespeckleRecord
from geodiff.cli import cli
from sensors.speckle_filters import FILTERS, apply_filter


@pytest.fixture
def scene(sar_crop: Path) -> Path:
    return sar_crop


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args), env={"GEODIFF_PROGRESS": "none"})


@pytest.mark.parametrize("method", FILTERS)
def test_cli_despeckle_each_method(method: str, scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    before = _sha(scene)
    res = _invoke(
        "despeckle", str(scene), str(out), "--method", method, "--looks", "4", "--tile", "64", "--json"
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    # halo 4: the 7x7 window + the 3x3 folding of negative samples (sensors.speckle_filters)
    assert summary["method"] == method and summary["looks"] == 4.0 and summary["halo"] == 4
    with rasterio.open(scene) as a, rasterio.open(out) as b:
        tags = b.tags()
        qa = json.loads(tags.pop("GEODIFF_QA"))  # PROTOCOL §2 figures stored with the output
        record = DespeckleRecord.from_tags({"GEODIFF_DESPECKLE": tags.pop("GEODIFF_DESPECKLE")})
        assert tags.pop("GEODIFF_UNITS") == "intensity" and b.units == ("intensity",)  # round trip never asks
        assert (record.method, record.looks, record.window, record.units) == (method, (4.0,), 7, "intensity")
        assert (record.tile, record.halo, record.sampler) == (64, 4, None)
        assert (b.crs, b.transform, tags, b.descriptions) == (
            a.crs,
            a.transform,
            a.tags(),
            a.descriptions,
        )
        assert len(qa) == 1 and qa[0]["looks"] == 4.0 and 0.5 < qa[0]["ratio_mean"] < 1.5
        assert qa[0]["looks_source"] == "given"
        x, y = a.read(1).astype(np.float64), b.read(1).astype(np.float64)
    # tiled (64 px blocks + halo) == the filter on the whole array
    ref = apply_filter(method, np.pad(x, 3, mode="reflect"), None, 4.0, 7)[3:-3, 3:-3]
    assert np.allclose(y, ref, rtol=1e-6)
    assert y.var() < x.var()
    assert cog_validate(str(out), quiet=True)[0]
    assert _sha(scene) == before


def _rewrite(src: Path, dst: Path, fn, description: str) -> Path:  # noqa: ANN001
    with rasterio.open(src) as s:
        prof = s.profile
        data = fn(s.read().astype(np.float64)).astype(np.float32)
    with rasterio.open(dst, "w", **prof) as d:
        d.write(data)
        d.set_band_description(1, description)
    return dst


@pytest.mark.parametrize(
    ("units", "encode", "decode"),
    [("db", lambda i: 10 * np.log10(i), lambda d: 10 ** (d / 10)), ("amplitude", np.sqrt, np.square)],
)
def test_db_and_amplitude_are_filtered_in_intensity_and_written_back(
    units: str, encode, decode, scene: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    src = _rewrite(scene, tmp_path / f"{units}.tif", encode, f"VV {units}")
    summary = despeckle_scene(src, tmp_path / "o.tif", "lee", looks=4.0, progress=False)
    assert summary["units"] == units
    ref_int = despeckle_scene(scene, tmp_path / "i.tif", "lee", looks=4.0, progress=False)
    assert ref_int["units"] == "intensity"
    with rasterio.open(tmp_path / "o.tif") as a, rasterio.open(tmp_path / "i.tif") as b:
        assert np.allclose(decode(a.read(1).astype(np.float64)), b.read(1), rtol=1e-4)


def test_looks_are_estimated_when_not_given(scene: Path, tmp_path: Path) -> None:
    summary = despeckle_scene(scene, tmp_path / "o.tif", "boxcar", window=3, progress=False)
    assert 0.5 < summary["looks"] < 50 and "looks_estimate" in summary


def _tiles_identity(tiles, ctx):  # noqa: ANN001, ANN202
    assert len(ctx.seeds) == tiles.shape[0]
    return ctx.blend(tiles)


def test_registered_tile_method_plugs_in(scene: Path, tmp_path: Path) -> None:
    register(Method("test-identity", "tiles", lambda **_: _tiles_identity, lambda w: 4))
    try:
        despeckle_scene(
            scene, tmp_path / "o.tif", "test-identity", looks=1.0, tile=48, overlap=8, progress=False
        )
        with rasterio.open(scene) as a, rasterio.open(tmp_path / "o.tif") as b:
            assert np.allclose(a.read(), b.read(), rtol=1e-6)
    finally:
        METHODS.pop("test-identity")


def test_cli_errors_exit_2_without_output(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    before = _sha(scene)
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    cases = {
        "not a raster GDAL can read": ("despeckle", str(bad), str(out)),
        "smaller than the halo": (
            "despeckle",
            str(scene),
            str(out),
            "--tile",
            "2",
            "--looks",
            "1",
            "--method",
            "lee",
        ),
        "odd number": ("despeckle", str(scene), str(out), "--window", "4", "--looks", "1", "--method", "lee"),
        "output is the input": ("despeckle", str(scene), str(scene), "--overwrite"),
    }
    for message, args in cases.items():
        res = _invoke(*args)
        assert res.exit_code == 2, (message, res.output)
        assert message in res.output and "Traceback" not in res.output
    assert not out.exists()
    out.write_bytes(b"old")
    res = _invoke("despeckle", str(scene), str(out), "--looks", "1")
    assert res.exit_code == 2 and "--overwrite" in res.output and out.read_bytes() == b"old"
    assert (
        _invoke("despeckle", str(scene), str(out), "--looks", "1", "--overwrite", "--method", "lee").exit_code
        == 0
    )
    assert _sha(scene) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tif", "in.tif", "out.tif"]


def test_all_nodata_scene_exit_2(tmp_path: Path) -> None:
    src = tmp_path / "nod.tif"
    prof = {"driver": "GTiff", "width": 40, "height": 30, "count": 1, "dtype": "float32", "nodata": 0.0}
    with rasterio.open(
        src, "w", crs="EPSG:32632", transform=rasterio.Affine(10, 0, 0, 0, -10, 0), **prof
    ) as d:
        d.write(np.zeros((1, 30, 40), np.float32))
    res = _invoke("despeckle", str(src), str(tmp_path / "o.tif"), "--looks", "1", "--method", "lee")
    assert res.exit_code == 2 and "every pixel is nodata" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nod.tif"]


def test_qa_says_where_the_looks_came_from(scene: Path, tmp_path: Path) -> None:
    """The stored QA of a run without --looks says its looks were estimated (and which value it used)."""
    res = _invoke("despeckle", str(scene), str(tmp_path / "o.tif"), "--method", "lee", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["qa"][0]["looks_source"] == "estimated" and summary["qa"][0]["looks"] == summary["looks"]
    with rasterio.open(tmp_path / "o.tif") as d:
        assert json.loads(d.tags()["GEODIFF_QA"])[0]["looks_source"] == "estimated"
