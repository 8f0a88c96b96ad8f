"""SAR-PnP: the exact gamma proximal step vs scipy, PnP-ADMM's fixed point for a Gaussian prior and
likelihood (closed form), tiles blended every iteration, batching independence, the config's JSON."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from geodiff.errors import InvalidSettingError
from geodiff.priors.gaussian import GaussianPrior
from geodiff.solvers import A_MIN, SamplerConfig, SpeckleModel, gamma_prox, sar_pnp, tweedie_denoise
from geodiff.solvers.pnp import admm, pnp_admm, snap_sigma
from tiling.blend import BlendHook, extract_tiles


class AmplitudeGaussian(GaussianPrior):
    """The analytic prior, declared to live in amplitude model space z = 2a - 1."""

    domain = "amplitude"


def _h(z, w: float, y: float, looks: float, scale: float, rho: float):
    """The prox objective in z (scalar or numpy array), with the solver's floors on a and y."""
    a = np.maximum((z + 1) / 2, A_MIN)
    inten = scale * a * a
    y = max(y, scale * A_MIN**2)  # the documented floor: the likelihood sees y >= scale A_MIN^2
    return looks * (np.log(inten) + y / inten) + rho / 2 * (z - w) ** 2


@pytest.mark.parametrize("looks", [1.0, 4.0])
@pytest.mark.parametrize("rho", [2.0, 25.0, 400.0])
def test_gamma_prox_is_the_per_pixel_minimiser(looks: float, rho: float) -> None:
    rng = np.random.default_rng(0)
    w = rng.uniform(-1.2, 1.2, 40)
    y = rng.uniform(0.0, 1.0, 40) ** 2 * rng.gamma(looks, 1 / looks, 40)
    y[:3] = [1e-9, 0.5, 4.0]  # a black pixel, a mid one, one above the prior's range
    scale = 1.7
    z = gamma_prox(
        torch.tensor(w).view(1, 1, 5, 8), torch.tensor(y).view(1, 1, 5, 8), looks, scale, rho
    ).flatten()
    for i in range(w.size):
        args = (w[i], y[i], looks, scale, rho)
        # the global minimum over a fine grid, refined by a bounded scalar search around it
        grid = np.linspace(-1 + 2 / 512, 6, 20001)
        g0 = grid[np.argmin(_h(grid, *args))]
        ref = minimize_scalar(_h, bounds=(g0 - 1e-3, g0 + 1e-3), args=args, method="bounded",
                              options={"xatol": 1e-12}).x  # fmt: skip
        assert _h(float(z[i]), *args) <= _h(ref, *args) + 1e-9 * (1 + abs(_h(ref, *args))), (
            i,
            float(z[i]),
            ref,
        )
        assert abs(float(z[i]) - ref) < 1e-5, (i, float(z[i]), ref)


def test_gamma_prox_limits() -> None:
    y = torch.full((1, 1, 2, 2), 0.25)  # a = 0.5 <=> z = 0
    w = torch.full_like(y, 0.6)
    near_data = gamma_prox(w, y, 1.0, 1.0, 1e-6)
    near_target = gamma_prox(w, y, 1.0, 1.0, 1e8)
    torch.testing.assert_close(near_data, torch.zeros_like(y), atol=1e-4, rtol=0)
    torch.testing.assert_close(near_target, w, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="rho"):
        gamma_prox(w, y, 1.0, 1.0, 0.0)


def test_tweedie_denoise_is_the_gaussian_posterior_mean() -> None:
    mu, tau = 0.2, 0.3
    prior = GaussianPrior(mu, tau)
    x = torch.linspace(-1, 1, 16).view(1, 1, 4, 4).double()
    sigma = snap_sigma(prior, 0.25)
    want = (tau**2 * x + sigma**2 * mu) / (tau**2 + sigma**2)
    torch.testing.assert_close(tweedie_denoise(prior, x, 0.25, clip=None), want)
    torch.testing.assert_close(tweedie_denoise(prior, x, 0.25, ensemble=4, clip=None), want)


