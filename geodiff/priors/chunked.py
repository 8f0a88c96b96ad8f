"""Evaluate a prior in chunks of at most ``max_batch`` tiles.

Why: the blending hook needs a whole block's tiles (times samples) in one sampler state, but the
network's activations for hundreds of 256² tiles would not fit in memory; the state is cheap, the
activations are not. Chunking changes nothing numerically (the network has no batch coupling).
"""

from __future__ import annotations

import torch

from geodiff.errors import InvalidSettingError
from geodiff.priors.base import DiffusionPrior, PriorWrapper


class ChunkedPrior(PriorWrapper):
    """A DiffusionPrior whose ``eps`` runs the wrapped prior on slices of at most ``max_batch`` tiles."""

    def __init__(self, prior: DiffusionPrior, max_batch: int = 16) -> None:
        if max_batch < 1:
            raise InvalidSettingError(f"max_batch must be >= 1 (got {max_batch})")
        super().__init__(prior)
        self.max_batch = int(max_batch)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The wrapped prior's eps on at most ``max_batch`` tiles at a time; same result as one call."""
        n, m = x_t.shape[0], self.max_batch
        if n <= m:
            return self.prior.eps(x_t, t)
        t = torch.as_tensor(t, device=x_t.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n)
        return torch.cat([self.prior.eps(x_t[i : i + m], t[i : i + m]) for i in range(0, n, m)])
