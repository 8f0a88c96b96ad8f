"""The COG writer and output checks, through the runner: georeferencing round trip, GCPs, COG
validity, bad input and outputs, interrupts (nothing under the final name)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import shared_geotiffs
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from tiling.cog import CogWriter
from tiling.errors import OutputExistsError, OutputIsInputError, TileFunctionError
from tiling.geometry import PixelWindow
from tiling.plan import TileSpec
from tiling.raster_io import read_meta
from tiling.runner import RasterOutput, run_raster


def _double(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return block * 2


def _run(src: Path | str, out: Path | str, fn, overwrite: bool = False, **spec: int) -> dict:  # noqa: ANN001
    """run_raster with an array function, the given TileSpec fields and no progress bar."""
    output = RasterOutput(overwrite=overwrite)
    return run_raster(str(src), str(out), fn, TileSpec(**spec), kind="array", output=output)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (np.isnan(a) and np.isnan(b)) or a == b


def _assert_same_georef(src: Path, out: Path) -> None:
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert (b.width, b.height, b.count) == (a.width, a.height, a.count)
        assert b.crs == a.crs
        assert b.transform == a.transform
        assert _same(a.nodata, b.nodata)
        assert b.descriptions == a.descriptions
        assert b.tags() == a.tags()
        assert [b.tags(i) for i in range(1, b.count + 1)] == [a.tags(i) for i in range(1, a.count + 1)]
        assert b.scales == a.scales and b.offsets == a.offsets
        assert b.gcps[1] == a.gcps[1] and len(b.gcps[0]) == len(a.gcps[0])
        assert b.dtypes[0] == "float32"
    valid, errors, _ = cog_validate(str(out), quiet=True)
    assert valid, errors


@pytest.mark.slow
@pytest.mark.parametrize("src", shared_geotiffs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_georeferencing_round_trip_shared_data(src: Path, shared_data: Path, tmp_path: Path) -> None:
    before = _sha(src)
    out = tmp_path / "out.tif"
    _run(str(src), str(out), _double, tile=512, overlap=0, halo=1)
    _assert_same_georef(src, out)
    with rasterio.open(src) as a, rasterio.open(out) as b:
        x, y = a.read(masked=True), b.read(masked=True)
        data_bands = [i for i, ci in enumerate(a.colorinterp) if ci != ColorInterp.alpha]
        # an input validity mask comes back as the output's per-dataset mask (alpha bands aside)
        assert np.array_equal(np.ma.getmaskarray(x)[data_bands], np.ma.getmaskarray(y)[data_bands])
        x, y = x[data_bands], y[data_bands]
        assert np.allclose(y.compressed(), 2 * x.compressed().astype(np.float32))
    assert _sha(src) == before


def test_gcp_georeferenced_input_keeps_gcps_and_metadata(tmp_path: Path) -> None:
    gcps = [
        GroundControlPoint(row=0, col=0, x=9.1, y=46.8, z=0.0),
        GroundControlPoint(row=0, col=95, x=9.2, y=46.81, z=0.0),
        GroundControlPoint(row=79, col=0, x=9.09, y=46.7, z=0.0),
        GroundControlPoint(row=79, col=95, x=9.19, y=46.71, z=10.0),
    ]
    src = tmp_path / "gcp.tif"
    data = np.random.default_rng(0).gamma(1.0, 1.0, (2, 80, 96)).astype(np.float32)
    with rasterio.open(
        src, "w", driver="GTiff", height=80, width=96, count=2, dtype="float32", nodata=-1.0
    ) as dst:
        dst.write(data)
        dst.gcps = (gcps, CRS.from_epsg(4326))
        dst.update_tags(MISSION="S1A", PRODUCT="GRD")
        dst.update_tags(1, POLARISATION="VV")
        dst.set_band_description(1, "VV intensity")
        dst.set_band_description(2, "VH intensity")
        dst.scales, dst.offsets = (1.0, 2.0), (0.0, 0.5)
    out = tmp_path / "out.tif"
    _run(str(src), str(out), _double, tile=32, overlap=0, halo=2)
    _assert_same_georef(src, out)
    with rasterio.open(out) as b:
        got = b.gcps[0]
        assert [(g.row, g.col, g.x, g.y, g.z) for g in got] == [(g.row, g.col, g.x, g.y, g.z) for g in gcps]
        assert np.allclose(b.read(), 2 * data)


# ---- bad input ----------------------------------------------------------------------------------
@pytest.fixture
def scene(tmp_path: Path, write_tif) -> Path:  # noqa: ANN001
    data = np.random.default_rng(0).gamma(1.0, 1.0, (1, 64, 80)).astype(np.float32)
    return write_tif(tmp_path / "in.tif", data, crs="EPSG:32632", transform=from_origin(500000, 5e6, 10, 10))


def _only(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"this is not a tiff" * 10)
    before = _sha(bad)
    with pytest.raises(ValueError, match="not a raster GDAL can read"):
        _run(str(bad), str(tmp_path / "o.tif"), _double)
    with pytest.raises(FileNotFoundError, match="no such file"):
        _run(str(tmp_path / "missing.tif"), str(tmp_path / "o.tif"), _double)
    assert _only(tmp_path) == {"bad.tif"} and _sha(bad) == before


def test_no_georeferencing_warns_and_processes(tmp_path: Path, write_tif) -> None:  # noqa: ANN001
    src = write_tif(tmp_path / "plain.tif", np.ones((1, 20, 30), np.float32))
    with pytest.warns(UserWarning, match="no georeferencing"):
        _run(str(src), str(tmp_path / "o.tif"), _double, halo=1)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert np.array_equal(ds.read(), 2 * np.ones((1, 20, 30), np.float32))


def test_all_nodata_scene_is_an_error_without_output(tmp_path: Path, write_tif) -> None:  # noqa: ANN001
    src = write_tif(
        tmp_path / "empty.tif",
        np.full((1, 40, 40), -9999, np.float32),
        nodata=-9999,
        crs="EPSG:4326",
        transform=from_origin(0, 0, 1, 1),
    )
    before = _sha(src)
    with pytest.raises(ValueError, match="every pixel is nodata"):
        _run(str(src), str(tmp_path / "o.tif"), _double, tile=16, overlap=0, halo=1)
    assert _only(tmp_path) == {"empty.tif"} and _sha(src) == before


def test_nan_and_inf_pixels_become_nodata_with_a_warning(tmp_path: Path, write_tif) -> None:  # noqa: ANN001
    data = np.ones((1, 30, 30), np.float32)
    data[0, 3, 4], data[0, 10, 10], data[0, 20, 5] = np.nan, np.inf, -np.inf
    src = write_tif(
        tmp_path / "nan.tif", data, nodata=0.0, crs="EPSG:4326", transform=from_origin(0, 0, 1, 1)
    )
    with pytest.warns(UserWarning, match="3 NaN/inf pixel"):
        _run(str(src), str(tmp_path / "o.tif"), _double, halo=1)
    with rasterio.open(tmp_path / "o.tif") as ds:
        out = ds.read(1)
    bad = ~np.isfinite(data[0])
    assert (out[bad] == 0.0).all() and (out[~bad] == 2.0).all()


def test_tile_smaller_than_halo(scene: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smaller than the halo"):
        _run(str(scene), str(tmp_path / "o.tif"), _double, tile=4, overlap=0, halo=8)
    assert _only(tmp_path) == {"in.tif"}


def test_output_folder_not_writable(scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits: make the check see what a user would
        import tiling.cog as rio_mod

        real = os.access
        monkeypatch.setattr(rio_mod.os, "access", lambda p, m: False if Path(p) == locked else real(p, m))
    try:
        with pytest.raises(PermissionError, match="not writable"):
            _run(str(scene), str(locked / "o.tif"), _double, halo=1)
        with pytest.raises(FileNotFoundError, match="does not exist"):
            _run(str(scene), str(tmp_path / "nope" / "o.tif"), _double, halo=1)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_output_exists_needs_overwrite_and_input_is_never_output(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.tif"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _run(str(scene), str(out), _double, halo=1)
    assert out.read_bytes() == b"keep me"
    before = _sha(scene)
    with pytest.raises(OutputIsInputError, match="output is the input"):
        _run(str(scene), str(scene), _double, halo=1, overwrite=True)
    assert _sha(scene) == before
    _run(str(scene), str(out), _double, halo=1, overwrite=True)
    with rasterio.open(out) as ds:
        assert ds.count == 1


def _interrupt(block: np.ndarray, valid: np.ndarray) -> np.ndarray:
    raise KeyboardInterrupt


def test_interrupt_leaves_no_partial_output(scene: Path, tmp_path: Path) -> None:
    before = _sha(scene)
    with pytest.raises(KeyboardInterrupt):
        _run(str(scene), str(tmp_path / "o.tif"), _interrupt, tile=16, overlap=0, halo=1)
    assert _only(tmp_path) == {"in.tif"} and _sha(scene) == before


def test_cog_writer_writes_named_windows_and_refuses_misfits(scene: Path, tmp_path: Path) -> None:
    with rasterio.open(scene) as ds:
        full = ds.read(1)
        meta = read_meta(ds)
    h, w = full.shape  # 64 x 80: windows are rows first, never rasterio's (col, row) order
    out = tmp_path / "w.tif"
    with CogWriter(out, meta) as writer:
        writer.write(full[None, :32], PixelWindow(0, 0, 32, w))
        writer.write(full[None, 32:, :50], PixelWindow(32, 0, h - 32, 50))
        writer.write(full[None, 32:, 50:], PixelWindow(32, 50, h - 32, w - 50))
        with pytest.raises(TileFunctionError, match="expected \\(1, 10, 12\\)"):
            writer.write(full[None, :12, :10], PixelWindow(0, 0, 10, 12))
        assert list(tmp_path.glob("w.tif*")) == []  # nothing under the final name while writing
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    with rasterio.open(out) as ds:
        assert np.array_equal(ds.read(1), full)


def test_before_cog_failure_leaves_no_output(scene: Path, tmp_path: Path) -> None:
    with rasterio.open(scene) as ds:
        meta = read_meta(ds)

    def boom(tmp: str) -> None:
        assert Path(tmp).exists()
        raise RuntimeError("QA failed")

    with pytest.raises(RuntimeError, match="QA failed"):
        with CogWriter(tmp_path / "o.tif", meta, before_cog=boom) as writer:
            writer.write(np.ones((1, 64, 80), np.float32), PixelWindow(0, 0, 64, 80))
    assert _only(tmp_path) == {"in.tif"}


def test_verify_raster_refuses_a_truncated_or_different_file(tmp_path: Path) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from tiling.cog import verify_raster
    from tiling.errors import OutputVerifyError

    path = tmp_path / "x.tif"
    tr = from_origin(0, 100, 1, 1)
    prof = dict(driver="GTiff", width=64, height=64, count=1, dtype="float32", crs="EPSG:32631", transform=tr)
    prof.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(np.random.default_rng(0).random((1, 64, 64), dtype=np.float32))
    good = dict(
        width=64, height=64, count=1, dtype="float32", crs=rasterio.crs.CRS.from_epsg(32631), transform=tr
    )
    verify_raster(path, **good)
    with pytest.raises(OutputVerifyError, match="2 band"):
        verify_raster(path, **{**good, "count": 2})
    with pytest.raises(OutputVerifyError, match="geotransform"):
        verify_raster(path, **{**good, "transform": from_origin(5, 100, 1, 1)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # lose the last blocks
    with pytest.raises(OutputVerifyError, match="failed verification"):
        verify_raster(path, **good, final=tmp_path / "final.tif")


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.nc", "out", "out.tif.gz"])
def test_output_must_be_a_geotiff_name(tmp_path: Path, name: str) -> None:
    from tiling.cog import GEOTIFF_SUFFIXES, check_output_path
    from tiling.errors import OutputSuffixError

    with pytest.raises(OutputSuffixError, match=r"\.tif, \.tiff"):
        check_output_path(tmp_path / name, False, suffixes=GEOTIFF_SUFFIXES)
    assert check_output_path(tmp_path / "OUT.TIFF", False, suffixes=GEOTIFF_SUFFIXES).name == "OUT.TIFF"
