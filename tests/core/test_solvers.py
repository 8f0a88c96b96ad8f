"""Closed-form checks of the shared sampling loop and the linear solvers with an analytic Gaussian prior.

Set-up: x0 ~ N(mu, s^2 I) per pixel (eps known exactly), y = A x + n, n ~ N(0, sigma^2 I); the posterior
is Gaussian with known per-pixel mean and variance.  Tolerances are stated per test; the Monte-Carlo
standard error of a sample mean over K draws is sqrt(var / K), and we compare averages over many pixels.
"""

from __future__ import annotations

import math

import pytest
import torch

from geodiff.likelihoods import Gaussian
from geodiff.operators import Blur, Downsample, Identity, Mask
from geodiff.priors import t_for_sigma, timesteps
from geodiff.priors.base import DiffusionPrior
from geodiff.priors.gaussian import GaussianPrior
from geodiff.solvers import SamplerConfig, ddnm, dps, hqs, kernel_error_step, sample
from geodiff.solvers.linear import KernelErrorState

C = SamplerConfig.defaults

MU, S, SIGMA = 0.2, 0.5, 0.3
B, H, K = 2, 8, 256  # tiles, tile size, posterior draws per tile


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    x = MU + S * torch.randn(B, 1, H, H, generator=g)
    y = x + SIGMA * torch.randn(B, 1, H, H, generator=g)
    post_mean = (S**2 * y + SIGMA**2 * MU) / (S**2 + SIGMA**2)
    post_var = S**2 * SIGMA**2 / (S**2 + SIGMA**2)
    return y, post_mean, post_var


def _check(samples, post_mean, post_var, mean_tol_se, var_lo, var_hi):
    """Mean error (RMS over pixels) in units of the Monte-Carlo standard error; variance ratio bounds."""
    se = math.sqrt(post_var / samples.shape[1])
    rms = float(((samples.mean(1) - post_mean) ** 2).mean().sqrt())
    ratio = float(samples.var(1).mean() / post_var)
    assert rms < mean_tol_se * se, f"posterior mean off: rms {rms:.4f} vs standard error {se:.4f}"
    assert var_lo < ratio < var_hi, f"posterior variance ratio {ratio:.3f} outside ({var_lo}, {var_hi})"


def test_gaussian_prior_implements_protocol_and_exact_eps():
    p = GaussianPrior(MU, S)
    assert isinstance(p, DiffusionPrior)
    # eps is E[eps | x_t]: check by regression on simulated (x0, eps) pairs at one t
    g = torch.Generator().manual_seed(1)
    t = torch.full((20000,), 400)
    abar = float(p.alphas_cumprod[400])
    x0 = MU + S * torch.randn(20000, 1, 1, 1, generator=g, dtype=torch.float64)
    e = torch.randn(20000, 1, 1, 1, generator=g, dtype=torch.float64)
    xt = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * e
    pred = p.eps(xt, t)
    # the optimal predictor: residuals uncorrelated with x_t and mean zero
    r = (e - pred).flatten()
    assert abs(float(r.mean())) < 0.02 and abs(float((r * (xt.flatten() - xt.mean())).mean())) < 0.02


@pytest.mark.slow
def test_exact_score_baseline_sampler_is_tight(problem):
    """Sampling the analytic *posterior* as a prior: the loop itself must reproduce it.

    1000 DDPM steps: mean within 3 standard errors, variance within 6 %; DDIM (eta = 0) with 200 steps
    loses a little variance to discretisation (measured ~0.95), hence (0.9, 1.06).
    """
    y, pm, pv = problem
    for steps, eta, lo in ((1000, 1.0, 0.94), (200, 0.0, 0.9)):
        draws = []
        for b in range(B):
            post = GaussianPrior(pm[b], math.sqrt(pv))
            draws.append(
                sample(post, (1, 1, H, H), C("sample", steps=steps, eta=eta, samples=K), seeds=[b])[0]
            )
        _check(torch.stack(draws), pm, pv, 3.0, lo, 1.06)


