"""Likelihoods: the SAR-DPS gradient form, change of variables, normalisation, fusion prox, validation.

(Every likelihood's gradient against autograd: tests/core/test_contracts.py.)
"""

from __future__ import annotations

import math

import pytest
import torch

from geodiff.likelihoods import (
    FusionL1TV,
    GammaIntensity,
    GammaLogIntensity,
    Gaussian,
)

pytestmark = pytest.mark.usefixtures("float64")


def _autograd(fn, x):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g


@pytest.fixture
def speckled():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 8, 8, generator=g) + 0.1
    n = torch.distributions.Gamma(4.0, 4.0).sample(x.shape)
    return x, x * n


@pytest.mark.parametrize("looks", [1.0, 4.0, 0.7])
def test_gamma_intensity_grad_is_the_sar_dps_form(speckled, looks):
    x, y = speckled
    lik = GammaIntensity(y, looks)
    # the SAR-DPS form (the review's eq. 23): -dR/dx = L (x - y) / x^2
    torch.testing.assert_close(lik.grad(x), looks * (x - y) / x**2)


def test_gamma_intensity_clamps_tiny_estimates(speckled):
    x, y = speckled
    lik = GammaIntensity(y, 1.0)
    x0 = x.clone()
    x0[0, 0, 0, 0] = 0.0
    x0[0, 0, 0, 1] = -1.0
    g = lik.grad(x0)
    assert torch.isfinite(g).all() and torch.isfinite(lik.nll(x0)).all()
    assert g[0, 0, 0, 0] == 0 and g[0, 0, 0, 1] == 0  # clamped: no pull from outside the support


def test_log_gamma_is_the_gamma_likelihood_after_change_of_variables(speckled):
    """log-density of log y = log-density of y + log y: same gradient in x once chained (du/dx = 1/x)."""
    x, y = speckled
    gi, gl = GammaIntensity(y, 2.0), GammaLogIntensity(y, 2.0)
    torch.testing.assert_close(gl.grad(torch.log(x)) / x, gi.grad(x))
    diff = gi.nll(x) - gl.nll(torch.log(x))
    torch.testing.assert_close(diff - diff[0], torch.zeros_like(diff) + (diff - diff[0]))  # const in x
    x2 = x * 1.3
    torch.testing.assert_close(gi.nll(x2) - gl.nll(torch.log(x2)), diff)


def test_log_gamma_is_a_density():
    """exp(-nll) of the log-gamma term integrates to Gamma(L) / L^L over log y (normalisation check)."""
    looks = 4.0
    v = torch.linspace(-12, 4, 200001)
    lik = GammaLogIntensity(torch.ones(1, 1, 1, 1), looks)
    lik.log_y = v.view(1, 1, 1, -1)
    dens = torch.exp(-looks * (torch.exp(v) - v))  # u = 0
    integral = torch.trapezoid(dens, v)
    assert math.isclose(float(integral), math.gamma(looks) / looks**looks, rel_tol=1e-6)


def test_fusion_subgradient_matches_autograd_and_prox_minimises():
    g = torch.Generator().manual_seed(3)
    o, r, f0, f = (torch.rand(2, 1, 10, 10, generator=g) for _ in range(4))
    obj = FusionL1TV(o, r, a=0.7, b=0.4, c=0.3, d=0.2)
    torch.testing.assert_close(obj.grad(f, f0), _autograd(lambda v: obj.nll(v, f0), f))
    fp = obj.prox(f0, iters=300)
    best = obj.nll(fp, f0)
    for cand in (f0, o, r, (o + r) / 2, fp + 0.01 * torch.randn(fp.shape, generator=g)):
        assert (best <= obj.nll(cand, f0) + 1e-6).all()


def test_fusion_prox_without_tv_is_the_weighted_median():
    """With c = d = 0 the minimiser is the per-pixel weighted median of (f0, o, r) with weights (1, a, b)."""
    g = torch.Generator().manual_seed(4)
    o, r, f0 = (torch.rand(1, 1, 6, 6, generator=g) for _ in range(3))
    obj = FusionL1TV(o, r, a=2.0, b=0.7, c=0.0, d=0.0)  # a > (1 + b): the weighted median is o
    fp = obj.prox(f0, iters=1000)
    # primal-dual on a sum of L1 terms converges sublinearly: objective within 1e-3 of the optimum
    assert float(obj.nll(fp, f0) - obj.nll(o, f0)) < 1e-3
    torch.testing.assert_close(fp, o, atol=2e-2, rtol=0)


@pytest.mark.parametrize("looks", [0, -1, float("nan"), "x"])
def test_bad_looks_raise(looks):
    with pytest.raises(ValueError, match="looks"):
        GammaIntensity(torch.ones(1, 1, 4, 4), looks)


def test_nan_and_zero_observations_raise():
    y = torch.ones(2, 1, 4, 4)
    y[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        GammaIntensity(y, 1)
    y = torch.ones(2, 1, 4, 4)
    y[1] = 0
    with pytest.raises(ValueError, match=r"all zero"):
        GammaLogIntensity(y, 1)
    with pytest.raises(ValueError, match="negative"):
        GammaIntensity(-torch.ones(1, 1, 4, 4), 1)
    with pytest.raises(ValueError, match="sigma"):
        Gaussian(torch.ones(1, 1, 4, 4), 0.0)
