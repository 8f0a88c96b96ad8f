"""Diffusion solvers for inverse problems on tiles (pure torch: tiles (B, C, H, W) in, tiles out).

Entry points (each takes ``(observation, prior, physics, config, *, seeds, blend)``):

* :func:`sar_dps` - SAR despeckling (the review's SAR-DPS, eq. 22-24: gamma speckle likelihood,
  exact-Jacobian or Jacobian-free guidance, start from a noised Lee estimate, posterior mean and std).
* :func:`sar_pnp` - SAR despeckling by PnP-ADMM with the prior's Tweedie denoiser and the exact gamma
  proximal step (Chan et al. 2017), then a short come-closer SAR-DPS refinement (Chung et al. 2022).
* :func:`sar_blind_spot` - the blind-spot estimate: each pixel by PnP-ADMM without its own correlated
  neighbourhood's data (Noise2Self's J-invariance), so the ratio image has mean 1 and no bias.
* :func:`fuse_dps` - optical-SAR fusion with the L1/TV guidance (the review's eq. 25-26).
* :func:`dps`, :func:`ddnm`, :func:`hqs` - generic DPS (Chung et al. 2023), DDNM (Wang et al. 2023),
  DiffPIR-style HQS (Zhu et al. 2023, with an optional unknown blur-kernel error).
* :func:`sample` - the shared DDIM loop (Song et al. 2021) for new solvers; :class:`SampleResult` - what
  they all return; :class:`SamplerConfig` - the settings they all share (JSON round trip for tags).

``seeds`` (one per tile) make results independent of batching; ``blend`` is the tiling engine's
per-step consensus hook.
"""

from geodiff.likelihoods import FusionModel, SpeckleModel
from geodiff.solvers.blind_spot import sar_blind_spot
from geodiff.solvers.config import SOLVERS, SamplerConfig
from geodiff.solvers.fusion import fuse_dps
from geodiff.solvers.init import boxcar, lee
from geodiff.solvers.linear import ddnm, dps, gaussian_prox, hqs, kernel_error_step
from geodiff.solvers.loop import SampleResult, Step, check_tiles, sample, summarise
from geodiff.solvers.pnp import gamma_prox, pnp_admm, sar_pnp, tweedie_denoise
from geodiff.solvers.sar import A_MIN, FORMS, estimate_scale, preserve_local_mean, sar_dps, sar_guidance

__all__ = [
    "A_MIN",
    "FORMS",
    "SOLVERS",
    "FusionModel",
    "SampleResult",
    "SamplerConfig",
    "SpeckleModel",
    "Step",
    "boxcar",
    "check_tiles",
    "ddnm",
    "dps",
    "estimate_scale",
    "fuse_dps",
    "gaussian_prox",
    "hqs",
    "kernel_error_step",
    "lee",
    "preserve_local_mean",
    "sample",
    "sar_blind_spot",
    "sar_dps",
    "sar_guidance",
    "sar_pnp",
    "gamma_prox",
    "pnp_admm",
    "tweedie_denoise",
    "summarise",
]
