"""Diffusion solvers for inverse problems on tiles (pure torch: tiles in, tiles out).

Entry points:

* :func:`sar_dps` - SAR despeckling (gamma speckle likelihood, intensity/log forms, exact-Jacobian
  or Jacobian-free guidance, start from a noised Lee/BM3D estimate, posterior mean and std).
* :func:`fuse_dps` - optical-SAR fusion with the L1/TV guidance.
* :func:`dps`, :func:`ddnm`, :func:`hqs` - generic DPS, DDNM (noise-free linear), DiffPIR-style HQS
  (with unknown blur-kernel error).
* :func:`sample` - the shared loop (for new solvers), :class:`SampleResult` - what they all return.

All take ``blend`` (the tiling engine's per-step consensus hook) and ``seeds``/``generator`` (one per
tile, so results do not depend on batching).
"""

from geodiff.solvers.fusion import fuse_dps
from geodiff.solvers.init import boxcar, lee
from geodiff.solvers.linear import ddnm, dps, gaussian_prox, hqs, kernel_error_step
from geodiff.solvers.loop import SampleResult, Step, check_tiles, sample, summarise, t_for_noise, timesteps
from geodiff.solvers.sar import FORMS, estimate_scale, sar_dps, sar_guidance

__all__ = [
    "FORMS",
    "SampleResult",
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
    "sample",
    "sar_dps",
    "sar_guidance",
    "summarise",
    "t_for_noise",
    "timesteps",
]
