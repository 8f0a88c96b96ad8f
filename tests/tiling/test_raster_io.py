"""The one raster opener: GDAL path strings reach GDAL unchanged; bad files fail with named errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import tiling.raster_io as raster_io
from tiling.errors import (
    RasterIsFolderError,
    RasterNotFoundError,
    RasterOpenError,
    RasterPermissionError,
    RasterReadError,
)
from tiling.geometry import PixelWindow
from tiling.raster_io import gdal_path, is_gdal_path, open_raster, read_meta, read_window
from tiling.sources import RasterSource

PROFILE = {"crs": "EPSG:32632", "transform": from_origin(500_000, 5_000_000, 10, 10)}


@pytest.fixture
def scene(tmp_path: Path, write_tif) -> tuple[Path, np.ndarray]:  # noqa: ANN001
    """A 4-look gamma intensity GeoTIFF (64 x 80, float32) and its pixels."""
    data = np.random.default_rng(5).gamma(4.0, 0.25, (1, 64, 80)).astype(np.float32)
    return write_tif(tmp_path / "scene.tif", data, **PROFILE), data


@pytest.fixture
def zipped(scene: tuple[Path, np.ndarray], tmp_path: Path) -> str:
    """The scene inside a zip archive made here, as a /vsizip/ path (note the '//' after vsizip)."""
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(scene[0], "inner/scene.tif")
    path = f"/vsizip/{archive}/inner/scene.tif"
    assert "//" in path  # pathlib would collapse it and GDAL would look for a relative archive
    return path


# ---- GDAL path strings --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/vsizip//data/a.zip/b.tif",
        "/vsicurl/https://example.org//cogs/a.tif",
        "s3://bucket/key//a.tif",
        "zip+file:///data/a.zip!b.tif",
        'HDF5:"/data/a.h5"://dataset',
        "https://example.org/a.tif",
    ],
)
def test_the_exact_string_reaches_gdal(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def fake_open(arg: object, *a: object, **k: object) -> None:
        seen.append(arg)
        raise rasterio.errors.RasterioIOError("stop here")

    monkeypatch.setattr(raster_io.rasterio, "open", fake_open)
    assert is_gdal_path(path) and gdal_path(path) is path
    with pytest.raises(RasterOpenError, match="GDAL cannot open this path"):
        open_raster(path)
    with pytest.raises(RasterOpenError):
        RasterSource(path)
    assert seen == [path, path] and all(type(s) is str for s in seen)


def test_local_paths_are_not_gdal_paths(tmp_path: Path) -> None:
    assert not is_gdal_path(str(tmp_path / "a.tif")) and not is_gdal_path("C:\\data\\a.tif")
    assert not is_gdal_path(Path("/vsizip/a.zip/b.tif"))  # a Path has already lost its '//'
    assert gdal_path(tmp_path / "a.tif") == str(tmp_path / "a.tif")
    with pytest.raises(TypeError, match="str or os.PathLike"):
        gdal_path(3)  # type: ignore[arg-type]


def test_vsizip_reads_the_same_pixels_as_the_file(scene: tuple[Path, np.ndarray], zipped: str) -> None:
    with open_raster(zipped) as ds:
        assert ds.name == zipped and read_meta(ds).georeferenced
    data, valid = RasterSource(zipped).read(PixelWindow(-2, -3, 20, 30))
    ref = np.pad(scene[1], ((0, 0), (2, 0), (3, 0)), mode="reflect")[:, :20, :30]
    assert np.array_equal(data, ref) and valid.all()
    with pytest.raises(RasterOpenError, match="member name inside the archive"):
        open_raster(zipped.replace("inner/", "other/"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geodiff", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_vsizip_through_the_cli_info_and_the_despeckle_job(zipped: str, tmp_path: Path) -> None:
    info = _cli("info", "--json", zipped)
    assert info.returncode == 0, info.stderr
    doc = json.loads(info.stdout)
    assert doc["path"] == zipped and (doc["width"], doc["height"]) == (80, 64)
    out = tmp_path / "lee.tif"
    job = _cli("despeckle", zipped, str(out), "--method", "lee", "--looks", "4", "--json")
    assert job.returncode == 0, job.stderr
    assert json.loads(job.stdout)["input"] == zipped
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (80, 64) and np.isfinite(ds.read(1)).all()


# A static file server with HTTP byte ranges (what /vsicurl/ asks for). It runs in its own process:
# GDAL holds the GIL in parts of rasterio.open, so a server thread in this process would deadlock.
_SERVER = textwrap.dedent(
    """
    import functools, http.server, os, re, sys

    class Ranges(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            m = re.fullmatch(r"bytes=(\\d+)-(\\d*)", self.headers.get("Range", ""))
            path = self.translate_path(self.path)
            if m is None or not os.path.isfile(path):
                return super().do_GET()
            size = os.path.getsize(path)
            start, stop = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
            with open(path, "rb") as f:
                f.seek(start)
                body = f.read(stop - start + 1)
            self.send_response(206)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    handler = functools.partial(Ranges, directory=sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """(folder, port): an HTTP server on 127.0.0.1 serving ``folder``, stopped after the test."""
    folder = tmp_path / "www"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        yield folder, int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_vsicurl_from_a_local_http_server(
    scene: tuple[Path, np.ndarray], http_folder: tuple[Path, int]
) -> None:
    folder, port = http_folder
    shutil.copy(scene[0], folder / "scene.tif")
    url = f"/vsicurl/http://127.0.0.1:{port}/scene.tif"
    try:
        ds = open_raster(url)
    except RasterOpenError as exc:
        if "curl" in str(exc).lower() and "support" in str(exc).lower():
            pytest.skip(f"this GDAL has no curl support: {exc}")
        raise
    with ds:
        assert ds.name == url
        np.testing.assert_array_equal(ds.read(), scene[1])
    with pytest.raises(RasterOpenError, match="404"):
        open_raster(url.replace("scene.tif", "missing.tif"))


# ---- bad local files ----------------------------------------------------------------------------
def test_missing_folder_empty_and_non_raster_files(tmp_path: Path) -> None:
    with pytest.raises(RasterNotFoundError, match="no such file"):
        open_raster(tmp_path / "missing.tif")
    with pytest.raises(RasterIsFolderError, match="is a folder"):
        open_raster(tmp_path)
    empty = tmp_path / "empty.tif"
    empty.touch()
    with pytest.raises(RasterOpenError, match="empty \\(0 bytes\\)"):
        open_raster(empty)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster\n" * 20)
    with pytest.raises(ValueError, match="not a raster GDAL can read"):  # exit code 2 on the CLI
        open_raster(text)


def test_unreadable_file(scene: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    path = scene[0]
    path.chmod(0o000)
    try:
        if os.geteuid() == 0:  # root ignores permission bits: make the check see what a user would
            real = os.access
            monkeypatch.setattr(raster_io.os, "access", lambda p, m: False if Path(p) == path else real(p, m))
        with pytest.raises(RasterPermissionError, match="chmod"):
            open_raster(path)
    finally:
        path.chmod(0o644)


def test_truncated_geotiff_names_the_file_on_open_or_on_read(tmp_path: Path, write_tif) -> None:  # noqa: ANN001
    data = np.random.default_rng(1).random((1, 256, 256)).astype(np.float32)
    full = write_tif(tmp_path / "full.tif", data, tiled=True, blockxsize=64, blockysize=64, **PROFILE)
    head, half = tmp_path / "head.tif", tmp_path / "half.tif"
    for cut, size in ((head, 100), (half, full.stat().st_size // 2)):
        shutil.copy(full, cut)
        os.truncate(cut, size)
    with pytest.raises(RasterOpenError, match=f"{head}: not a raster GDAL can read.*truncated"):
        open_raster(head)
    # the header survives: the file opens, its missing blocks fail when read
    source = RasterSource(half)
    with pytest.raises(
        RasterReadError, match=f"{half}: rows 0-255, cols 0-255 could not be read .*truncated"
    ):
        source.read(PixelWindow(0, 0, 256, 256))
    with open_raster(half) as ds:
        np.testing.assert_array_equal(read_window(ds, PixelWindow(0, 0, 64, 64), 1), data[0, :64, :64])
