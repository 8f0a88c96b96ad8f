"""Sentinel-1 GRD zero borders: with a sensor profile whose zero means no data, the zero side is
nodata in the output (declared) and the valid pixels next to it keep their radiometry.

Before the fix, ``--sensor s1-grd-intensity`` on a file without a nodata tag filtered the zeros as
data: valid pixels 1-3 px from the zero side came out 11 % too dark (Lee 0.888) and the output
declared no nodata. SAR-DPS (default profile) fills the zero side with the valid side mirrored and
leaves it out of its local means (tests/reliability/test_rim.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import write_scene

BORDER = 16


def _s1_scene(tmp: Path, name: str, **profile: object) -> Path:
    rng = np.random.default_rng(3)
    data = rng.gamma(4.0, 1 / 4.0, (1024, 48)).astype(np.float32)  # reflectivity 1, L = 4
    data[:, :BORDER] = 0.0
    return write_scene(tmp / name, data, **profile)


@pytest.mark.parametrize("method", ["lee", "boxcar", pytest.param("sar-dps", marks=pytest.mark.slow)])
def test_zero_border_is_nodata_and_the_rim_is_unbiased(invoke, tmp_path: Path, method: str) -> None:
    plain = _s1_scene(tmp_path, "plain.tif")  # zeros, no nodata tag: as GRD products come
    tagged = _s1_scene(tmp_path, "tagged.tif", nodata=0.0)  # the reference: nodata declared
    args = ["--method", method, "--looks", "4", "--sensor", "s1-grd-intensity"]
    if method == "sar-dps":  # the default profile; tiles as wide as the scene
        args += ["--tile", "48", "--overlap", "8"]
    assert invoke("despeckle", plain, tmp_path / "out.tif", *args).exit_code == 0
    assert invoke("despeckle", tagged, tmp_path / "ref.tif", *args).exit_code == 0
    with rasterio.open(tmp_path / "out.tif") as ds, rasterio.open(tmp_path / "ref.tif") as rf:
        assert ds.nodata == 0.0
        out, ref = ds.read(1).astype(np.float64), rf.read(1).astype(np.float64)
    assert (out[:, :BORDER] == 0).all()  # the zero side stays nodata, not filled
    for d in (1, 2, 3):
        col = BORDER + d - 1
        ratio = out[:, col].mean() / ref[:, col].mean()
        assert ratio >= 0.98, f"{d} px from the border: rim ratio {ratio:.3f}"
    rim = out[:, BORDER : BORDER + 3].mean()
    assert abs(rim - 1.0) < 0.02, f"local mean next to the border {rim:.3f} (truth 1.0)"
