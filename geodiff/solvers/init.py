"""Start estimates for the solvers (come-closer-diffuse-faster, Chung et al. 2022): boxcar and Lee in torch.

Why a torch Lee beside ``sensors.speckle_filters.lee`` (numpy): the solver starts every tile batch from
a Lee estimate on the tiles' own device (GPU) inside the sampling step, and the diffusion core may not
import the radiometry package (layering), while the product's classical filter must stay numpy/scipy
and nodata-aware. The two are the same formula (Lee 1980, k = (1 - Cu^2/Ci^2) / (1 + Cu^2) clipped to
[0, 1], Cu^2 = 1/L, mirror borders); ``tests/core/test_init.py`` checks them equal on the same input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["boxcar", "lee"]


def boxcar(x: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Local mean over a size x size window (odd size) with reflect (mirror) borders; x (B, C, H, W) float."""
    r = size // 2
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), size, stride=1)


def lee(y: torch.Tensor, looks: float, size: int = 7) -> torch.Tensor:
    """Lee (1980) filter on intensity y (B, C, H, W), L looks: x = m + k (y - m) with local mean m.

    k = clip((1 - Cu^2 / Ci^2) / (1 + Cu^2), 0, 1), Cu^2 = 1/L, Ci^2 = var / m^2 over size x size windows.
    Same dtype and device as y; y must be >= 0 and larger than size // 2 on both axes.
    """
    m = boxcar(y, size)
    v = (boxcar(y * y, size) - m * m).clamp_min(0)
    cu2 = 1.0 / float(looks)
    ci2 = v / m.clamp_min(1e-12) ** 2
    k = ((1 - cu2 / ci2.clamp_min(1e-12)) / (1 + cu2)).clamp(0, 1)
    return m + k * (y - m)
