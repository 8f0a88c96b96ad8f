"""SAR-DPS: guidance gradients vs autograd, Jacobian vs Jacobian-free agreement, scale equivariance,
batching independence, uncertainty on a step edge, and bad input."""

from __future__ import annotations

import pytest
import torch

from geodiff.likelihoods import GammaIntensity
from geodiff.priors.gaussian import GaussianPrior
from geodiff.solvers import FORMS, SamplerConfig, SpeckleModel, Step, estimate_scale, sar_dps, sar_guidance

C = SamplerConfig.defaults


class AmplitudeGaussian(GaussianPrior):
    """The analytic prior, declared to live in amplitude model space z = 2a - 1."""

    domain = "amplitude"


def _speckle(inten: torch.Tensor, looks: float, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return inten * torch.distributions.Gamma(looks, looks).sample(inten.shape)


@pytest.fixture(scope="module")
def scene():
    torch.manual_seed(0)
    a = 0.25 + 0.5 * torch.rand(2, 1, 8, 8)
    return a, _speckle(a * a, 1.0, 1)


@pytest.mark.parametrize("form", ["intensity", "log"])
def test_guidance_step_is_the_gamma_gradient_in_z(scene, form):
    """With a huge prior variance and no quadrature (the mode) the step is -grad/curvature: grad must
    equal autograd of the gamma nll of I(z) = s ((z+1)/2)^2, the curvature max(Fisher L / a^2, observed
    L (3w - 1) / (2 a^2)) with w = y / I (the safeguard against overshooting from dark estimates)."""
    _, y = scene
    s, looks = 2.0, 4.0
    z = torch.rand(y.shape, generator=torch.Generator().manual_seed(3)) - 0.2
    physics = SpeckleModel(looks, torch.full((2, 1, 1, 1), s), form, quadrature=0)
    guide = sar_guidance(y, physics, C("sar_dps", zeta=1e12, newton_iters=1, clip=None))
    step = Step(index=0, count=1, t=500, abar=0.5, abar_prev=0.6)
    delta = guide(z, step) - z
    a = (z + 1) / 2
    zz = z.clone().requires_grad_(True)
    nll = GammaIntensity(y, looks).nll(s * ((zz + 1) / 2) ** 2).sum()
    (g,) = torch.autograd.grad(nll, zz)
    w = y / (s * a * a)
    h = looks * (3 * w - 1) / (2 * a * a)
    curvature = torch.maximum(looks / a**2, h)
    torch.testing.assert_close(delta, -g / curvature, rtol=1e-4, atol=1e-6)
    assert bool((h > looks / a**2).any()) and bool((h < looks / a**2).any())  # both branches are used


def test_observed_curvature_is_the_second_derivative(scene):
    """The observed curvature of the safeguard, L (3w - 1) / (2 a^2), is autograd's second derivative."""
    _, y = scene
    s, looks = 2.0, 4.0
    zz = (torch.rand(y.shape, generator=torch.Generator().manual_seed(4)) - 0.2).requires_grad_(True)
    nll = GammaIntensity(y, looks).nll(s * ((zz + 1) / 2) ** 2).sum()
    (g,) = torch.autograd.grad(nll, zz, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), zz)
    a = (zz.detach() + 1) / 2
    w = y / (s * a * a)
    torch.testing.assert_close(h, looks * (3 * w - 1) / (2 * a * a), rtol=1e-4, atol=1e-4)


def test_intensity_and_log_forms_agree(scene):
    """The two forms are one likelihood (change of variables): same output to float precision."""
    _, y = scene
    prior = AmplitudeGaussian(0.0, 0.5)
    cfg = C("sar_dps", steps=20, t0=300, data_std=0.5)
    ri = sar_dps(y, prior, SpeckleModel(1.0, form="intensity"), cfg, seeds=[1, 2])
    rl = sar_dps(y, prior, SpeckleModel(1.0, form="log"), cfg, seeds=[1, 2])
    torch.testing.assert_close(ri.mean, rl.mean, rtol=1e-4, atol=1e-6)
    assert "log_gauss" in FORMS


def test_jacobian_and_jacobian_free_agree_for_a_gaussian_prior(scene):
    """For a Gaussian prior the network Jacobian is sqrt(abar) v / (1 - abar) I, which is exactly what the
    Jacobian-free step assumes when data_std = the prior's std: both modes must give the same result."""
    _, y = scene
    prior = AmplitudeGaussian(0.1, 0.4)
    cfg = C("sar_dps", steps=15, init="noise", data_std=0.4, eta=0.5)
    jf = sar_dps(y, prior, 2.0, cfg, seeds=[1, 2])
    jac = sar_dps(y, prior, 2.0, C("sar_dps", **{**cfg.to_dict(), "jacobian": True}), seeds=[1, 2])
    torch.testing.assert_close(jf.mean, jac.mean, rtol=1e-4, atol=1e-5)
    assert jac.jacobian and jac.nfe == 15


