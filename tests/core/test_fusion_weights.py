"""The fusion weights rule and the weighted proximal step: closed forms, the unweighted reference, and
the posterior std of the fusion sampler on a synthetic step edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodiff.likelihoods import FusionL1TV
from geodiff.priors.gaussian import GaussianPrior
from geodiff.solvers import SamplerConfig, fuse_dps
from geodiff.solvers.fusion import FusionWeights, gradient_energy, pca_share, weighted_prox


class AmplitudeGaussian(GaussianPrior):
    domain = "amplitude"


def _step(n: int = 32, col: int = 16, lo: float = 0.2, hi: float = 0.8) -> torch.Tensor:
    x = torch.full((1, 1, n, n), lo)
    x[..., col:] = hi
    return x


def test_pca_share_closed_forms() -> None:
    g = torch.Generator().manual_seed(0)
    o = torch.rand(64, 64, generator=g)
    assert pca_share(o, torch.full_like(o, 0.3)) == pytest.approx((1.0, 0.0), abs=1e-9)
    assert pca_share(torch.full_like(o, 0.3), o) == pytest.approx((0.0, 1.0), abs=1e-9)
    # perfectly correlated, equal variance: the eigenvector (1, 1) / sqrt 2
    assert pca_share(o, o + 0.1) == pytest.approx((0.5, 0.5), abs=1e-6)  # float32 input
    # numpy's PCA (the baseline's formula) gives the same shares
    r = 0.3 * o + 0.2 * torch.rand(64, 64, generator=g)
    cov = np.cov(np.stack([o.numpy().ravel(), r.numpy().ravel()]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    v = np.abs(vecs[:, np.argmax(vals)])
    assert pca_share(o, r) == pytest.approx(tuple(v / v.sum()), abs=1e-9)
    assert pca_share(torch.zeros(8, 8), torch.zeros(8, 8)) == (0.5, 0.5)


def test_gradient_weights_follow_the_stronger_edge() -> None:
    o = _step()  # a vertical edge in the optical image only
    r = torch.full_like(o, 0.5)
    r[..., 16:, :] = 0.6  # a weaker horizontal edge in the SAR
    a, b, c, d = FusionWeights(intensity=1.0, gradient=6.0).maps(o, r, share=(0.7, 0.3))
    assert (a, b) == pytest.approx((1.4, 0.6))
    torch.testing.assert_close(c + d, torch.full_like(c, 6.0))
    assert float(c[0, 0, 4, 15]) > 5.9  # on the optical edge, far from the SAR's: optical gradients
    assert float(d[0, 0, 15, 4]) > 5.0  # on the SAR edge, far from the optical's: SAR gradients
    e = gradient_energy(o)
    assert float(e[0, 0, 4, 15]) > 0 and float(e[0, 0, 4, 2]) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="gradient weight"):
        FusionWeights(gradient=-1)


def test_weighted_prox_matches_the_unweighted_reference_and_closed_forms() -> None:
    g = torch.Generator().manual_seed(1)
    o, r, f0 = (torch.rand(2, 1, 16, 16, generator=g) for _ in range(3))
    # constant weights, unscaled: exactly the iterations of FusionL1TV.prox
    ref = FusionL1TV(o, r, 0.5, 0.7, 0.3, 0.2).prox(f0, 40)
    torch.testing.assert_close(weighted_prox(f0, o, r, (0.5, 0.7, 0.3, 0.2), 40, scale=1.0), ref)
    # a >> 1 + b: the minimiser of |f - f0| + a|f - o| + b|f - r| is o
    f = weighted_prox(f0, o, r, (3.0, 0.5, 0.0, 0.0), 400)
    torch.testing.assert_close(f, o, atol=5e-3, rtol=0)
    # per-pixel weights: a pixel map picks o on the left half, r on the right half
    a = torch.zeros_like(o)
    a[..., :8] = 3.0
    b = 3.0 - a
    f = weighted_prox(f0, o, r, (a, b, 0.0, 0.0), 400)
    torch.testing.assert_close(f[..., :8], o[..., :8], atol=5e-3, rtol=0)
    torch.testing.assert_close(f[..., 8:], r[..., 8:], atol=5e-3, rtol=0)
    # more iterations lower the objective (it is a minimiser, not a filter)
    obj = FusionL1TV(o, r, 0.5, 0.7, 0.3, 0.2)
    few = weighted_prox(f0, o, r, (0.5, 0.7, 0.3, 0.2), 5)
    many = weighted_prox(f0, o, r, (0.5, 0.7, 0.3, 0.2), 300)
    assert (obj.nll(many, f0) < obj.nll(few, f0)).all()


def test_posterior_std_is_larger_on_the_edge_than_on_flat_areas() -> None:
    """Draws of the fusion sampler differ most where the sources disagree about an edge: on flat
    areas both sources agree and pin the fused value, between the two edges they do not."""
    o = _step(32, 16)
    r = _step(32, 12)  # the same levels, the SAR's edge 4 px to the left
    prior = AmplitudeGaussian(0.0, 0.5)
    config = SamplerConfig.defaults("fuse_dps", steps=4, t0=300, samples=6, eta=1.0)
    res = fuse_dps(o, r, prior, None, config, weights=FusionWeights(), seeds=[7], return_samples=True)
    std = res.std[0, 0]
    assert float(std.max()) > 0
    edge = std[:, 10:18].mean()
    flat = torch.cat([std[:, :6], std[:, 24:]], 1).mean()
    assert float(edge) > 2 * float(flat)
    # one draw has no std; the same seed gives the same draws
    one = fuse_dps(o, r, prior, None, SamplerConfig.defaults("fuse_dps", steps=4, t0=300), seeds=[7])
    assert one.std is None
    again = fuse_dps(o, r, prior, None, config, weights=FusionWeights(), seeds=[7])
    torch.testing.assert_close(again.mean, res.mean)


def test_share_power_interpolates_between_the_plain_and_the_share_weighted_split() -> None:
    g = torch.Generator().manual_seed(0)
    o, r = torch.rand(1, 1, 32, 32, generator=g), torch.rand(1, 1, 32, 32, generator=g)
    share = (0.9, 0.1)
    c = {p: FusionWeights(share_power=p).maps(o, r, share)[2] for p in (0.0, 0.5, 1.0)}
    assert torch.equal(c[1.0], FusionWeights().maps(o, r, share)[2])  # the default is power 1
    assert torch.equal(c[0.0], FusionWeights(share_edges=False).maps(o, r, share)[2])
    # closed form of the split at one pixel: (w_o^s E_o)^2 / ((w_o^s E_o)^2 + (w_r^s E_r)^2)
    eo, er = gradient_energy(o)[0, 0, 5, 7], gradient_energy(r)[0, 0, 5, 7]
    for p, cp in c.items():
        x, y = (0.9**p * eo) ** 2, (0.1**p * er) ** 2
        assert float(cp[0, 0, 5, 7]) == pytest.approx(6.0 * float(x / (x + y)), rel=1e-5)
    assert bool((c[0.0] <= c[0.5] + 1e-6).all() and (c[0.5] <= c[1.0] + 1e-6).all())  # the optical gains
    with pytest.raises(ValueError, match="share_power"):
        FusionWeights(share_power=-1.0)
