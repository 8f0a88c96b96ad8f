"""sensors.fusion_clouds: which class codes are clouds (Sentinel-2 SCL or a 0/1 mask)."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import SensorsError
from sensors.fusion_clouds import SCL_CLOUD_CLASSES, cloud_mask, parse_cloud_classes


def test_scl_cloud_classes_are_shadow_medium_high_and_cirrus() -> None:
    scl = np.arange(12, dtype=np.uint8).reshape(3, 4)  # every SCL code 0..11
    expected = np.isin(scl, [3, 8, 9, 10])
    assert SCL_CLOUD_CLASSES == (3, 8, 9, 10)
    np.testing.assert_array_equal(cloud_mask(scl), expected)
    assert cloud_mask(scl).sum() == 4


def test_resampled_codes_with_nan_are_never_clouds() -> None:
    codes = np.array([[np.nan, 3.0, 4.0], [9.0, np.nan, 10.0]], np.float32)
    np.testing.assert_array_equal(cloud_mask(codes), [[False, True, False], [True, False, True]])


def test_a_binary_mask_with_class_1() -> None:
    mask = np.array([[0, 1], [1, 0]], np.uint8)
    np.testing.assert_array_equal(cloud_mask(mask, parse_cloud_classes("1")), mask.astype(bool))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, (3, 8, 9, 10)), ("scl", (3, 8, 9, 10)), ("10, 3,8", (3, 8, 10)), (1, (1,)), ([9, 9, 8], (8, 9))],
)
def test_parse_cloud_classes(value, expected) -> None:  # noqa: ANN001
    assert parse_cloud_classes(value) == expected


@pytest.mark.parametrize("value", ["", "a,b", "3.5", "-1", "3,,8"])
def test_bad_cloud_classes_name_the_fix(value) -> None:  # noqa: ANN001
    with pytest.raises(SensorsError, match="--cloud-classes 3,8,9,10"):
        parse_cloud_classes(value)


def test_complex_codes_are_refused() -> None:
    with pytest.raises(SensorsError, match="SCL"):
        cloud_mask(np.ones(3, np.complex64))
