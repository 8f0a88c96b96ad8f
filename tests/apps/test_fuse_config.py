"""FusionConfig: one settings object, round-tripped through JSON tags; DespeckleRecord likewise."""

from __future__ import annotations

import json

import pytest

from geodiff.apps.despeckle.record import DespeckleRecord
from geodiff.apps.fuse import FusionConfig
from geodiff.errors import InvalidSettingError


def test_round_trip_through_tags() -> None:
    config = FusionConfig(method="dps", weights=(2, 0, 1, 0.5), steps=7, t0=None, prior="tiny", seed=3)
    tags = {"GEODIFF_FUSION": config.to_json()}
    assert FusionConfig.from_tags(tags) == config
    assert json.loads(tags["GEODIFF_FUSION"])["weights"] == [2.0, 0.0, 1.0, 0.5]


def test_single_weights_and_a_loaded_prior_by_name() -> None:
    c = FusionConfig.of(None, a=3, d=0)
    assert c.weights == (3.0, 1.0, 1.0, 0.0)

    class Prior:
        name = "my-prior"

    assert FusionConfig(prior=Prior()).to_dict()["prior"] == "my-prior"


@pytest.mark.parametrize(
    "bad",
    [
        {"steps": 1.5},
        {"tile": 4},
        {"overlap": -1},
        {"t0": -3},
        {"colour": "rgb"},
        {"looks": 0},
        {"weights": (1, 1, 1)},
        {"weights": (1, float("nan"), 1, 1)},
    ],  # fmt: skip
)
def test_out_of_range_settings_name_the_field(bad: dict) -> None:
    with pytest.raises(InvalidSettingError, match=next(iter(bad))):
        FusionConfig(**bad)


def test_despeckle_record_round_trip() -> None:
    rec = DespeckleRecord(
        method="sar-dps", units="db", looks=(4.4, 3.9), tile=288, overlap=32, seed=1, prior="gray",
        scale=(0.1, 0.02), sampler={"steps": 5, "samples": 4},
    )  # fmt: skip
    assert DespeckleRecord.from_tags({"GEODIFF_DESPECKLE": rec.to_json()}) == rec
    with pytest.raises(InvalidSettingError, match="newer geodiff"):
        DespeckleRecord.from_dict({**rec.to_dict(), "colour": "x"})
    with pytest.raises(InvalidSettingError, match="not JSON"):
        DespeckleRecord.from_tags({"GEODIFF_DESPECKLE": "{oops"})