def test_admm_reaches_the_closed_form_map_for_a_gaussian_prior_and_likelihood() -> None:
    # prior N(mu, tau^2) i.i.d., data y = z + N(0, s^2): the fixed point is the per-pixel MAP
    # (y / s^2 + mu / tau^2) / (1 / s^2 + 1 / tau^2); the MMSE denoiser of a Gaussian prior is
    # exactly the proximal map of its -log density, so PnP-ADMM is plain ADMM here.
    mu, tau, s = 0.1, 0.4, 0.25
    prior = GaussianPrior(mu, tau)
    torch.manual_seed(0)
    y = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    want = (y / s**2 + mu / tau**2) / (1 / s**2 + 1 / tau**2)

    def prox(w: torch.Tensor, rho: float) -> torch.Tensor:
        return (y / s**2 + rho * w) / (1 / s**2 + rho)

    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return tweedie_denoise(prior, x, sigma, clip=None)

    sig = snap_sigma(prior, 0.3)
    z = admm(prox, denoise, torch.zeros_like(y), [sig] * 200)
    torch.testing.assert_close(z, want, atol=1e-6, rtol=0)
    # a decreasing schedule ends at the same point once it stays constant
    z2 = admm(prox, denoise, y.clone(), [snap_sigma(prior, v) for v in (0.8, 0.5)] + [sig] * 200)
    torch.testing.assert_close(z2, want, atol=1e-6, rtol=0)
    # a denoiser of the wrong strength does not (the test can fail)
    wrong = admm(prox, lambda x, sg: tweedie_denoise(prior, x, 2 * sg, clip=None), y.clone(), [sig] * 200)
    assert (wrong - want).abs().max() > 1e-3


class _BlurredPrior(AmplitudeGaussian):
    """A non-local analytic prior: the Gaussian eps, box-blurred (tiles without blending disagree)."""

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e = super().eps(x_t, t)
        return torch.nn.functional.avg_pool2d(e, 5, 1, 2, count_include_pad=False)


