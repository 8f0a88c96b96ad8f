"""The torch Lee/boxcar of the solvers' start equals the product's numpy filter (one formula, two array
libraries; see geodiff/solvers/init.py for why both exist)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodiff.solvers import boxcar, lee
from sensors import speckle_filters


@pytest.fixture(scope="module")
def speckled() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.kron(rng.uniform(0.1, 1.0, (6, 6)), np.ones((8, 8)))  # piecewise-constant reflectivity
    return x * rng.gamma(2.0, 0.5, x.shape)


@pytest.mark.parametrize("looks", [1.0, 2.0, 4.4])
@pytest.mark.parametrize("window", [3, 7])
def test_torch_lee_equals_numpy_lee(speckled: np.ndarray, looks: float, window: int) -> None:
    ref = speckle_filters.lee(speckled, looks=looks, window=window)
    out = lee(torch.from_numpy(speckled)[None, None], looks, window)[0, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)


def test_torch_boxcar_equals_numpy_boxcar(speckled: np.ndarray) -> None:
    ref = speckle_filters.boxcar(speckled, window=5)
    out = boxcar(torch.from_numpy(speckled)[None, None], 5)[0, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_float32_on_the_solver_path_stays_close(speckled: np.ndarray) -> None:
    ref = speckle_filters.lee(speckled, looks=1.0, window=7)
    out = lee(torch.from_numpy(speckled).float()[None, None], 1.0)[0, 0].double().numpy()
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("size", [7, 31])
def test_gaussian_mean_equals_scipy_gaussian_filter(speckled: np.ndarray, size: int) -> None:
    """sigma = size / sqrt(4 pi) (as many pixels as the size x size box), truncated at ceil(3 sigma) px,
    mirror borders: scipy.ndimage.gaussian_filter with mode="mirror" is the reference."""
    import math

    from scipy import ndimage

    from geodiff.solvers.init import gaussian_mean

    sigma = size / math.sqrt(4 * math.pi)
    radius = math.ceil(3 * sigma)
    ref = ndimage.gaussian_filter(speckled, sigma, mode="mirror", truncate=radius / sigma)
    out = gaussian_mean(torch.from_numpy(speckled)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)


def test_weighted_lee_does_not_read_weight_zero_pixels(speckled: np.ndarray) -> None:
    """Lee with a 0/1 weight: changing the data of weight-0 pixels changes nothing, they get the local
    mean of the others, and an all-ones weight is the plain filter."""
    y = torch.tensor(speckled[None, None])
    weight = torch.ones_like(y)
    weight[..., 10:13, 20:23] = 0
    weight[..., ::5, ::7] = 0
    changed = y.clone()
    changed[weight == 0] *= 50.0
    a, b = lee(y, 1.0, 7, weight), lee(changed, 1.0, 7, weight)
    assert torch.equal(a, b)
    m = boxcar(y * weight, 7) / boxcar(weight, 7)
    assert torch.allclose(a[weight == 0], m[weight == 0])
    assert torch.allclose(lee(y, 1.0, 7, torch.ones_like(y)), lee(y, 1.0, 7), rtol=1e-9, atol=1e-12)
