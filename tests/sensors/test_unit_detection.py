"""The one units detector: metadata first, decisive values, otherwise ambiguous (sensors.unit_detection)."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import AmbiguousUnitsError, UnknownUnitsError
from sensors.unit_detection import (
    UNITS_TAG,
    UnitsEvidence,
    detect_units,
    fit_power,
    resolve_units,
    units_from_metadata,
    units_from_values,
)


def _scene(looks: float, seed: int = 0, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Piecewise-smooth reflectivity (median ~0.1) times Γ(L, 1/L) speckle: linear intensity."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / shape[0]
    reflectivity = 0.1 * (1.0 + 0.5 * (xx > 0.5) + 0.3 * np.sin(3 * yy))
    return reflectivity * rng.gamma(looks, 1.0 / looks, shape)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S1A_IW_20191203T224518_DVP_RTC10_G_gpuned_54B9_VV.tif", "intensity"),
        ("S1B_IW_20200101T000000_SVP_RTC30_G_sauned_ABCD_VV.tif", "amplitude"),
        ("S1A_IW_20230101T000000_DVP_RTC30_G_gduned_1234_VH.tif", "db"),
        ("S1A_IW_GRDH_1SDV_20230101T054523_VV_dB.tif", "db"),
        ("scene_sigma0_vv.tif", "intensity"),
        ("OPERA_L2_RTC-S1_T069-147170-IW1_20231005T134451Z_20231006T022502Z_S1A_30_v1.0_VV.tif", "intensity"),
    ],
)
def test_product_names(name: str, expected: str) -> None:
    ev = units_from_metadata(dtype="float32", name=f"/data/{name}")
    assert ev is not None and ev.units == expected and ev.source == "metadata"


def test_tags_attrs_descriptions_and_own_tag() -> None:
    assert units_from_metadata(tags={UNITS_TAG: "amplitude"}).units == "amplitude"
    assert units_from_metadata(attrs={"units": "dB"}).units == "db"
    assert units_from_metadata(band_units=["decibel"]).units == "db"
    assert units_from_metadata(descriptions=["Amplitude_HH"]).units == "amplitude"
    assert units_from_metadata(dtype="complex64").units == "complex"
    assert (
        units_from_metadata(dtype="uint16", name="s1a-iw-grd-vv-20230101t054523-001.tiff").units
        == "amplitude"
    )
    # geodiff's QA report tag mentions "bias_db": it is not a units statement
    assert units_from_metadata(tags={"GEODIFF_QA": '{"bias_db": 0.1}'}) is None
    assert units_from_metadata(name="scene.tif", descriptions=[None]) is None


def test_metadata_beats_values() -> None:
    db = 10 * np.log10(_scene(4))
    ev = detect_units(db, dtype="float32", tags={UNITS_TAG: "intensity"})
    assert ev.units == "intensity" and ev.source == "metadata"


def test_negative_values_mean_db_only_as_a_real_fraction() -> None:
    intensity = _scene(4)
    assert units_from_values(10 * np.log10(intensity)).units == "db"
    one_pixel = intensity.copy()
    one_pixel[0, 0] = -0.001  # one negative pixel is noise, not dB
    assert units_from_values(one_pixel).units != "db"
    some = intensity.copy()
    some[:, :5] = -0.001  # ~4 %: neither noise nor dB
    ev = units_from_values(some)
    assert ev.units is None and ev.source == "ambiguous" and ev.guess == "db"


@pytest.mark.parametrize("looks", [1, 2, 4])
def test_values_tell_intensity_from_amplitude(looks: int) -> None:
    intensity = _scene(looks, seed=looks)
    assert units_from_values(intensity).units == "intensity"
    assert units_from_values(np.sqrt(intensity)).units == "amplitude"


def test_power_fit_is_scale_free_and_power_covariant() -> None:
    intensity = _scene(2, seed=3)
    a, b = fit_power(intensity), fit_power(7.0 * intensity)
    assert a is not None and b is not None
    assert a.log2_power == pytest.approx(b.log2_power, abs=1e-9)
    amp = fit_power(np.sqrt(intensity))
    assert amp.log2_power == pytest.approx(a.log2_power - 1.0, abs=0.05)  # the fitted power halves
    assert a.looks_as("intensity") == pytest.approx(2.0, rel=0.25)


def test_smooth_or_tiny_scenes_are_ambiguous() -> None:
    assert units_from_values(np.full((128, 128), 0.1)).units is None
    assert units_from_values(_scene(4)[:20, :20]).units is None  # too few blocks
    assert units_from_values(_scene(64)).units is None  # 64 looks: intensity and amplitude look alike
    assert units_from_values(np.zeros((64, 64))).units is None


def test_resolve_units() -> None:
    amb = UnitsEvidence(None, "ambiguous", "test evidence", guess="intensity")
    with pytest.raises(AmbiguousUnitsError, match=r"--units intensity\|amplitude\|db") as info:
        resolve_units(None, amb, "scene.tif")
    assert "units=" in str(info.value) and "test evidence" in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.evidence is amb
    assert resolve_units("dB", amb) == "db"
    assert resolve_units("auto", UnitsEvidence("amplitude", "values", "x")) == "amplitude"
    with pytest.raises(UnknownUnitsError):
        resolve_units("watts", amb)