@pytest.mark.slow
@pytest.mark.parametrize("jacobian", [False, True])
def test_dps_matches_closed_form_when_guidance_variance_is_exact(problem, jacobian):
    """With data_std = the prior's std, the Newton guidance gives E[x0 | x_t, y] exactly and both modes are
    exact posterior samplers up to discretisation: mean within 3 SE, variance within (0.88, 1.06) at 200
    DDIM steps (the same discretisation loss as the exact-score sampler)."""
    y, pm, pv = problem
    lik = Gaussian(y.repeat_interleave(K, 0), SIGMA)
    cfg = C("dps", steps=200, eta=0.0, jacobian=jacobian, data_std=S, samples=K)
    res = dps(lik, GaussianPrior(MU, S), (B, 1, H, H), cfg, return_samples=True, seeds=[0, 1])
    _check(res.samples, pm, pv, 3.0, 0.88, 1.06)
    assert res.nfe == 200 and res.std.shape == (B, 1, H, H)


def test_dps_with_misspecified_guidance_variance_is_approximate(problem):
    """DPS in practice does not know Var(x0 | x_t); with data_std off by 2x the mean is still within
    ~6 SE (measured 4-5 SE) and the variance within (0.5, 1.5): the approximation the method achieves."""
    y, pm, pv = problem
    lik = Gaussian(y.repeat_interleave(K, 0), SIGMA)
    cfg = C("dps", steps=100, eta=1.0, jacobian=True, data_std=S / 2, samples=K)
    res = dps(lik, GaussianPrior(MU, S), (B, 1, H, H), cfg, return_samples=True, seeds=[3, 4])
    _check(res.samples, pm, pv, 7.0, 0.5, 1.5)


def test_hqs_identity_matches_closed_form(problem):
    """HQS's closed-form prox equals the exact conditional mean here: same tolerance as DPS."""
    y, pm, pv = problem
    cfg = C("hqs", steps=200, eta=0.0, data_std=S, samples=K)
    res, h = hqs(Gaussian(y, SIGMA, Identity()), GaussianPrior(MU, S), (B, 1, H, H), cfg, return_samples=True,
                 seeds=[5, 6])  # fmt: skip
    assert h is None
    _check(res.samples, pm, pv, 3.0, 0.88, 1.06)


_MASK = Mask(torch.rand(1, 1, H, H, generator=torch.Generator().manual_seed(2)) > 0.5)


@pytest.mark.parametrize("op", [_MASK, Downsample(2)])
def test_ddnm_noise_free_consistency_and_null_space_statistics(op):
    """DDNM: A x = y to rounding (1e-5); in the null space of a mask the draws follow the prior N(mu, s^2):
    mean within 4 SE, variance ratio within (0.85, 1.15) (DDNM's re-noising is approximate there)."""
    g = torch.Generator().manual_seed(7)
    x = MU + S * torch.randn(B, 1, H, H, generator=g)
    y = op(x)
    cfg = C("ddnm", steps=100, samples=K)
    res = ddnm(y, op, GaussianPrior(MU, S), (B, 1, H, H), cfg, return_samples=True, seeds=[1, 2])
    xs = res.samples.flatten(0, 1)
    err = (op(xs) - y.repeat_interleave(K, 0)).abs().max()
    assert float(err) < 1e-5
    if isinstance(op, Mask):
        free = op.mask.expand(B, 1, H, H) == 0
        m = res.samples.mean(1)[free]
        v = res.samples.var(1)[free]
        se = S / math.sqrt(K)
        assert float((m - MU).pow(2).mean().sqrt()) < 4 * se
        assert 0.85 < float(v.mean()) / S**2 < 1.15


