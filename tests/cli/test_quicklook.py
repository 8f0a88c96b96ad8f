"""`geodiff quicklook`: the band and the captions it is asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image


def _two_band(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as s:
        prof = s.profile | {"count": 2}
        vv = s.read(1)
    with rasterio.open(dst, "w", **prof) as d:
        d.write(np.stack([vv, vv[::-1]]))  # band 2: the scene upside down
    return dst


def _png(invoke, *args) -> np.ndarray:  # noqa: ANN001
    res = invoke("quicklook", *args)
    assert res.exit_code == 0, res.output
    return np.asarray(Image.open(args[2]))


def test_band_and_labels(invoke, sar_crop, tmp_path) -> None:
    scene = _two_band(sar_crop, tmp_path / "two.tif")
    # the two-band copy has no units metadata and real speckle does not tell: declare them
    b1 = _png(invoke, scene, scene, tmp_path / "b1.png", "--units", "intensity")
    b2 = _png(invoke, scene, scene, tmp_path / "b2.png", "--band", "2", "--units", "intensity")
    head = 22  # caption strip above the panels
    assert b1.shape == b2.shape
    # the panels of band 2 are those of band 1 upside down (the stretch is the same: same values)
    w = (b1.shape[1] - 8) // 2
    np.testing.assert_array_equal(b2[head:, :w], b1[head:, :w][::-1])
    labelled = _png(
        invoke, scene, scene, tmp_path / "l.png", "--labels", "raw", "filtered", "--units", "intensity"
    )
    np.testing.assert_array_equal(labelled[head:], b1[head:])
    assert not np.array_equal(labelled[:head], b1[:head])  # other captions


def test_missing_band_exit_2(invoke, sar_crop, tmp_path) -> None:
    res = invoke("quicklook", sar_crop, sar_crop, tmp_path / "x.png", "--band", "3")
    assert res.exit_code == 2 and "--band 3 does not exist" in res.output
    assert not (tmp_path / "x.png").exists()
