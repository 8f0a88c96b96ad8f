"""Evaluate a prior in chunks of at most ``max_batch`` tiles.

Why: the blending hook needs a whole block's tiles (times samples) in one sampler state, but the
network's activations for hundreds of 256² tiles would not fit in memory; the state is cheap, the
activations are not. Chunking changes nothing numerically (the network has no batch coupling).
"""

from __future__ import annotations

import torch

from geodiff.errors import InvalidSettingError
from geodiff.priors.base import DiffusionPrior


class ChunkedPrior:
    """A DiffusionPrior whose ``eps`` runs the wrapped prior on slices of the batch."""

    def __init__(self, prior: DiffusionPrior, max_batch: int = 16) -> None:
        if max_batch < 1:
            raise InvalidSettingError(f"max_batch must be >= 1 (got {max_batch})")
        self.prior, self.max_batch = prior, int(max_batch)
        self.alphas_cumprod = prior.alphas_cumprod
        self.domain, self.channels, self.stride = prior.domain, prior.channels, prior.stride

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The wrapped prior's eps on at most ``max_batch`` tiles at a time; same result as one call."""
        n, m = x_t.shape[0], self.max_batch
        if n <= m:
            return self.prior.eps(x_t, t)
        t = torch.as_tensor(t, device=x_t.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n)
        return torch.cat([self.prior.eps(x_t[i : i + m], t[i : i + m]) for i in range(0, n, m)])

    __call__ = eps

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ChunkedPrior:
        """Move the wrapped prior; returns this wrapper."""
        self.prior.to(device, dtype)
        self.alphas_cumprod = self.prior.alphas_cumprod
        return self
