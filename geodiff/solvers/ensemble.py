"""Dihedral ensembling across posterior samples, at no extra network cost.

Why: the prior was trained with random flips and 90-degree rotations, yet the network is not exactly
equivariant, so its errors differ between orientations. Running posterior sample k of every tile in
orientation k (flip/rotation) and mapping the network output back makes the sample mean also an
average over orientations, which removes part of the network's own error (the x8 self-ensemble of
image restoration) while the number of network evaluations stays steps x samples. The state, the
guidance and the blending hook all stay in the original frame, so tiling is unaffected.
"""

from __future__ import annotations

import torch

from geodiff.priors.base import DiffusionPrior, PriorWrapper

__all__ = ["DihedralEnsemble", "transforms_for"]

# (k rotations by 90 degrees, flip the last axis): the 8 elements of the dihedral group D4
_D4 = [(0, False), (2, False), (0, True), (2, True), (1, False), (3, False), (1, True), (3, True)]


def transforms_for(height: int, width: int) -> list[tuple[int, bool]]:
    """All 8 for square tiles; only the 4 shape-preserving ones (no 90-degree turns) otherwise."""
    return _D4 if height == width else _D4[:4]


def _apply(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, k, (-2, -1)) if k else x
    return x.flip(-1) if flip else x


def _invert(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = x.flip(-1) if flip else x
    return torch.rot90(x, -k, (-2, -1)) if k else x


class DihedralEnsemble(PriorWrapper):
    """Wrap a prior so that sample k (of ``samples`` per tile, tile-major batches) sees orientation k.

    A DiffusionPrior itself: eps(x_t (N, C, H, W), t) with N = tiles x samples; other batch sizes pass
    through unchanged.
    """

    def __init__(self, prior: DiffusionPrior, samples: int) -> None:
        super().__init__(prior)
        self.samples = int(samples)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps (N, C, H, W) with draw k of each tile evaluated in orientation k and mapped back."""
        s = self.samples
        if s == 1 or x_t.shape[0] % s:
            return self.prior.eps(x_t, t)
        tfs = transforms_for(*x_t.shape[-2:])
        xs = x_t.unflatten(0, (-1, s))
        t = torch.as_tensor(t, device=x_t.device).reshape(-1)
        ts = t.expand(x_t.shape[0]).unflatten(0, (-1, s)) if t.numel() == 1 else t.unflatten(0, (-1, s))
        moved = torch.stack([_apply(xs[:, k], *tfs[k % len(tfs)]) for k in range(s)], 1).flatten(0, 1)
        out = self.prior.eps(moved, ts.flatten()).unflatten(0, (-1, s))
        return torch.stack([_invert(out[:, k], *tfs[k % len(tfs)]) for k in range(s)], 1).flatten(0, 1)
