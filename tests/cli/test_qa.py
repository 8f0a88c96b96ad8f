"""`geodiff qa`: every option reaches the report (looks, band, sensor/units, JSON or text)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy.ndimage import uniform_filter

from geodiff.apps.qa import qa_files
from sensors.quality import quality_report


@pytest.fixture
def two_bands(sar_crop: Path, tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """ORIGINAL (VV and a rougher VV-like band 2) and PROCESSED (a 5x5 box filter of each)."""
    with rasterio.open(sar_crop) as s:
        prof = s.profile | {"count": 2, "dtype": "float32"}
        vv = s.read(1).astype(np.float64)
    b2 = 0.3 * vv * np.random.default_rng(0).gamma(2.0, 0.5, vv.shape)
    y = np.stack([vv, b2]).astype(np.float32)
    x = np.stack([uniform_filter(b, 5) for b in y.astype(np.float64)]).astype(np.float32)
    paths = []
    for name, data in (("orig.tif", y), ("proc.tif", x)):
        with rasterio.open(tmp_path / name, "w", **prof) as d:
            d.write(data)
            d.descriptions = ("VV intensity", "VH intensity")
        paths.append(tmp_path / name)
    return paths[0], paths[1], y.astype(np.float64), x.astype(np.float64)


def _qa(invoke, *args) -> dict:  # noqa: ANN001
    res = invoke("qa", *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_looks_are_the_ones_given(invoke, two_bands) -> None:
    orig, proc, y, x = two_bands
    r4, r8 = (_qa(invoke, orig, proc, "--looks", lk) for lk in ("4", "8"))
    assert (r4["looks"], r8["looks"], r4["looks_source"]) == (4.0, 8.0, "given")
    assert r8["ratio_var_times_looks"] == pytest.approx(2 * r4["ratio_var_times_looks"], rel=1e-9)
    want = quality_report(y[0], x[0], 4.0)
    assert r4["ratio_var_times_looks"] == pytest.approx(want.ratio_var_times_looks, rel=1e-6)
    estimated = _qa(invoke, orig, proc)
    assert estimated["looks_source"] == "estimated" and estimated["looks"] not in (4.0, 8.0)


def test_band_selects_the_band(invoke, two_bands) -> None:
    orig, proc, y, x = two_bands
    b1, b2 = (_qa(invoke, orig, proc, "--looks", "4", "--band", b) for b in ("1", "2"))
    assert (b1["band"], b2["band"]) == (1, 2)
    assert b2["bias_db"] == pytest.approx(quality_report(y[1], x[1], 4.0).bias_db, abs=1e-5)
    assert b2["ratio_mean"] != b1["ratio_mean"]
    assert b2 == qa_files(orig, proc, looks=4.0, band=2) | {"original": str(orig), "processed": str(proc)}


def test_sensor_sets_the_decoding(invoke, two_bands) -> None:
    orig, proc, y, x = two_bands
    amp = _qa(invoke, orig, proc, "--looks", "4", "--sensor", "sar-amplitude")
    assert (amp["sensor"], amp["units"]) == ("sar-amplitude", "amplitude")
    want = quality_report(y[0] ** 2, x[0] ** 2, 4.0)  # amplitude values are squared into intensity
    assert amp["bias_db"] == pytest.approx(want.bias_db, abs=1e-5)
    intensity = _qa(invoke, orig, proc, "--looks", "4", "--sensor", "sar-intensity")
    assert intensity["units"] == "intensity" and intensity["bias_db"] != amp["bias_db"]


def test_text_report(invoke, two_bands) -> None:
    orig, proc, *_ = two_bands
    res = invoke("qa", orig, proc, "--looks", "4")
    assert res.exit_code == 0
    assert "ratio mean" in res.stdout and "looks L                  4.000 (given)" in res.stdout
