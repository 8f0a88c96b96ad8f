"""Optical-SAR fusion by diffusion sampling with the L1/TV guidance of ``geodiff.likelihoods.FusionL1TV``.

At each step the prior's estimate f0_hat = (z0_hat + 1) / 2 is replaced (with weight ``strength``)
by the minimiser of ||f - f0_hat||_1 + a||f - o||_1 + b||f - r||_1 + c||D(f - o)||_1 + d||D(f - r)||_1,
computed by a fixed number of primal-dual iterations (the proximal step; DDFM-like).  With
``jacobian=True`` the same proposed change is pulled back through the network (DPS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from geodiff.likelihoods import FusionL1TV
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.loop import SampleResult, Step, check_tiles, sample, summarise

__all__ = ["fuse_dps"]


def fuse_dps(
    optical: torch.Tensor,
    sar: torch.Tensor,
    prior: DiffusionPrior,
    *,
    a: float = 1.0,
    b: float = 1.0,
    c: float = 1.0,
    d: float = 1.0,
    strength: float = 1.0,
    prox_iters: int = 60,
    steps: int = 50,
    t0: int | None = 500,
    init: str | torch.Tensor | None = "average",
    jacobian: bool = False,
    eta: float = 0.0,
    samples: int = 1,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    seeds: Sequence[int] | torch.Tensor | None = None,
    blend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    return_samples: bool = False,
) -> SampleResult:
    """Fuse optical luminance and SAR amplitude tiles (B, 1, H, W), both scaled to [0, 1].

    Returns the fused image in [0, 1] (mean over ``samples``) and its per-pixel std.
    ``init``: "average" ((o + r) / 2, noised to t0), a tensor in [0, 1], or "noise"/None.
    """
    obj = FusionL1TV(optical, sar, a, b, c, d)
    check_tiles(optical, prior, "optical")
    if prior.domain != "amplitude":
        raise ValueError(
            f"fuse_dps needs a prior on [0, 1] images ('amplitude' domain), not {prior.domain!r}"
        )
    if not 0 < strength <= 1:
        raise ValueError(f"strength must lie in (0, 1] (got {strength!r})")
    k = samples
    obj_k = FusionL1TV(optical.repeat_interleave(k, 0), sar.repeat_interleave(k, 0), a, b, c, d)
    if init is None or (isinstance(init, str) and init == "noise"):
        z_init, t_start = None, None
    elif isinstance(init, str):
        if init != "average":
            raise ValueError(f"init must be 'average', 'noise', None or a tensor (got {init!r})")
        z_init, t_start = (optical + sar) - 1, t0
    else:
        z_init, t_start = 2 * init.to(optical) - 1, t0
    del obj

    def guide(z0: torch.Tensor, step: Step) -> torch.Tensor:
        f = obj_k.prox((z0 + 1) / 2, prox_iters)
        return z0 + strength * (2 * f - 1 - z0)

    z = sample(
        prior,
        tuple(optical.shape),
        steps=steps,
        t0=t_start,
        init=z_init,
        eta=eta,
        guide=guide,
        jacobian=jacobian,
        clip=(-1.0, 1.0),
        blend=blend,
        samples=samples,
        generator=generator,
        seeds=seeds,
        device=optical.device,
        dtype=optical.dtype,
    )
    t = prior.alphas_cumprod.numel() - 1 if t_start is None else t_start
    return summarise(((z + 1) / 2).clamp(0, 1), return_samples, nfe=min(steps, t + 1), jacobian=jacobian)
