"""What every diffusion prior offers the solvers: a VP noise schedule and an epsilon predictor.

The schedule convention and Tweedie's formula live in :mod:`geodiff.priors.schedule`. x0 lives in the
prior's *model domain*; ``domain`` names it so that solvers can map data in and out:

* ``"amplitude"``: amplitude a in [0, 1] (8-bit gray g -> (g + 1) / 256) mapped to z = 2a - 1 in [-1, 1];
* ``"gaussian"``: the analytic test prior of :mod:`geodiff.priors.gaussian` (any real values).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["DiffusionPrior", "PriorWrapper"]


@runtime_checkable
class DiffusionPrior(Protocol):
    """A trained or analytic prior over images in the model domain (DDPM/VP, Ho et al. 2020).

    Attributes:
        alphas_cumprod: abar_t, shape (T,), float64 or float32, decreasing from ~1 to ~0.
        domain: the model domain, e.g. "amplitude" (z = 2a - 1) or "gaussian".
        channels: channels C the network takes (1 for gray).
        stride: tile heights and widths must be multiples of this.
    """

    alphas_cumprod: torch.Tensor
    domain: str
    channels: int
    stride: int

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise (B, C, H, W) for x_t (B, C, H, W) at integer timesteps t (B,) or a scalar."""
        ...

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> DiffusionPrior:
        """Move the prior (weights and schedule) to a device; returns the prior itself."""
        ...


class PriorWrapper:
    """Base of a DiffusionPrior that wraps another and changes only how ``eps`` is evaluated.

    The schedule, domain, channels, stride and any other attribute (e.g. ``amplitude_median``) are the
    wrapped prior's; ``to`` moves the wrapped prior. Subclasses implement :meth:`eps`.
    """

    def __init__(self, prior: DiffusionPrior) -> None:
        self.prior = prior

    def __getattr__(self, name: str):  # noqa: ANN204 - whatever the wrapped prior holds
        if name == "prior":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.prior, name)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """Predicted noise (B, C, H, W) for x_t (B, C, H, W) at timesteps t (B,) or a scalar."""
        raise NotImplementedError

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.eps(x_t, t)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> PriorWrapper:
        """Move the wrapped prior; returns this wrapper."""
        self.prior.to(device, dtype)
        return self
