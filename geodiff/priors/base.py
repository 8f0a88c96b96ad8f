"""What every diffusion prior offers the solvers: a VP noise schedule and an epsilon predictor.

Convention (DDPM/VP, discrete time t = 0 .. T-1):
    x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps,   eps ~ N(0, I)
    score s(x_t, t) = -eps_hat / sqrt(1 - abar_t)
    Tweedie x0_hat = (x_t - sqrt(1 - abar_t) * eps_hat) / sqrt(abar_t)
x0 lives in the prior's *model domain* (e.g. amplitude mapped to [-1, 1]); ``domain``
names it so that solvers can map intensities in and out.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class DiffusionPrior(Protocol):
    """A trained or analytic prior over images in the model domain."""

    alphas_cumprod: torch.Tensor  # shape (T,), float64 or float32, decreasing from ~1 to ~0
    domain: str  # e.g. "amplitude" (a in [0,1] -> 2a-1), "log_intensity", "gaussian"
    channels: int  # channels the network takes (1 for gray)
    stride: int  # tile sizes must be multiples of this

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise for a batch x_t (B, C, H, W) at integer timesteps t (B,)."""
        ...

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> DiffusionPrior:
        """Move the prior (weights and schedule) to a device."""
        ...


def tweedie_x0(prior: DiffusionPrior, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Posterior-mean estimate of x0 from x_t and the predicted noise."""
    abar = prior.alphas_cumprod.to(x_t.device, x_t.dtype)[t].view(-1, 1, 1, 1)
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
