"""Solvers for likelihoods on the model domain itself: generic DPS, DDNM and DiffPIR-style HQS.

* :func:`dps` - any :class:`~geodiff.likelihoods.Likelihood` (Gaussian with an operator, Poisson ...),
  exact-Jacobian (DPS, Chung et al. 2023) or Jacobian-free, with the same Fisher-scored guidance step
  as SAR-DPS.
* :func:`ddnm` - noise-free linear problems (DDNM, Wang et al. 2023): range-null-space projection
  x0 <- A^+ y + (I - A^+ A) x0, so the output satisfies A x = y exactly.
* :func:`hqs` - plug-and-play half-quadratic splitting (DiffPIR, Zhu et al. 2023):
  x0 <- argmin ||A x - y||^2/2sigma^2 +
  ||x - x0_hat||^2 / (2 zeta Var(x0|x_t)) in closed form; for blur it can also estimate an unknown
  kernel error h (min over x and h of ||(K + h) x - y||^2/2sigma^2 + nu ||h||^2/2), alternating the
  closed-form x-step with the closed-form h-step (normal equations on the kernel support).
"""

from __future__ import annotations

import math

import torch

from geodiff.errors import InvalidSettingError
from geodiff.likelihoods import Gaussian, Likelihood, check_observation
from geodiff.operators import Blur, Downsample, Identity, LinearOperator, Mask, kernel_otf
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.config import SamplerConfig
from geodiff.solvers.loop import Blend, SampleResult, Seeds, Step, check_tiles, sample, summarise

__all__ = ["KernelErrorState", "ddnm", "dps", "gaussian_prox", "hqs", "kernel_error_step"]