def test_scale_equivariance(scene):
    """despeckle(c y, scale = c s) = c despeckle(y, scale = s): the solver is unit-free given the scale."""
    _, y = scene
    prior = AmplitudeGaussian(0.0, 0.5)
    cfg = C("sar_dps", steps=10, t0=400)
    ref = sar_dps(y, prior, SpeckleModel(1.0, scale=1.0), cfg, seeds=[5, 6]).mean
    for c in (1e-3, 1e4):
        out = sar_dps(y * c, prior, SpeckleModel(1.0, scale=c), cfg, seeds=[5, 6]).mean
        torch.testing.assert_close(out / c, ref, rtol=1e-4, atol=1e-7)
    s1 = estimate_scale(y, 0.5)
    assert abs(estimate_scale(y * 1e3, 0.5) / s1 - 1e3) < 1e-3 * 1e3


def test_seeds_make_tiles_independent_of_batching(scene):
    _, y = scene
    prior = AmplitudeGaussian(0.0, 0.5)
    cfg = C("sar_dps", steps=10, t0=400, eta=1.0, samples=3)
    both = sar_dps(y, prior, 1.0, cfg, seeds=[7, 8])
    second = sar_dps(y[1:], prior, 1.0, cfg, seeds=[8])
    torch.testing.assert_close(both.mean[1:], second.mean)
    torch.testing.assert_close(both.std[1:], second.std)


@pytest.mark.slow
def test_uncertainty_is_larger_on_edges_than_on_flat_areas():
    """A prior over step edges at uncertain positions; the std over posterior draws must concentrate at
    the edge (at least 3x the flat-area std), and the mean must beat the noisy input."""
    n = 16
    cols = torch.arange(n)
    amp_lo, amp_hi = 0.2, 0.6
    edges = [torch.where(cols < k, 2 * amp_lo - 1, 2 * amp_hi - 1).float().expand(n, n) for k in range(5, 12)]
    prior = AmplitudeGaussian(torch.stack(edges).unsqueeze(1), 0.05)
    a = ((edges[3] + 1) / 2).view(1, 1, n, n)
    y = _speckle(a * a, 1.0, 11)
    cfg = C("sar_dps", steps=40, init="noise", eta=1.0, samples=64, data_std=0.3)
    res = sar_dps(y, prior, 1.0, cfg, seeds=[3])
    std = res.std[0, 0]
    edge = std[:, 7:10].mean()
    flat = torch.cat([std[:, :4], std[:, 13:]], 1).mean()
    print(f"edge std {float(edge):.4g}, flat std {float(flat):.4g}")
    assert edge > 3 * flat, f"edge std {float(edge):.4g} vs flat {float(flat):.4g}"
    err_mean = ((res.mean.sqrt() - a) ** 2).mean()
    err_noisy = ((y.sqrt() - a) ** 2).mean()
    assert err_mean < 0.2 * err_noisy


