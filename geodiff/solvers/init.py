"""Cheap first estimates to start sampling from (come-closer-diffuse-faster): boxcar and Lee filters."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["boxcar", "lee"]


def boxcar(x: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Local mean over a size x size window with reflect padding (B, C, H, W)."""
    r = size // 2
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), size, stride=1)


def lee(y: torch.Tensor, looks: float, size: int = 7) -> torch.Tensor:
    """Lee filter on intensity (Cu^2 = 1/L): x = m + k (y - m), k = clip((1 - Cu^2/Ci^2)/(1 + Cu^2), 0, 1)."""
    m = boxcar(y, size)
    v = (boxcar(y * y, size) - m * m).clamp_min(0)
    cu2 = 1.0 / float(looks)
    ci2 = v / m.clamp_min(1e-12) ** 2
    k = ((1 - cu2 / ci2.clamp_min(1e-12)) / (1 + cu2)).clamp(0, 1)
    return m + k * (y - m)
