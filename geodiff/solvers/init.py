"""Start estimates for the solvers (come-closer-diffuse-faster, Chung et al. 2022): boxcar and Lee in torch.

Why a torch Lee beside ``sensors.speckle_filters.lee`` (numpy): the solver starts every tile batch from
a Lee estimate on the tiles' own device (GPU) inside the sampling step, and the diffusion core may not
import the radiometry package (layering), while the product's classical filter must stay numpy/scipy
and nodata-aware. The two are the same formula (Lee 1980, k = (1 - Cu^2/Ci^2) / (1 + Cu^2) clipped to
[0, 1], Cu^2 = 1/L, mirror borders); ``tests/core/test_init.py`` checks them equal on the same input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["boxcar", "gaussian_mean", "lee"]


def boxcar(x: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Local mean over a size x size window (odd size) with reflect (mirror) borders; x (B, C, H, W) float."""
    r = size // 2
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), size, stride=1)


def gaussian_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Local mean with a Gaussian window as strong as a size x size box: the same number of pixels
    (4 pi sigma^2 = size^2, sigma = size / sqrt(4 pi)), truncated at 3 sigma, separable, reflect borders;
    x (B, C, H, W) float. Unlike the box, its weights fall off smoothly, so a bright pixel does not
    stamp the window's square onto a ratio of two local means. The radius shrinks to fit small tiles
    (reflect padding needs radius < H and W)."""
    sigma = size / math.sqrt(4 * math.pi)
    r = min(math.ceil(3 * sigma), x.shape[-2] - 1, x.shape[-1] - 1)
    if r < 1:
        return x
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    w = w / w.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(x, w.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def lee(y: torch.Tensor, looks: float, size: int = 7, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Lee (1980) filter on intensity y (B, C, H, W), L looks: x = m + k (y - m) with local mean m.

    k = clip((1 - Cu^2 / Ci^2) / (1 + Cu^2), 0, 1), Cu^2 = 1/L, Ci^2 = var / m^2 over size x size windows.
    ``weight`` (0/1, broadcastable to y; None: all 1) leaves pixels out of the local statistics, and a
    pixel of weight 0 gets the local mean m of the others (normalised convolution): the estimate then
    does not depend on the data of weight-0 pixels at all (the blind-spot start,
    :mod:`geodiff.solvers.blind_spot`). Same dtype and device as y; y must be >= 0 and larger than
    size // 2 on both axes.
    """
    if weight is None:
        m = boxcar(y, size)
        v = (boxcar(y * y, size) - m * m).clamp_min(0)
    else:
        w = torch.broadcast_to(weight, y.shape).to(y.dtype)
        n = boxcar(w, size).clamp_min(1e-6)
        m = boxcar(y * w, size) / n
        v = (boxcar(y * y * w, size) / n - m * m).clamp_min(0)
    cu2 = 1.0 / float(looks)
    ci2 = v / m.clamp_min(1e-12) ** 2
    k = ((1 - cu2 / ci2.clamp_min(1e-12)) / (1 + cu2)).clamp(0, 1)
    x = m + k * (y - m)
    return x if weight is None else torch.where(w > 0, x, m)
