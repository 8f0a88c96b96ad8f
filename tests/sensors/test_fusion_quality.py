"""PROTOCOL §3 fusion scores against closed forms and known properties."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.fusion_quality import (
    QABF_MAX,
    entropy,
    mutual_information,
    psnr_fusion,
    qabf,
    ssim_sum,
    vif,
    viff,
)


def test_entropy_closed_forms() -> None:
    uniform = (np.arange(256 * 16).reshape(64, 64) % 256) / 255.0  # every bin equally often
    assert entropy(uniform) == pytest.approx(8.0)
    assert entropy(np.full((32, 32), 0.3)) == pytest.approx(0.0)
    halves = np.zeros((32, 32))
    halves[:, 16:] = 1.0
    assert entropy(halves) == pytest.approx(1.0)


def test_mutual_information_properties(images) -> None:
    a, b = images
    assert mutual_information(a, a) == pytest.approx(entropy(a))
    assert mutual_information(a, b) == pytest.approx(mutual_information(b, a))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (256, 256)).astype(float)
    y = rng.integers(0, 2, (256, 256)).astype(float)
    assert mutual_information(x, y) < 1e-3  # independent binary images
    assert mutual_information(x, 1 - x) == pytest.approx(1.0, abs=1e-3)  # a bijection keeps 1 bit


def test_ssim_and_psnr(images) -> None:
    a, b = images
    assert ssim_sum(a, a, a) == pytest.approx(2.0)
    assert ssim_sum(a, a, b) < 2.0
    shifted = np.clip(a + 0.1, 0, 1)
    mse = (0.0 + np.mean((a - shifted) ** 2)) / 2
    assert psnr_fusion(a, a, shifted) == pytest.approx(10 * np.log10(1 / mse))
    assert psnr_fusion(a, a, a) == float("inf")


def test_qabf_perfect_and_degraded(images) -> None:
    a, b = images
    assert qabf(a, a, a) == pytest.approx(QABF_MAX)
    assert QABF_MAX == pytest.approx(0.9748, abs=1e-4)  # the product of the two sigmoids at 1
    flat = np.full_like(a, a.mean())
    assert qabf(flat, a, b) < 0.05  # an image without edges keeps no edge
    assert 0 < qabf((a + b) / 2, a, b) < qabf(a, a, a)


def test_vif_properties(images) -> None:
    a, b = images
    assert vif(a, a) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(a + 0.1 * np.random.default_rng(1).normal(size=a.shape), 0, 1)
    blurred = (a + np.full_like(a, a.mean())) / 2  # contrast halved
    assert vif(a, noisy) < 0.5
    assert vif(a, blurred) < 1.0
    assert viff(a, a, a) == pytest.approx(2.0, abs=1e-6)


def test_metrics_reject_bad_input(images) -> None:
    a, b = images
    with pytest.raises(ValueError, match="shape"):
        ssim_sum(a, a[:-1], b)
    with pytest.raises(ValueError, match="NaN"):
        entropy(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        qabf(np.stack([a, a]), a, b)


def test_cross_entropy_closed_forms() -> None:
    from sensors.fusion_quality import cross_entropy

    # A and B with F's histogram: 0
    x = np.tile(np.linspace(0, 1, 256), (4, 1))
    assert cross_entropy(x, x, x[:, ::-1]) == pytest.approx(0.0, abs=1e-12)
    # A: two values 50/50; F: the same two values 25/75 -> 0.5 log2(2) + 0.5 log2(2/3)
    a = np.zeros((4, 4))
    a[:, 2:] = 1.0
    f = np.zeros((4, 4))
    f[:, 1:] = 1.0
    expect = 0.5 * np.log2(0.5 / 0.25) + 0.5 * np.log2(0.5 / 0.75)
    assert cross_entropy(f, a, a) == pytest.approx(expect, abs=1e-12)
    # symmetric mean of the two sources
    assert cross_entropy(f, a, f) == pytest.approx(expect / 2, abs=1e-12)
    # the report carries it
    from sensors.fusion_quality import fusion_report

    big_f, big_a = np.tile(f, (2, 2)), np.tile(a, (2, 2))  # SSIM needs 7 x 7 at least; same histograms
    assert fusion_report(big_f, big_a, big_a)["CE"] == pytest.approx(expect)
