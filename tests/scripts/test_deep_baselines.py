"""bench/deep_baselines.py: SAR2SAR and MERLIN applied to in-memory intensities (needs deepdespeckling)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deepdespeckling", reason="deepdespeckling (bench extra) is not installed")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import deep_baselines  # noqa: E402


@pytest.fixture
def speckled_constant() -> np.ndarray:
    """64² single-look intensity of a constant reflectivity 0.3: 0.3 · Exp(1)."""
    return 0.3 * np.random.default_rng(7).gamma(1.0, 1.0, size=(64, 64))


def test_sar2sar_keeps_shape_sign_and_mean(speckled_constant):
    y = speckled_constant.copy()
    out = deep_baselines.sar2sar(y)
    np.testing.assert_array_equal(y, speckled_constant)  # input untouched
    assert out.shape == y.shape and out.dtype == np.float64
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    assert abs(out.mean() / y.mean() - 1) < 0.10


def test_merlin_keeps_shape_and_sign(speckled_constant):
    out = deep_baselines.merlin(speckled_constant, "stripmap")
    assert out.shape == speckled_constant.shape
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    matched = deep_baselines.mean_matched(out, speckled_constant)
    assert matched.mean() == pytest.approx(speckled_constant.mean(), rel=1e-12)


@pytest.mark.parametrize("n, patch", [(256, 256), (300, 256), (510, 256), (64, 64)])
def test_tiles_cover_the_axis(n, patch):
    starts = deep_baselines._starts(n, patch)
    covered = np.zeros(n, bool)
    for s in starts:
        covered[s : s + patch] = True
    assert covered.all() and starts[-1] + patch == n


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((3, 64, 64)), "one"),
        (np.ones((16, 64)), "smaller"),
        (-np.ones((64, 64)), "finite and >= 0"),
    ],
)
def test_bad_input_names_the_fix(bad, match):
    with pytest.raises(ValueError, match=match):
        deep_baselines.sar2sar(bad)


def test_unknown_merlin_model_is_refused(speckled_constant):
    with pytest.raises(ValueError, match="stripmap"):
        deep_baselines.merlin(speckled_constant, "ers")
