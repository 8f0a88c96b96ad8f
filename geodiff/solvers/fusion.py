"""Optical-SAR fusion by diffusion sampling with the L1/TV guidance of ``geodiff.likelihoods.FusionL1TV``.

The review's fusion eq. 25-26: at each step the prior's estimate f0_hat = (z0_hat + 1) / 2 is moved (by
``strength``) to the minimiser of ||f - f0_hat||_1 + a||f - o||_1 + b||f - r||_1 + c||D(f - o)||_1 +
d||D(f - r)||_1, computed by a fixed number of primal-dual iterations (the proximal step; DDFM-like,
Zhao et al. 2023). With ``config.jacobian`` the same proposed change is pulled back through the network (DPS).
"""

from __future__ import annotations

import torch

from geodiff.errors import InvalidSettingError
from geodiff.likelihoods import FusionModel
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.config import SamplerConfig
from geodiff.solvers.loop import Blend, SampleResult, Seeds, Step, check_tiles, sample, summarise

__all__ = ["fuse_dps"]


def _start(optical: torch.Tensor, sar: torch.Tensor, config: SamplerConfig, estimate) -> torch.Tensor | None:
    """Initial estimate in z = 2f - 1, or None (noise)."""
    if estimate is not None:
        return 2 * estimate.to(optical) - 1
    if config.init not in ("average", "noise"):
        raise InvalidSettingError(
            f"init must be 'average' or 'noise', or pass an estimate tensor (got {config.init!r})"
        )
    return (optical + sar) - 1 if config.init == "average" else None


def fuse_dps(
    optical: torch.Tensor,
    sar: torch.Tensor,
    prior: DiffusionPrior,
    physics: FusionModel | None = None,
    config: SamplerConfig | None = None,
    *,
    estimate: torch.Tensor | None = None,
    seeds: Seeds = None,
    blend: Blend | None = None,
    return_samples: bool = False,
) -> SampleResult:
    """Fuse optical luminance and SAR amplitude tiles (B, 1, H, W), both float in [0, 1].

    Args:
        optical, sar: co-registered tiles of the same shape (no NaN).
        prior: a DiffusionPrior in the "amplitude" domain (z = 2f - 1).
        physics: the fusion weights, strength and prox iterations (default :class:`FusionModel`).
        config: sampler settings (default ``SamplerConfig.defaults("fuse_dps")``: 50 steps from the
            average (o + r) / 2 noised to t0 = 500, one draw).
        estimate: a start image in [0, 1] instead of ``config.init`` ("average" or "noise").
        seeds, blend, return_samples: as for :func:`geodiff.solvers.sar_dps`.

    Returns the fused image in [0, 1] (mean over draws) and its per-pixel std.
    Raises ValueError for bad tiles or weights, mismatched shapes or a non-amplitude prior.
    """
    physics = physics or FusionModel()
    config = SamplerConfig.of(config, "fuse_dps")
    physics.objective(optical, sar)  # validates both observations and their shapes
    check_tiles(optical, prior, "optical")
    if prior.domain != "amplitude":
        raise InvalidSettingError(
            f"fuse_dps needs a prior on [0, 1] images ('amplitude' domain), not {prior.domain!r}"
        )
    k = config.samples
    obj = physics.objective(optical.repeat_interleave(k, 0), sar.repeat_interleave(k, 0))
    z_init = _start(optical, sar, config, estimate)

    def guide(z0: torch.Tensor, step: Step) -> torch.Tensor:
        f = obj.prox((z0 + 1) / 2, physics.prox_iters)
        return z0 + physics.strength * (2 * f - 1 - z0)

    z = sample(
        prior, tuple(optical.shape), config, guide=guide, init=z_init, seeds=seeds, blend=blend,
        device=optical.device, dtype=optical.dtype,
    )  # fmt: skip
    nfe = config.nfe(prior.alphas_cumprod, z_init is not None)
    return summarise(((z + 1) / 2).clamp(0, 1), return_samples, nfe=nfe, jacobian=config.jacobian)
