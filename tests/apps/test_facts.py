"""The one place where every job and front learns a band's units and looks (geodiff.apps.facts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from conftest import write_untagged

from geodiff.apps.facts import array_band_facts, dataset_units_evidence, file_band_facts
from sensors.errors import AmbiguousUnitsError
from sensors.units import from_intensity


def _speckled(shape: tuple[int, int], looks: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / max(shape)
    return 0.1 * (1 + 0.5 * (xx > 0.5) + 0.3 * np.sin(3 * yy)) * rng.gamma(looks, 1 / looks, shape)


@pytest.mark.parametrize("units", ["intensity", "amplitude", "db"])
def test_a_file_and_its_pixels_get_the_same_facts(units: str, tmp_path: Path) -> None:
    stored = from_intensity(_speckled((300, 260)), units).astype(np.float32)
    path = write_untagged(tmp_path / "scene.tif", stored)
    f = file_band_facts(path)
    a = array_band_facts(stored)
    x = array_band_facts(xr.DataArray(stored, dims=("y", "x")).chunk(100))
    assert f.units == a.units == x.units == units
    assert f.looks == a.looks == x.looks and 1.5 < f.looks < 2.5
    np.testing.assert_array_equal(f.intensity, a.intensity)
    assert f.evidence.source == "values" and f.evidence == a.evidence


def test_given_units_win_and_ambiguity_names_the_fix(tmp_path: Path) -> None:
    smooth = (0.1 + 0.01 * np.arange(64 * 64).reshape(64, 64) / 4096).astype(np.float32)
    path = write_untagged(tmp_path / "smooth.tif", smooth)
    with pytest.raises(AmbiguousUnitsError, match=r"--units intensity\|amplitude\|db"):
        file_band_facts(path, looks=1)
    with pytest.raises(AmbiguousUnitsError, match="units="):
        array_band_facts(smooth, looks=1)
    assert file_band_facts(path, units="amplitude", looks=1).units == "amplitude"
    assert file_band_facts(path, sensor="sar-db", looks=1).units == "db"
    assert (
        array_band_facts(xr.DataArray(smooth, dims=("y", "x"), attrs={"units": "dB"}), looks=1).units == "db"
    )


def test_tags_and_band_unit_type_are_read(tmp_path: Path) -> None:
    stored = np.sqrt(_speckled((64, 64))).astype(np.float32)
    prof = dict(driver="GTiff", width=64, height=64, count=1, dtype="float32", crs="EPSG:32632")
    path = tmp_path / "tagged.tif"
    with rasterio.open(path, "w", transform=Affine(10, 0, 0, 0, -10, 0), **prof) as d:
        d.write(stored[None])
        d.units = ("amplitude",)
    with rasterio.open(path) as ds:
        ev = dataset_units_evidence(ds)
    assert (ev.units, ev.source) == ("amplitude", "metadata") and "unit type" in ev.evidence


def test_a_nodata_centre_is_measured_elsewhere(tmp_path: Path) -> None:
    """Units come from the central window; where it holds no valid pixel, from windows all over."""
    inten = _speckled((1300, 1300), looks=1.0, seed=2)
    inten[60:1240, 60:1240] = np.nan
    path = write_untagged(tmp_path / "ring.tif", inten.astype(np.float32))
    with rasterio.open(path) as ds:
        assert dataset_units_evidence(ds).units == "intensity"
