"""Classical speckle filters: closed forms, naive references, edge behaviour, nodata handling."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.speckle_filters import FILTERS, apply_filter, filter_radius, frost, gamma_map, lee, refined_lee


def _enl(x: np.ndarray) -> float:
    return float(x.mean() ** 2 / x.var())


@pytest.mark.parametrize("name", FILTERS)
def test_constant_image_is_kept(name: str) -> None:
    x = np.full((20, 23), 3.5, np.float32)
    out = apply_filter(name, x, None, looks=3.0, window=7)
    assert out.dtype == np.float32 and np.allclose(out, 3.5, rtol=1e-6)


@pytest.mark.parametrize("name", FILTERS)
def test_homogeneous_speckle_is_smoothed_without_bias(name: str) -> None:
    rng = np.random.default_rng(0)
    looks = 4.0
    x = (5.0 * rng.gamma(looks, 1 / looks, (160, 160))).astype(np.float32)
    out = apply_filter(name, x, None, looks=looks, window=7)[8:-8, 8:-8]
    assert abs(out.mean() / 5.0 - 1) < 0.03
    assert _enl(out) > 4 * _enl(x)


def _naive_stats(x: np.ndarray, valid: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    xp = np.pad(np.where(valid, x, 0.0), r, mode="reflect")
    vp = np.pad(valid, r, mode="reflect")
    mean = np.zeros(x.shape)
    var = np.zeros(x.shape)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            vals = xp[i : i + 2 * r + 1, j : j + 2 * r + 1][vp[i : i + 2 * r + 1, j : j + 2 * r + 1]]
            mean[i, j], var[i, j] = vals.mean(), vals.var()
    return mean, var


def test_lee_matches_naive_formula_with_nodata() -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 1.0, (17, 19))
    valid = rng.random(x.shape) > 0.15
    mean, var = _naive_stats(x, valid, 2)
    cu2 = 1 / 2.0
    k = np.clip((var - mean**2 * cu2) / ((1 + cu2) * var), 0, 1)
    ref = mean + k * (x - mean)
    out = lee(x, valid, looks=2.0, window=5)
    assert np.allclose(out[valid], ref[valid], rtol=1e-10)


def test_gamma_map_regimes_and_formula() -> None:
    rng = np.random.default_rng(2)
    x = rng.gamma(3.0, 1 / 3.0, (15, 15))
    x[7, 7] = 80.0  # point target: Ci >= sqrt(2) Cu
    mean, var = _naive_stats(x, np.ones_like(x, bool), 2)
    out = gamma_map(x, None, looks=3.0, window=5)
    assert out[7, 7] == x[7, 7]
    ci2, cu2 = var / mean**2, 1 / 3.0
    mid = (ci2 > cu2) & (ci2 < 2 * cu2)
    alpha = (1 + cu2) / (ci2 - cu2)
    b = alpha - 3.0 - 1
    ref = (b * mean + np.sqrt(mean**2 * b**2 + 4 * alpha * 3.0 * mean * x)) / (2 * alpha)
    homog = ci2 <= cu2
    assert np.allclose(out[mid], ref[mid]) and np.allclose(out[homog], mean[homog])


def test_frost_matches_naive_weights() -> None:
    rng = np.random.default_rng(3)
    x = rng.gamma(1.0, 1.0, (11, 12))
    r, damping = 1, 2.0
    mean, var = _naive_stats(x, np.ones_like(x, bool), r)
    xp = np.pad(x, r, mode="reflect")
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    ref = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            w = np.exp(-damping * var[i, j] / mean[i, j] ** 2 * np.hypot(dy, dx))
            ref[i, j] = (w * xp[i : i + 3, j : j + 3]).sum() / w.sum()
    assert np.allclose(frost(x, None, looks=1.0, window=3), ref)


@pytest.mark.parametrize("edge", ["vertical", "horizontal", "diagonal", "anti-diagonal"])
def test_refined_lee_keeps_a_noise_free_step_edge(edge: str) -> None:
    yy, xx = np.mgrid[0:30, 0:30]
    side = {"vertical": xx >= 15, "horizontal": yy >= 15, "diagonal": xx > yy, "anti-diagonal": xx + yy > 29}[
        edge
    ]
    x = np.where(side, 10.0, 1.0)
    inner = (slice(3, -3), slice(3, -3))  # mirror padding bends a diagonal edge at the border
    assert np.allclose(refined_lee(x, None, looks=4.0, window=7)[inner], x[inner])
    assert not np.allclose(lee(x, None, looks=4.0, window=7)[inner], x[inner])  # plain Lee blurs it


def test_refined_lee_sharper_than_lee_on_speckled_edge() -> None:
    rng = np.random.default_rng(4)
    clean = np.where(np.mgrid[0:64, 0:64][1] >= 32, 10.0, 1.0)
    x = clean * rng.gamma(4.0, 0.25, clean.shape)
    band = slice(28, 36)
    err = {
        f: np.abs(apply_filter(f, x, None, 4.0, 7) - clean)[8:-8, band].mean() for f in ("lee", "refined-lee")
    }
    assert err["refined-lee"] < err["lee"]


@pytest.mark.parametrize("name", FILTERS)
def test_invalid_pixels_do_not_leak(name: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 1.0, (25, 25))
    valid = np.ones_like(x, bool)
    valid[5:12, 8:20] = False
    a = x.copy()
    b = x.copy()
    a[~valid], b[~valid] = 0.0, 1e6
    out_a, out_b = (apply_filter(name, v, valid, 2.0, 5) for v in (a, b))
    assert np.array_equal(out_a[valid], out_b[valid])
    assert np.isfinite(out_a[valid]).all()


def test_bad_arguments() -> None:
    x = np.ones((9, 9))
    with pytest.raises(ValueError, match="odd"):
        apply_filter("lee", x, window=6)
    with pytest.raises(ValueError, match="unknown filter"):
        apply_filter("median", x)
    with pytest.raises(ValueError, match="looks"):
        apply_filter("lee", x, looks=0)
    with pytest.raises(ValueError, match="window >= 5"):
        apply_filter("refined-lee", x, window=3)
    assert filter_radius("frost", 9) == 5  # its 9x9 window and the 3x3 folding of negative samples


def _noise_subtracted(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(reflectivity, 4-look intensity + exponential thermal noise minus its mean): ~5 % negative."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    x = 0.005 + 0.3 * (xx / n) ** 2 * (1 + 0.5 * np.sin(yy / 30))
    y = x * rng.gamma(4.0, 0.25, x.shape) + 0.012 * (rng.exponential(1.0, x.shape) - 1.0)
    return x, y


def test_nonnegative_intensity_keeps_the_local_mean() -> None:
    from sensors.speckle_filters import nonnegative_intensity

    x, y = _noise_subtracted()
    assert 0.03 < (y < 0).mean() < 0.08
    z = nonnegative_intensity(y)
    assert (z >= 0).all()
    dark = x <= np.quantile(x, 0.1)
    assert z[dark].mean() == pytest.approx(y[dark].mean(), rel=0.02)
    assert z.mean() == pytest.approx(y.mean(), rel=0.002)
    assert np.maximum(y, 0)[dark].mean() > 1.1 * y[dark].mean()  # what a clamp at 0 would do
    clean = np.abs(y) + 1e-3  # no negatives: bit for bit the input
    assert np.array_equal(nonnegative_intensity(clean), clean)
    nan = y.copy()
    nan[:4] = np.nan  # invalid pixels are left as they are
    assert np.isnan(nonnegative_intensity(nan)[:4]).all()


@pytest.mark.parametrize("name", FILTERS)
def test_negative_samples_never_negative_and_unbiased(name: str) -> None:
    x, y = _noise_subtracted()
    out = apply_filter(name, y, None, looks=4.0, window=7)
    assert (out >= 0).all()
    dark = x <= np.quantile(x, 0.1)  # the darkest decile of the reflectivity
    assert out[dark].mean() == pytest.approx(y[dark].mean(), rel=0.02)
    assert out[dark].mean() == pytest.approx(x[dark].mean(), rel=0.03)


def test_negative_samples_tiled_with_the_halo_equal_the_whole_band() -> None:
    _, y = _noise_subtracted(96, seed=3)
    whole = apply_filter("lee", y, None, looks=4.0, window=7)
    h = filter_radius("lee", 7)
    for r0, c0 in [(0, 0), (32, 48), (64, 16)]:
        r1, c1 = min(r0 + 32, 96), min(c0 + 48, 96)
        pr0, pc0 = max(r0 - h, 0), max(c0 - h, 0)
        pad = np.pad(y, h, mode="reflect")  # the runner reflect-pads reads past the scene edges
        blk = pad[r0 : r1 + 2 * h, c0 : c1 + 2 * h]
        got = apply_filter("lee", blk, None, looks=4.0, window=7)[h:-h, h:-h]
        assert np.array_equal(got, whole[r0:r1, c0:c1]), (pr0, pc0)
