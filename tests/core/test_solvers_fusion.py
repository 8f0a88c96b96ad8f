"""The fusion sampler: guided result lowers the L1/TV objective, stays in [0, 1], obeys seeds; GPU smoke."""

from __future__ import annotations

import pytest
import torch

from geodiff.likelihoods import FusionL1TV
from geodiff.priors.gaussian import GaussianPrior
from geodiff.solvers import FusionModel, SamplerConfig, fuse_dps, sample, sar_dps

C = SamplerConfig.defaults


class AmplitudeGaussian(GaussianPrior):
    domain = "amplitude"


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    o = torch.rand(2, 1, 16, 16, generator=g)
    r = (o + 0.2 * torch.randn(2, 1, 16, 16, generator=g)).clamp(0, 1)
    return o, r


def test_fusion_guidance_lowers_the_objective(pair):
    o, r = pair
    prior = AmplitudeGaussian(0.0, 0.5)
    weights = FusionModel(a=0.5, b=0.5, c=0.2, d=0.2)
    res = fuse_dps(o, r, prior, weights, C("fuse_dps", steps=10, t0=400), seeds=[1, 2])
    assert res.mean.shape == o.shape and res.nfe == 10
    assert float(res.mean.min()) >= 0 and float(res.mean.max()) <= 1
    free = (sample(prior, tuple(o.shape), C("sample", steps=10), seeds=[1, 2])[:, 0] + 1).div(2).clamp(0, 1)
    obj = FusionL1TV(o, r, 0.5, 0.5, 0.2, 0.2)
    # the data part of the objective (f0 term excluded: compare both against the fused result itself)
    assert (obj.nll(res.mean, res.mean) < obj.nll(free, free)).all()


def test_fusion_seeds_and_bad_input(pair):
    o, r = pair
    prior = AmplitudeGaussian(0.0, 0.5)
    cfg = C("fuse_dps", steps=5, t0=300, eta=1.0)
    both = fuse_dps(o, r, prior, None, cfg, seeds=[3, 4])
    one = fuse_dps(o[1:], r[1:], prior, None, cfg, seeds=[4])
    torch.testing.assert_close(both.mean[1:], one.mean)
    with pytest.raises(ValueError, match="shape"):
        fuse_dps(o, r[:, :, :8], prior, None, C("fuse_dps", steps=2))
    with pytest.raises(ValueError, match="weight"):
        FusionModel(a=-1)
    with pytest.raises(ValueError, match="strength"):
        FusionModel(strength=0)
    with pytest.raises(ValueError, match="init"):
        fuse_dps(o, r, prior, None, C("fuse_dps", steps=2, init="lee"))


@pytest.mark.gpu
def test_sar_dps_on_cuda_matches_shapes_and_is_finite():
    prior = AmplitudeGaussian(0.0, 0.5).to("cuda", torch.float32)
    y = torch.rand(2, 1, 16, 16, device="cuda") + 0.1
    res = sar_dps(y, prior, 1.0, C("sar_dps", steps=10, t0=300, samples=2, jacobian=True), seeds=[1, 2])
    assert res.mean.device.type == "cuda" and torch.isfinite(res.mean).all() and res.std.shape == y.shape