def test_hqs_downsample_and_blur_prox_are_exact():
    """gaussian_prox's closed forms equal a dense linear solve."""
    from geodiff.solvers import gaussian_prox

    g = torch.Generator().manual_seed(8)
    n = 6
    for op in (Downsample(2), Blur(torch.tensor([[0.0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 8)):
        x0 = torch.randn(1, 1, n, n, generator=g, dtype=torch.float64)
        y = op(torch.randn(1, 1, n, n, generator=g, dtype=torch.float64))
        rho, sig = 2.5, 0.4
        eye = torch.eye(n * n, dtype=torch.float64).view(n * n, 1, n, n)
        a_mat = op(eye).flatten(1).T  # (m, n^2)
        lhs = a_mat.T @ a_mat / sig**2 + rho * torch.eye(n * n, dtype=torch.float64)
        rhs = a_mat.T @ y.flatten() / sig**2 + rho * x0.flatten()
        ref = torch.linalg.solve(lhs, rhs).view(1, 1, n, n)
        torch.testing.assert_close(gaussian_prox(op, y, sig, x0, rho), ref)


def test_kernel_error_step_recovers_h():
    """Given the true image and noise-free data the closed-form h-step recovers the kernel error (1e-3)."""
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64)
    k = torch.tensor([[0.0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float64) / 8
    h_true = 0.05 * torch.randn(3, 3, generator=g, dtype=torch.float64)
    y = Blur(k + h_true)(x)
    st = KernelErrorState(k, 2, x)
    kernel_error_step(st, x, y, sigma=0.1, nu=1e-6)
    rel = float((st.h[:, 0] - h_true).norm() / (h_true.norm() * math.sqrt(2)))
    assert rel < 1e-3


def test_hqs_with_kernel_error_runs_and_returns_h():
    """Smoke test of the alternating x/h loop (its accuracy on blind-ish deblurring is not yet validated)."""
    g = torch.Generator().manual_seed(10)
    truth = 0.5 * torch.sign(torch.randn(2, 1, 16, 16, generator=g))
    k_nom = torch.zeros(5, 5)
    k_nom[1:4, 1:4] = 1 / 9
    y = Blur(torch.ones(5, 5) / 25)(truth) + 0.01 * torch.randn(truth.shape, generator=g)
    res, h = hqs(Gaussian(y, 0.01, Blur(k_nom)), GaussianPrior(0.0, 0.5), tuple(truth.shape),
                 C("hqs", steps=10, samples=2), kernel_error=10.0, seeds=[0, 1])  # fmt: skip
    assert h.shape == (2, 2, 5, 5) and torch.isfinite(h).all() and torch.isfinite(res.mean).all()
    with pytest.raises(ValueError, match="Blur"):
        hqs(
            Gaussian(y, 0.01),
            GaussianPrior(0.0, 0.5),
            tuple(truth.shape),
            C("hqs", steps=2),
            kernel_error=1.0,
        )


def test_timesteps_and_seeds_make_results_independent_of_batching():
    assert timesteps(5, 999, 1000) == [999, 749, 500, 250, 0]
    assert timesteps(50, 10, 1000) == list(range(10, -1, -1))
    t = t_for_sigma(GaussianPrior().alphas_cumprod, 0.2)
    abar = float(GaussianPrior().alphas_cumprod[t])
    assert abs(math.sqrt((1 - abar) / abar) - 0.2) < 0.01
    prior = GaussianPrior(0.0, 1.0)
    cfg = C("sample", steps=10, eta=1.0, samples=2)
    both = sample(prior, (2, 1, 8, 8), cfg, seeds=[11, 22])
    one = sample(prior, (1, 1, 8, 8), cfg, seeds=[22])
    torch.testing.assert_close(both[1], one[0])


def test_blend_hook_is_called_every_step_and_keeps_tiles_consistent():
    """A consensus hook that averages two overlapping copies of the same tile: both copies stay equal."""
    calls = []

    def blend(t):
        calls.append(t.shape)
        return t.mean(0, keepdim=True).expand_as(t).clone()

    lik_y = torch.zeros(2, 1, 8, 8)
    res = dps(Gaussian(lik_y, 0.5), GaussianPrior(0.0, 1.0), (2, 1, 8, 8), C("dps", steps=7), seeds=[1, 2],
              blend=blend)  # fmt: skip
    torch.testing.assert_close(res.mean[0], res.mean[1])
    assert len(calls) >= 7 * 2


def test_bad_inputs_to_the_loop():
    prior = GaussianPrior(0.0, 1.0)
    with pytest.raises(ValueError, match="steps"):
        C("sample", steps=0)
    with pytest.raises(ValueError, match="t0"):
        sample(prior, (1, 1, 4, 4), C("sample", steps=5, t0=1000))
    with pytest.raises(ValueError, match="eta"):
        C("sample", steps=5, eta=2)
    with pytest.raises(ValueError, match="seeds"):
        sample(prior, (2, 1, 4, 4), C("sample", steps=5), seeds=[1])
    with pytest.raises(ValueError, match="unknown solver"):
        C("nope")
