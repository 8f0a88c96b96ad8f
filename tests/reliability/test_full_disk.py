"""A full disk is an error with a clear message, nothing under the final name and no leftovers.

Before the fix, a Lee run on an 8 MB tmpfs failed with GDAL's "TIFFRewriteDirectory: Error fetching
directory count" (or, on some sizes, exited 0 with a file rasterio could not open).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability.scenes import leftovers, sha256, speckled, write_scene


# 1050 px: the scratch GeoTIFF fits and the COG conversion runs out of space;
# 1400 px: the scratch GeoTIFF itself does not fit.
@pytest.mark.parametrize("size", [1050, 1400])
def test_despeckle_onto_a_full_disk(invoke, small_fs: Path, tmp_path: Path, size: int) -> None:
    src = write_scene(
        tmp_path / "scene.tif", speckled(size, size), tiled=True, blockxsize=256, blockysize=256
    )
    before = sha256(src)
    out = small_fs / "out.tif"
    res = invoke("despeckle", src, out, "--method", "lee")
    assert res.exit_code == 1, res.output
    last = res.output.strip().splitlines()[-1]
    assert f"no space left on {small_fs}" in last and "MB free" in last and "needs about" in last, last
    assert "Traceback" not in res.output
    assert not out.exists()
    assert list(small_fs.iterdir()) == []  # no scratch GeoTIFF, COG or overview temp files
    assert sha256(src) == before


def test_short_free_space_is_warned_before_starting(invoke, small_fs: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    src = write_scene(tmp_path / "scene.tif", speckled(1000, 1000))
    res = invoke("despeckle", src, small_fs / "out.tif", "--method", "lee")
    assert f"MB free on {small_fs}" in caplog.text  # whatever the outcome, the user was told first
    if res.exit_code == 0:  # it fitted after compression: the output must then be complete
        import rasterio

        with rasterio.open(small_fs / "out.tif") as ds:
            assert ds.read().shape == (1, 1000, 1000)
    assert leftovers(small_fs) == []
