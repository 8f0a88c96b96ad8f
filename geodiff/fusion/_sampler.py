"""Fusion sampler used until geodiff.solvers offers ``fuse_dps``.

DDIM steps of the shared loop (geodiff.solvers.loop.sample) with the L1/TV fusion objective as a
proximal guidance on the prior's x0 estimate: at every step the Tweedie estimate f0 is replaced by
argmin_f ||f - f0||_1 + a||f - o||_1 + b||f - r||_1 + c||D(f - o)||_1 + d||D(f - r)||_1
(geodiff.likelihoods.FusionL1TV.prox). The prior lives in the "amplitude" domain z = 2f - 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from geodiff.likelihoods import FusionL1TV
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.loop import Step, check_tiles, sample

__all__ = ["local_fuse_dps"]


def local_fuse_dps(
    prior: DiffusionPrior,
    optical: torch.Tensor,
    sar: torch.Tensor,
    *,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
    steps: int = 20,
    prox_iters: int = 40,
    seeds: Sequence[int] | None = None,
    blend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Fused luminance (B, 1, H, W) in [0, 1] from optical luminance and SAR amplitude tiles in [0, 1]."""
    check_tiles(optical, prior, "optical")
    a, b, c, d = weights
    objective = FusionL1TV(optical, sar, a=a, b=b, c=c, d=d)

    def guide(x0: torch.Tensor, step: Step) -> torch.Tensor:
        f0 = ((x0 + 1) / 2).clamp(0, 1)
        return 2 * objective.prox(f0, iters=prox_iters).clamp(0, 1) - 1

    out = sample(
        prior,
        tuple(optical.shape),
        steps=steps,
        guide=guide,
        clip=(-1.0, 1.0),
        blend=blend,
        seeds=seeds,
        device=device if device is not None else optical.device,
        dtype=optical.dtype,
    )
    return ((out[:, 0] + 1) / 2).clamp(0, 1)
