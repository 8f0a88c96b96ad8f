"""Solvers for likelihoods on the model domain itself: generic DPS, DDNM and DiffPIR-style HQS.

* :func:`dps` - any :class:`~geodiff.likelihoods.Likelihood` (Gaussian with an operator, Poisson ...),
  exact-Jacobian or Jacobian-free, with the same Fisher-scored guidance step as SAR-DPS.
* :func:`ddnm` - noise-free linear problems: range-null-space projection x0 <- A^+ y + (I - A^+ A) x0,
  so the output satisfies A x = y exactly.
* :func:`hqs` - plug-and-play half-quadratic splitting (DiffPIR): x0 <- argmin ||A x - y||^2/2sigma^2 +
  ||x - x0_hat||^2 / (2 zeta Var(x0|x_t)) in closed form; for blur it can also estimate an unknown
  kernel error h (min over x and h of ||(K + h) x - y||^2/2sigma^2 + nu ||h||^2/2), alternating the
  closed-form x-step with the closed-form h-step (normal equations on the kernel support).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from geodiff.likelihoods import Gaussian, Likelihood, check_observation
from geodiff.operators import Blur, Downsample, Identity, LinearOperator, Mask, kernel_otf
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.loop import SampleResult, Step, check_tiles, sample, summarise

__all__ = ["KernelErrorState", "ddnm", "dps", "gaussian_prox", "hqs", "kernel_error_step"]

Gen = torch.Generator | Sequence[torch.Generator] | None
Seeds = Sequence[int] | torch.Tensor | None


def _run(prior, shape, guide, *, t0, init, like, **kw):
    return sample(
        prior, shape, t0=None if init is None else t0, init=init, guide=guide, device=like.device,
        dtype=like.dtype, **kw,
    )  # fmt: skip


def dps(
    likelihood: Likelihood,
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    *,
    steps: int = 100,
    t0: int | None = None,
    init: torch.Tensor | None = None,
    jacobian: bool = True,
    zeta: float = 1.0,
    data_std: float = 0.5,
    newton_iters: int = 1,
    eta: float = 1.0,
    keep_eps: bool = False,
    samples: int = 1,
    generator: Gen = None,
    seeds: Seeds = None,
    blend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    clip: tuple[float, float] | None = None,
    return_samples: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> SampleResult:
    """Diffusion posterior sampling with a likelihood on the model domain (bound to tiles of ``shape``).

    The likelihood must be built on the observation expanded to ``samples`` draws per tile
    (``y.repeat_interleave(samples, 0)``) when samples > 1.  Guidance is the Newton step
    x0 <- x0 - (grad + (x0 - x0_hat)/v) / (fisher + 1/v), v = zeta Var(x0 | x_t); with
    ``jacobian=True`` it is pulled back through the network (DPS), otherwise applied to x0_hat.
    """

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        v = zeta * step.x0_variance(data_std)
        x = x0
        for _ in range(newton_iters):
            x = x - (likelihood.grad(x) + (x - x0) / v) / (likelihood.fisher(x) + 1.0 / v)
        return x

    ref = init if init is not None else torch.zeros((), device=device, dtype=dtype)
    x = _run(
        prior, shape, guide, steps=steps, t0=t0, init=init, jacobian=jacobian, eta=eta, samples=samples,
        generator=generator, seeds=seeds, blend=blend, clip=clip, like=ref, keep_eps=keep_eps,
        x0_var=lambda st: zeta * st.x0_variance(data_std),
    )  # fmt: skip
    return summarise(x, return_samples, nfe=_nfe(steps, t0, init, prior), jacobian=jacobian)


def _nfe(steps: int, t0: int | None, init, prior) -> int:
    t = prior.alphas_cumprod.numel() - 1 if (init is None or t0 is None) else t0
    return min(int(steps), int(t) + 1)


def ddnm(
    y: torch.Tensor,
    operator: LinearOperator,
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    *,
    steps: int = 100,
    eta: float = 0.85,
    samples: int = 1,
    generator: Gen = None,
    seeds: Seeds = None,
    blend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    clip: tuple[float, float] | None = None,
    return_samples: bool = False,
) -> SampleResult:
    """DDNM for noise-free y = A x: every x0_hat is projected onto {x : A x = y}."""
    check_observation(y)
    check_tiles(torch.empty(shape, device="meta"), prior, "tiles")
    ys = y.repeat_interleave(samples, 0)
    ay = operator.pinv(ys)

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        return ay + x0 - operator.pinv(operator(x0))

    x = _run(
        prior, shape, guide, steps=steps, t0=None, init=None, jacobian=False, eta=eta, samples=samples,
        generator=generator, seeds=seeds, blend=blend, clip=clip, like=y,
    )  # fmt: skip
    # The last x0 was projected: A x = y holds up to rounding (clip happens before the projection).
    return summarise(x, return_samples, nfe=_nfe(steps, None, None, prior))


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
    raise ValueError(f"no closed-form proximal step for {type(op).__name__}; use dps() for this operator")


class KernelErrorState:
    """The running estimate of the kernel error h (one per tile and sample) for blind-ish deblurring."""

    def __init__(self, kernel: torch.Tensor, batch: int, like: torch.Tensor):
        self.kernel = kernel.to(like)
        self.h = torch.zeros(batch, 1, *kernel.shape, dtype=like.dtype, device=like.device)

    def otf(self, shape: tuple[int, int]) -> torch.Tensor:
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
    y: torch.Tensor,
    operator: LinearOperator,
    sigma: float,
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    *,
    steps: int = 100,
    t0: int | None = None,
    init: torch.Tensor | None = None,
    zeta: float = 1.0,
    data_std: float = 0.5,
    eta: float = 1.0,
    kernel_error: bool = False,
    nu: float = 1e3,
    samples: int = 1,
    generator: Gen = None,
    seeds: Seeds = None,
    blend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    clip: tuple[float, float] | None = None,
    return_samples: bool = False,
) -> tuple[SampleResult, torch.Tensor | None]:
    """DiffPIR-style plug-and-play HQS; returns the result and, with ``kernel_error``, h (B, K, kh, kw).

    rho_t = 1 / (zeta Var(x0 | x_t)) couples the data step to the diffusion time.
    """
    Gaussian(y, sigma, operator)  # validates y and sigma
    ys = y.repeat_interleave(samples, 0)
    state = None
    if kernel_error:
        if not isinstance(operator, Blur):
            raise ValueError("kernel_error=True needs a Blur operator (the nominal kernel K)")
        if not (nu > 0 and math.isfinite(nu)):
            raise ValueError(f"nu must be a finite number > 0 (got {nu!r})")
        state = KernelErrorState(operator.kernel, ys.shape[0], ys)

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        rho = 1.0 / (zeta * step.x0_variance(data_std))
        if state is None:
            return gaussian_prox(operator, ys, sigma, x0, rho)
        h = state.otf(x0.shape[-2:])
        num = torch.fft.rfft2(ys) * h.conj() / sigma**2 + rho * torch.fft.rfft2(x0)
        x = torch.fft.irfft2(num / (h.abs() ** 2 / sigma**2 + rho), s=x0.shape[-2:])
        kernel_error_step(state, x, ys, sigma, nu)
        return x

    x = _run(
        prior, shape, guide, steps=steps, t0=t0, init=init, jacobian=False, eta=eta, samples=samples,
        generator=generator, seeds=seeds, blend=blend, clip=clip, like=y,
    )  # fmt: skip
    res = summarise(x, return_samples, nfe=_nfe(steps, t0, init, prior))
    h = None if state is None else state.h[:, 0].unflatten(0, (shape[0], samples))
    return res, h