def dps(
    likelihood: Likelihood,
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    config: SamplerConfig | None = None,
    *,
    estimate: torch.Tensor | None = None,
    seeds: Seeds = None,
    blend: Blend | None = None,
    return_samples: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> SampleResult:
    """Diffusion posterior sampling (Chung et al. 2023) with a likelihood on the model domain.

    ``shape`` (B, C, H, W) are the tiles x. The likelihood must be built on the observation expanded to
    ``config.samples`` draws per tile (``y.repeat_interleave(samples, 0)``) when samples > 1. Guidance
    is the Newton step x0 <- x0 - (grad + (x0 - x0_hat)/v) / (fisher + 1/v), v = zeta Var(x0 | x_t);
    with ``config.jacobian`` (the default) it is pulled back through the network, otherwise applied to
    x0_hat. ``estimate`` (B, C, H, W, model domain) starts from a noised estimate at ``config.t0``.
    Defaults: ``SamplerConfig.defaults("dps")`` (100 steps, eta = 1). Returns mean, std in the model domain.
    """
    config = SamplerConfig.of(config, "dps")

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        v = config.x0_variance(step)
        x = x0
        for _ in range(config.newton_iters):
            x = x - (likelihood.grad(x) + (x - x0) / v) / (likelihood.fisher(x) + 1.0 / v)
        return x

    dev = estimate.device if estimate is not None and device is None else device
    x = sample(
        prior, shape, config, guide=guide, x0_var=config.x0_variance, init=estimate, seeds=seeds, blend=blend,
        device=dev, dtype=estimate.dtype if estimate is not None else dtype,
    )  # fmt: skip
    nfe = config.nfe(prior.alphas_cumprod, estimate is not None)
    return summarise(x, return_samples, nfe=nfe, jacobian=config.jacobian)


def ddnm(
    y: torch.Tensor,
    operator: LinearOperator,
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    config: SamplerConfig | None = None,
    *,
    seeds: Seeds = None,
    blend: Blend | None = None,
    return_samples: bool = False,
) -> SampleResult:
    """DDNM (Wang et al. 2023) for noise-free y = A x: every x0_hat is projected onto {x : A x = y}.

    y is shaped like A x for tiles x of ``shape`` (B, C, H, W), model domain. Starts from noise at T-1
    (defaults: ``SamplerConfig.defaults("ddnm")``, 100 steps, eta = 0.85). The result satisfies A x = y
    up to rounding (the clip, if any, happens before the projection). Raises ValueError for bad y/tiles.
    """
    config = SamplerConfig.of(config, "ddnm")
    check_observation(y)
    check_tiles(torch.empty(shape, device="meta"), prior, "tiles")
    ys = y.repeat_interleave(config.samples, 0)
    ay = operator.pinv(ys)

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        return ay + x0 - operator.pinv(operator(x0))

    x = sample(prior, shape, config, guide=guide, seeds=seeds, blend=blend, device=y.device, dtype=y.dtype)
    return summarise(x, return_samples, nfe=config.nfe(prior.alphas_cumprod, False))


def gaussian_prox(
    op: LinearOperator, y: torch.Tensor, sigma: float, x0: torch.Tensor, rho: float | torch.Tensor
) -> torch.Tensor:
    """argmin_x ||A x - y||^2 / (2 sigma^2) + rho ||x - x0||^2 / 2 in closed form."""
    s2 = sigma * sigma
    if isinstance(op, (Identity, Mask)):
        m = op.gram_diag(x0)
        return (op.T(y) / s2 + rho * x0) / (m / s2 + rho)
    if isinstance(op, Downsample):
        b = op.T(y) / s2 + rho * x0  # (A^T A/s2 + rho)^-1 = (1/rho)(I - A^T (rho s2 + 1/k^2)^-1 A)
        return (b - op.T(op(b)) / (rho * s2 + 1.0 / op.k**2)) / rho
    if isinstance(op, Blur):
        h = op.otf(x0)
        num = torch.fft.rfft2(y) * h.conj() / s2 + rho * torch.fft.rfft2(x0)
        return torch.fft.irfft2(num / (h.abs() ** 2 / s2 + rho), s=x0.shape[-2:])
    raise InvalidSettingError(
        f"no closed-form proximal step for {type(op).__name__}; use dps() for this operator"
    )


class KernelErrorState:
    """The running estimate of the kernel error h (one per tile and sample) for blind-ish deblurring."""

    def __init__(self, kernel: torch.Tensor, batch: int, like: torch.Tensor):
        self.kernel = kernel.to(like)
        self.h = torch.zeros(batch, 1, *kernel.shape, dtype=like.dtype, device=like.device)

    def otf(self, shape: tuple[int, int]) -> torch.Tensor:
        """Transfer functions of the current kernels K + h, (B, 1, H, W // 2 + 1) complex."""
        return kernel_otf(self.kernel + self.h, shape)


def kernel_error_step(
    state: KernelErrorState, x: torch.Tensor, y: torch.Tensor, sigma: float, nu: float
) -> None:
    """Exact h-update: argmin_h ||(K + h) * x - y||^2 / (2 sigma^2) + nu ||h||^2 / 2, h on K's support.

    (K + h) * x is linear in h: with M the matrix whose columns are x convolved with each unit kernel of
    the support, h solves the (kh kw)^2 normal equations (M^T M + nu sigma^2 I) h = M^T (y - K * x)
    (one small batched solve per step; no values read back to the host).
    """
    kh, kw = state.kernel.shape
    shp = x.shape[-2:]
    eye = torch.eye(kh * kw, dtype=x.dtype, device=x.device).view(kh * kw, kh, kw)
    otfs = kernel_otf(eye, shp)  # (kh kw, H, W/2+1)
    fx = torch.fft.rfft2(x)  # (B, 1, H, W/2+1)
    cols = torch.fft.irfft2(fx * otfs, s=shp).flatten(2)  # (B, kh kw, H W)
    resid = (y - torch.fft.irfft2(fx * kernel_otf(state.kernel, shp), s=shp)).flatten(1)  # (B, H W)
    gram = cols @ cols.transpose(1, 2) + nu * sigma**2 * eye.flatten(1)
    rhs = (cols @ resid.unsqueeze(-1)).squeeze(-1)
    state.h = torch.linalg.solve(gram, rhs).view(-1, 1, kh, kw)


def hqs(
    likelihood: Gaussian,
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    config: SamplerConfig | None = None,
    *,
    estimate: torch.Tensor | None = None,
    kernel_error: float | None = None,
    seeds: Seeds = None,
    blend: Blend | None = None,
    return_samples: bool = False,
) -> tuple[SampleResult, torch.Tensor | None]:
    """DiffPIR-style plug-and-play HQS (Zhu et al. 2023) for a Gaussian likelihood y = A x + n.

    The data step is the closed-form :func:`gaussian_prox` with rho_t = 1 / (zeta Var(x0 | x_t)), which
    couples it to the diffusion time. ``likelihood`` is bound to the un-expanded observation; tiles x
    have ``shape`` (B, C, H, W), model domain. ``kernel_error=nu`` (a Blur operator only) also estimates
    an unknown kernel error h with penalty nu ||h||^2 / 2 (:func:`kernel_error_step`).
    Returns the result and, with ``kernel_error``, h (B, K, kh, kw). Raises ValueError for a bad nu or a
    kernel error on a non-blur operator.
    """
    config = SamplerConfig.of(config, "hqs")
    operator, sigma = likelihood.A, likelihood.sigma
    ys = likelihood.y.repeat_interleave(config.samples, 0)
    state = None
    if kernel_error is not None:
        if not isinstance(operator, Blur):
            raise InvalidSettingError("kernel_error needs a Blur operator (the nominal kernel K)")
        if not (kernel_error > 0 and math.isfinite(kernel_error)):
            raise InvalidSettingError(f"kernel_error (nu) must be a finite number > 0 (got {kernel_error!r})")
        state = KernelErrorState(operator.kernel, ys.shape[0], ys)

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        rho = 1.0 / config.x0_variance(step)
        if state is None:
            return gaussian_prox(operator, ys, sigma, x0, rho)
        h = state.otf(x0.shape[-2:])
        num = torch.fft.rfft2(ys) * h.conj() / sigma**2 + rho * torch.fft.rfft2(x0)
        x = torch.fft.irfft2(num / (h.abs() ** 2 / sigma**2 + rho), s=x0.shape[-2:])
        kernel_error_step(state, x, ys, sigma, kernel_error)
        return x

    y = likelihood.y
    x = sample(
        prior,
        shape,
        config,
        guide=guide,
        init=estimate,
        seeds=seeds,
        blend=blend,
        device=y.device,
        dtype=y.dtype,
    )
    res = summarise(x, return_samples, nfe=config.nfe(prior.alphas_cumprod, estimate is not None))
    h = None if state is None else state.h[:, 0].unflatten(0, (shape[0], config.samples))
    return res, h
