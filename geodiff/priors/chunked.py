"""Evaluate a prior in fixed-size chunks of tiles.

Why: the blending hook needs a whole block's tiles (times samples) in one sampler state, but the
network's activations for hundreds of 256² tiles would not fit in memory; the state is cheap, the
activations are not. The network has no batch coupling, but the kernels do: the same tile evaluated in
a batch of 3 or of 16 differs in the last bits (measured up to 2.4e-6 on CPU), since the batch size
picks the convolution's blocking. So every evaluation has exactly :data:`EVAL_CHUNK` tiles (the last
chunk is padded with copies of its first tile, whose outputs are dropped): results do not depend on
``max_batch`` (``--batch``), on how many tiles a block has, or on a tile's place in its chunk.
"""

from __future__ import annotations

import torch

from geodiff.errors import InvalidSettingError
from geodiff.priors.base import DiffusionPrior, PriorWrapper

#: Tiles per network evaluation, whatever ``max_batch``: a fixed batch keeps the arithmetic fixed.
EVAL_CHUNK = 4


class ChunkedPrior(PriorWrapper):
    """A DiffusionPrior whose ``eps`` runs the wrapped prior on chunks of exactly ``chunk`` tiles
    (default :data:`EVAL_CHUNK`; see the module docstring); ``max_batch`` (>= 1) is kept for the callers'
    bookkeeping and no longer changes the result or the chunk size. ``chunk=1`` (the despeckle app on
    the CPU, where a batch buys little) never pads: a one-tile scene pays for one tile, not four."""

    def __init__(self, prior: DiffusionPrior, max_batch: int = 16, chunk: int | None = None) -> None:
        if max_batch < 1:
            raise InvalidSettingError(f"max_batch must be >= 1 (got {max_batch})")
        if chunk is not None and chunk < 1:
            raise InvalidSettingError(f"chunk must be None or >= 1 (got {chunk})")
        super().__init__(prior)
        self.max_batch = int(max_batch)
        self.chunk = EVAL_CHUNK if chunk is None else int(chunk)  # tiles per evaluation, fixed

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The wrapped prior's eps, :data:`EVAL_CHUNK` tiles at a time: (N, C, H, W) -> (N, C, H, W)."""
        n, m = x_t.shape[0], self.chunk
        t = torch.as_tensor(t, device=x_t.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(n)
        out = []
        for i in range(0, n, m):
            x, s = x_t[i : i + m], t[i : i + m]
            k = x.shape[0]
            if k < m:  # pad with copies of the chunk's first tile: the batch size stays fixed
                x = torch.cat([x, x[:1].expand(m - k, *x.shape[1:])])
                s = torch.cat([s, s[:1].expand(m - k)])
            out.append(self.prior.eps(x, s)[:k])
        return torch.cat(out)
