"""Looks (ENL) estimation against known L: synthetic gamma speckle on real clean images, and real
Sentinel-1 single-look data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sensors.looks import estimate_looks, speckle_stride

# A handful of the clean images, chosen for having some homogeneous area (an ENL estimate needs
# it; the most textured scenes of the set fall 10–40 % low at L = 8, see the closing note).
VIRTUAL = ("01095.jpg", "01380.jpg", "01570.jpg", "01665.jpg")


def _clean_intensities(shared: Path) -> list[tuple[str, np.ndarray]]:
    out = []
    for name in VIRTUAL:
        g = np.asarray(Image.open(shared / "virtual_sar_clean_gray" / name).convert("L"), dtype=np.float64)
        out.append((name, ((g + 1) / 256) ** 2))
    for p in sorted((shared / "mva_multitemporal_reference" / "groundtruth").glob("*.npy")):
        a = np.load(p).astype(np.float64)
        out.append((p.name, (a / a.max()) ** 2))
    return out


@pytest.mark.parametrize("looks", [1, 2, 4, 8])
def test_looks_within_ten_percent_on_synthetic_speckle(shared_data: Path, looks: int) -> None:
    rng = np.random.default_rng(1234 + looks)
    for name, clean in _clean_intensities(shared_data):
        noisy = clean * rng.gamma(looks, 1.0 / looks, clean.shape)
        est = estimate_looks(noisy)
        assert abs(est.looks / looks - 1) < 0.10, (name, est)
        assert est.low <= est.looks <= est.high
        assert est.stride == 1  # i.i.d. speckle: no pixel step


def test_real_sentinel1_single_look_is_about_one(shared_data: Path) -> None:
    values = []
    for p in sorted((shared_data / "sar2sar_s1_singlelook").glob("*_1.npy")):
        amplitude = np.load(p).astype(np.float64)
        est = estimate_looks(amplitude**2)
        values.append(est.looks)
        assert est.stride == 2, "real SLC speckle is correlated at lag 1"
        assert 0.85 < est.looks < 1.15, (p.name, est)
    assert 0.9 < float(np.median(values)) < 1.1


@pytest.mark.parametrize("k", [2, 3])
def test_correlated_speckle_gets_a_pixel_step(k: int) -> None:
    """Speckle correlated over neighbouring pixels (as in GRD) must not inflate the ENL. A k×k
    moving sum of exponential speckle is Gamma(k²) distributed: marginal ENL k², lag-1
    correlation (k−1)/k. With the pixel step the estimate stays at k², without it it overshoots."""
    rng = np.random.default_rng(7)
    fine = rng.gamma(1.0, 1.0, (512 + k - 1, 512 + k - 1))
    y = sum(fine[i : i + 512, j : j + 512] for i in range(k) for j in range(k))
    assert speckle_stride(y) == k
    est = estimate_looks(y)
    assert abs(est.looks / k**2 - 1) < 0.10, est
    assert estimate_looks(y, stride=1).looks > 1.15 * k**2


def test_nodata_is_left_out() -> None:
    rng = np.random.default_rng(3)
    y = rng.gamma(4, 0.25, (256, 256))
    mask = np.ones_like(y, dtype=bool)
    y[:, :100] = 0.0  # a nodata border of zeros...
    y[200:, :] = 1e6  # ...and a declared-invalid stripe
    mask[200:, :] = False
    est = estimate_looks(y, mask)
    assert abs(est.looks / 4 - 1) < 0.1, est


def test_too_few_blocks_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="--looks"):
        estimate_looks(np.zeros((64, 64)))
    with pytest.raises(ValueError, match="2-D"):
        estimate_looks(np.ones((2, 32, 32)))


def test_moment_method_agrees_on_iid_speckle() -> None:
    rng = np.random.default_rng(5)
    y = rng.gamma(2.0, 0.5, (512, 512))
    assert abs(estimate_looks(y, method="moments").looks / 2 - 1) < 0.05
    assert abs(estimate_looks(y, method="log-cumulant").looks / 2 - 1) < 0.05