def test_bad_inputs(scene):
    _, y = scene
    prior = AmplitudeGaussian(0.0, 0.5)
    for looks in (0, -2):
        with pytest.raises(ValueError, match="looks"):
            sar_dps(y, prior, looks, C("sar_dps", steps=2))
    bad = y.clone()
    bad[0, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        sar_dps(bad, prior, 1.0, C("sar_dps", steps=2))
    zero = y.clone()
    zero[1] = 0
    with pytest.raises(ValueError, match="all zero"):
        sar_dps(zero, prior, 1.0, C("sar_dps", steps=2))
    strided = AmplitudeGaussian(0.0, 0.5)
    strided.stride = 16
    with pytest.raises(ValueError, match="multiple of the prior's stride 16"):
        sar_dps(y, strided, 1.0, C("sar_dps", steps=2))
    with pytest.raises(ValueError, match="amplitude"):
        sar_dps(y, GaussianPrior(0.0, 0.5), 1.0, C("sar_dps", steps=2))
    with pytest.raises(ValueError, match="scale"):
        sar_dps(y, prior, SpeckleModel(1.0, scale=-1.0), C("sar_dps", steps=2))
    with pytest.raises(ValueError, match="form"):
        sar_dps(y, prior, SpeckleModel(1.0, form="dB"), C("sar_dps", steps=2))
    with pytest.raises(ValueError, match="init"):
        sar_dps(y, prior, 1.0, C("sar_dps", steps=2, init="bm3d"))


def test_radiometry_is_kept_and_bright_scatterers_survive():
    """Local-mean preservation keeps the bias near 0 dB; points above the prior's range keep their value."""
    from geodiff.priors import load
    from geodiff.solvers import estimate_scale

    prior = load("tiny")
    torch.manual_seed(0)
    x = torch.ones(1, 1, 64, 64)
    x[..., 20, 20] = x[..., 40, 45] = 400.0  # strong point scatterers
    y = x * torch.distributions.Gamma(torch.tensor(1.0), torch.tensor(1.0)).sample(x.shape)
    s = estimate_scale(y, prior.amplitude_median, 1.0)
    cfg = C("sar_dps", steps=3, samples=2, sigma0=0.15, init="lee")
    plain = sar_dps(y, prior, SpeckleModel(1.0, s), cfg, seeds=[1]).mean
    kept = sar_dps(
        y,
        prior,
        SpeckleModel(1.0, s),
        C("sar_dps", **{**cfg.to_dict(), "mean_window": 31, "bright": 0.9}),
        seeds=[1],
    ).mean
    bias = lambda est: 10 * torch.log10(est.mean() / y.mean()).item()  # noqa: E731
    assert abs(bias(kept)) < 0.2 and abs(bias(kept)) < abs(bias(plain))
    assert kept[..., 20, 20] > 20 * kept.median() and plain[..., 20, 20] < kept[..., 20, 20]


def test_a_smoothed_away_scatterer_keeps_its_value_and_does_not_brighten_its_window() -> None:
    """A point target 400x the background that the estimate smoothed away: with the outlier rule it keeps
    its measured intensity and the 31-px local means around it stay at the background level (without
    the rule its energy raises the whole window: a bright square)."""
    from geodiff.solvers.sar import _radiometry, speckle_quantile

    assert speckle_quantile(1.0) == pytest.approx(9.2103, rel=1e-4)  # -ln(1e-4) for exponential speckle
    g = torch.Generator().manual_seed(0)
    y = torch.empty(1, 1, 96, 96).exponential_(4.0, generator=g) * 4.0  # mean 1, L = 1
    y0 = y.clone()  # the same speckle without the point: the reference level around it
    y[..., 48, 48] = 400.0
    est = torch.ones(1, 1, 1, 96, 96)  # (B, K, C, H, W): the sampler's flat estimate
    config = SamplerConfig.defaults("sar_dps", mean_window=31, bright=None)
    ring = torch.zeros(96, 96, dtype=torch.bool)
    ring[38:59, 38:59] = True
    ring[46:51, 46:51] = False  # 3..10 px from the point
    with_rule = _radiometry(est, y, None, config, looks=1.0)[0, 0, 0]
    without = _radiometry(est, y, None, config)[0, 0, 0]
    assert with_rule[48, 48] == 400.0
    background = float(_radiometry(est, y0, None, config)[0, 0, 0][ring].mean())
    assert float(with_rule[ring].mean()) == pytest.approx(background, rel=0.01)
    assert float(without[ring].mean()) > 1.3 * background  # the square the rule removes


def test_the_local_mean_factor_of_a_bright_pixel_is_round_not_a_square() -> None:
    """preserve_local_mean with a Gaussian window: one bright pixel raises the factor by distance from it,
    the same along an axis and a diagonal at equal distance, less at the diagonal 10 px out than on the
    axis 10 px out (a 31-px box gives both the same value: the square seen around strong targets)."""
    from geodiff.solvers import preserve_local_mean

    y = torch.ones(1, 1, 96, 96, dtype=torch.float64)
    y[..., 48, 48] = 200.0
    f = preserve_local_mean(torch.ones_like(y), y, 31)[0, 0]
    axis, diagonal = float(f[48, 58]), float(f[58, 58])
    assert axis > diagonal + 0.1 * (axis - 1)
    assert float(f[48, 55]) == pytest.approx(float(f[55, 48]), rel=1e-12)  # symmetric
    assert float(f[48 + 7, 48 + 7]) == pytest.approx(float(f[48, 48 + 10]), rel=0.05)  # ~ equal radius


def test_a_saturated_bright_area_gets_its_local_mean_not_its_speckle() -> None:
    """Pixels where the start estimate is above ``bright`` (the top of the prior's range) take the mean of
    their own area's data over 7 px, scaled to the data's energy, instead of the data itself: no dark
    speckle pixels inside a bright target, the target's energy unchanged; a strong point inside keeps
    its value; a one-pixel bright area keeps its measured value."""
    from geodiff.solvers.sar import _radiometry

    g = torch.Generator().manual_seed(1)
    y = torch.empty(1, 1, 64, 64).exponential_(1.0, generator=g)  # one-look speckle, mean 1
    y[..., 20:36, 20:36] *= 50.0  # a bright area
    y[..., 28, 28] = 5000.0  # a strong point inside it
    y[..., 50, 10] = 80.0  # a one-pixel bright area
    z_init = torch.full_like(y, -0.2)
    z_init[..., 20:36, 20:36] = 0.95  # (a + 1) / 2 = 0.975 > bright
    z_init[..., 50, 10] = 0.95
    est = torch.ones(1, 1, 1, 64, 64)
    est[..., 20:36, 20:36] = 50.0  # the draws reach the area's level
    config = SamplerConfig.defaults("sar_dps", mean_window=31, bright=0.9)
    out = _radiometry(est, y, z_init, config, looks=1.0)[0, 0, 0]
    area = torch.zeros(64, 64, dtype=torch.bool)
    area[20:36, 20:36] = True
    area[28, 28] = False
    assert float(out[28, 28]) == 5000.0 and float(out[50, 10]) == pytest.approx(80.0)
    assert float(out[area].sum()) == pytest.approx(float(y[0, 0][area].sum()), rel=1e-5)
    assert float(y[0, 0][area].min()) < 0.05 * 50  # the speckle had dark pixels there
    assert float(out[area].min()) > 0.3 * 50  # the local mean has none