def _tiles(img: torch.Tensor, patch: int, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The row-major tiles (rows * cols, C, patch, patch) of a (1, C, H, W) image, and the grid."""
    grid = ((img.shape[-2] - patch) // stride + 1, (img.shape[-1] - patch) // stride + 1)
    return extract_tiles(img[0], grid, patch, stride), grid


def test_tiles_blended_every_iteration_agree_and_match_the_untiled_fixed_point() -> None:
    torch.manual_seed(1)
    a = 0.3 + 0.4 * torch.rand(1, 1, 16, 24, dtype=torch.float64)
    y = a * a * torch.distributions.Gamma(4.0, 4.0).sample(a.shape).double()
    patch, stride = 16, 8
    ty, grid = _tiles(y, patch, stride)
    hook = BlendHook(grid, patch, stride)
    cfg = SamplerConfig.defaults("sar_pnp", admm_iters=80, admm_sigma=0.3, clip=None)
    phys = SpeckleModel(4.0, 1.0)
    # per-pixel Gaussian prior: the converged ADMM result is the per-pixel MAP whatever the tiling
    local = AmplitudeGaussian(0.0, 0.5)
    untiled = pnp_admm(y, local, phys, cfg, torch.zeros_like(y))
    tiled = pnp_admm(ty, local, phys, cfg, torch.zeros_like(ty), blend=hook)
    torch.testing.assert_close(tiled, _tiles(untiled, patch, stride)[0], atol=1e-6, rtol=0)
    # a non-local prior: blended tiles agree on their overlaps, unblended ones do not
    blurred = _BlurredPrior(0.0, 0.5)
    cfg4 = SamplerConfig.defaults("sar_pnp", admm_iters=4, admm_sigma=0.3)
    start = 2 * ty.sqrt().clamp(0, 1) - 1
    on = pnp_admm(ty, blurred, phys, cfg4, start, blend=hook)
    off = pnp_admm(ty, blurred, phys, cfg4, start)
    torch.testing.assert_close(hook(on), on, atol=1e-12, rtol=0)
    assert (hook(off) - off).abs().max() > 1e-4


def test_admm_weight_scales_the_data_term_like_fewer_looks() -> None:
    """admm_weight w: the data step's penalty w / sigma^2 is the prox of the likelihood with L / w looks
    at penalty 1 / sigma^2 (sigma fixed: looks_power 0), so both runs give the same iterates."""
    torch.manual_seed(3)
    a = 0.25 + 0.5 * torch.rand(1, 1, 12, 12, dtype=torch.float64)
    y = a * a * torch.distributions.Gamma(4.0, 4.0).sample(a.shape).double()
    prior = AmplitudeGaussian(0.0, 0.5)
    start = 2 * y.sqrt().clamp(0, 1) - 1
    cfg = SamplerConfig.defaults("sar_pnp", admm_iters=3, admm_sigma=0.3, looks_power=0.0)
    for w in (0.5, 2.0):
        weighted = pnp_admm(y, prior, SpeckleModel(4.0, 1.0), replace(cfg, admm_weight=w), start)
        fewer = pnp_admm(y, prior, SpeckleModel(4.0 / w, 1.0), cfg, start)
        torch.testing.assert_close(weighted, fewer, atol=1e-10, rtol=0)
        assert (weighted - pnp_admm(y, prior, SpeckleModel(4.0, 1.0), cfg, start)).abs().max() > 1e-3


def test_seeds_make_tiles_independent_of_batching() -> None:
    torch.manual_seed(2)
    a = 0.25 + 0.5 * torch.rand(3, 1, 8, 8)
    y = a * a * torch.distributions.Gamma(1.0, 1.0).sample(a.shape)
    prior = AmplitudeGaussian(0.0, 0.5)
    cfg = SamplerConfig.defaults("sar_pnp", steps=3, samples=3, eta=1.0, mean_window=5, admm_ensemble=2)
    both = sar_pnp(y, prior, 1.0, cfg, seeds=[5, 6, 7])
    last = sar_pnp(y[2:], prior, 1.0, cfg, seeds=[7])
    torch.testing.assert_close(both.mean[2:], last.mean)
    torch.testing.assert_close(both.std[2:], last.std)
    assert both.nfe == cfg.admm_iters * cfg.admm_ensemble + 3 * 3
    plain = sar_pnp(y, prior, 1.0, SamplerConfig.defaults("sar_pnp", refine=False, mean_window=5))
    assert plain.std is None and plain.nfe == 4 and bool(torch.isfinite(plain.mean).all())


def test_config_round_trip_and_validation() -> None:
    cfg = SamplerConfig.defaults(
        "sar_pnp", admm_iters=3, admm_sigma=0.25, admm_decay=0.8, looks_power=0.5, admm_ensemble=4,
        refine=False,
    )  # fmt: skip
    assert SamplerConfig.from_json(cfg.to_json()) == cfg
    bads = [("admm_iters", -1), ("admm_ensemble", 9), ("admm_sigma", 0.0), ("admm_decay", -1.0)]
    bads += [("admm_weight", 0.0)]
    for field, bad in bads:
        with pytest.raises(ValueError, match=field):
            SamplerConfig(**{field: bad})
    with pytest.raises(ValueError, match="domain"):
        sar_pnp(torch.ones(1, 1, 8, 8), GaussianPrior(0.0, 0.5), 1.0)


def test_gamma_prox_takes_a_per_pixel_looks_map() -> None:
    """A looks map gives each pixel the prox of its own looks; looks 0 (no data) returns the target w;
    negative or non-finite looks are refused."""
    rng = np.random.default_rng(3)
    w = torch.tensor(rng.uniform(-0.8, 0.8, (1, 1, 4, 4)))
    y = torch.tensor(rng.uniform(0.01, 0.5, (1, 1, 4, 4)))
    looks = torch.tensor([0.0, 0.5, 1.0, 4.0]).view(1, 1, 4, 1).expand(1, 1, 4, 4)
    z = gamma_prox(w, y, looks, 1.3, 9.0)
    assert torch.allclose(z[..., 0, :], w[..., 0, :], atol=1e-6)
    for i, lk in enumerate((0.5, 1.0, 4.0), start=1):
        assert torch.allclose(z[..., i, :], gamma_prox(w, y, lk, 1.3, 9.0)[..., i, :], atol=1e-6)
    for bad in (-1.0, float("nan")):
        with pytest.raises(InvalidSettingError, match="looks map"):
            gamma_prox(w, y, torch.full_like(w, bad), 1.3, 9.0)
