"""SAR-DPS from pure noise against a closed-form posterior: a per-pixel Gaussian prior in z = 2a - 1 and
the gamma L-look likelihood on i.i.d. pixels, so E[I | y] is a 1-D integral (scipy.integrate.quad).

The sampler (100 DDIM steps from noise, 8 draws of 32 x 32 i.i.d. pixels per y) must match it within
3.5 % at L = 1 and 4 for a dark, a mid and a bright y; the discretisation error at 100 steps is up to
2.4 % (dark pixels, L = 4; 0.8 % at 300 steps) and the Monte-Carlo error ~0.5 %. The negative controls
show that the comparison fails for a broken sampler: guidance off (the prior mean) and the guidance's
mode instead of its mean (the Laplace/MAP step used before; 8-11 % low on dark and mid pixels).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from geodiff.priors.gaussian import GaussianPrior
from geodiff.solvers import A_MIN, SamplerConfig, SpeckleModel, sar_dps

MU, SD = -0.2, 0.3  # prior of z = 2a - 1: N(MU, SD^2) per pixel (a ~ 0.4 +- 0.15)
YS = (0.02, 0.2, 0.6)  # dark, mid, bright intensities (scale s = 1)
TOL = 0.035


class AmplitudeGaussian(GaussianPrior):
    """The analytic prior, declared to live in amplitude model space z = 2a - 1."""

    domain = "amplitude"


def reference_mean(y: float, looks: float) -> float:
    """E[I(z) | y] for p(z) = N(MU, SD^2) and y | z ~ Gamma(L, I(z) / L), I(z) = max((z + 1) / 2, A_MIN)^2."""

    def inten(z: float) -> float:
        return max((z + 1) / 2, A_MIN) ** 2

    def post(z: float) -> float:
        return stats.norm.pdf(z, MU, SD) * stats.gamma.pdf(y, looks, scale=inten(z) / looks)

    lo, hi = MU - 8 * SD, MU + 8 * SD
    norm = integrate.quad(post, lo, hi, points=[-1.0], limit=200)[0]
    return integrate.quad(lambda z: post(z) * inten(z), lo, hi, points=[-1.0], limit=200)[0] / norm


def sampled_means(
    looks: float, quadrature: int = 12, zeta: float = 1.0, jacobian: bool = False
) -> np.ndarray:
    """Posterior means of I (one per y in YS) from SAR-DPS started from noise (100 NFE per draw)."""
    y = torch.tensor(YS, dtype=torch.float64).view(-1, 1, 1, 1).expand(-1, 1, 32, 32).contiguous()
    cfg = SamplerConfig.defaults(
        "sar_dps", steps=100, samples=8, init="noise", data_std=SD, clip=None, zeta=zeta, jacobian=jacobian
    )
    physics = SpeckleModel(looks, 1.0, "log", quadrature=quadrature)
    res = sar_dps(y, AmplitudeGaussian(MU, SD), physics, cfg, seeds=[1, 2, 3])
    assert res.nfe == 100
    return res.mean.flatten(1).mean(1).numpy()


def relative_errors(means: np.ndarray, looks: float) -> np.ndarray:
    ref = np.array([reference_mean(v, looks) for v in YS])
    return means / ref - 1


@pytest.mark.parametrize("looks", [1.0, 4.0])
def test_posterior_mean_from_noise_matches_quadrature(looks):
    err = relative_errors(sampled_means(looks), looks)
    assert np.all(np.abs(err) <= TOL), f"relative errors {err} (tolerance {TOL})"


def test_exact_dps_matches_quadrature_too():
    """The Jacobian (DPS) mode pulls the same step back through the (here linear) network."""
    err = relative_errors(sampled_means(1.0, jacobian=True), 1.0)
    assert np.all(np.abs(err) <= TOL), f"relative errors {err} (tolerance {TOL})"


@pytest.mark.slow
@pytest.mark.parametrize("looks", [1.0, 4.0])
def test_the_comparison_catches_broken_samplers(looks):
    """Negative controls: guidance switched off (zeta huge: the prior mean) and the guidance's mode
    instead of its mean both miss the reference by far more than the tolerance."""
    off = relative_errors(sampled_means(looks, zeta=1e12), looks)
    mode = relative_errors(sampled_means(looks, quadrature=0), looks)
    assert np.max(np.abs(off)) > 3 * TOL, off
    assert np.max(np.abs(mode)) > 2 * TOL, mode
    assert math.isfinite(float(np.sum(mode)))
