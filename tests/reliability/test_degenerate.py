"""Degenerate scenes (1x1, 3x5, 1xN strips, constant) get a result from every classical method and
exit 0; a QA with nothing to measure says "not measurable" instead of failing the run.

Before the fix a 3x5 px Lee run wrote a valid COG, then exited 1 with "TypeError: unsupported format
string passed to NoneType.__format__" (the QA figures were None), and the rerun refused because the
output existed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import leftovers, speckled, write_scene

SCENES = {
    "1x1": lambda: speckled(1, 1),
    "3x5": lambda: speckled(3, 5),
    "1x40": lambda: speckled(1, 40),
    "40x1": lambda: speckled(40, 1),
    "constant": lambda: np.full((24, 24), 0.7, np.float32),
}


@pytest.mark.parametrize("method", ["lee", "boxcar", "refined-lee", "frost", "gamma-map"])
@pytest.mark.parametrize("scene", sorted(SCENES))
def test_degenerate_scene(invoke, tmp_path: Path, scene: str, method: str) -> None:
    data = SCENES[scene]()
    src = write_scene(tmp_path / "in.tif", data)
    out = tmp_path / "out.tif"
    res = invoke("despeckle", src, out, "--method", method, "--units", "intensity", "--looks", "4")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    with rasterio.open(out) as ds:
        got = ds.read(1)
    assert got.shape == data.shape and np.isfinite(got).all()
    if scene == "constant":
        np.testing.assert_allclose(got, 0.7, rtol=1e-5)  # a constant scene stays constant
    if scene in ("1x1", "3x5", "constant"):
        assert "not measurable" in res.output
    assert leftovers(tmp_path) == []


def test_3x5_lee_json_and_text_agree(invoke, tmp_path: Path) -> None:
    src = write_scene(tmp_path / "in.tif", speckled(3, 5))
    text = invoke("despeckle", src, tmp_path / "a.tif", "--method", "lee", "--units", "intensity")
    as_json = invoke(
        "despeckle", src, tmp_path / "b.tif", "--method", "lee", "--units", "intensity", "--json"
    )
    assert text.exit_code == as_json.exit_code == 0, text.output
    assert "QA band 1: not measurable" in text.output
