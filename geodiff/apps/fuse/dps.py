"""DPS fusion as a tile function of the tiling runner: the prior, the tile plan and :class:`DpsTiles`.

The array job (:mod:`geodiff.apps.fuse.arrays`) and the streamed file job
(:mod:`geodiff.apps.fuse.scene`) both run :class:`DpsTiles` over a :class:`tiling.plan.TilePlan` made by
:func:`dps_plan`, so a scene gets the same tiles, seeds and result whichever way it comes in.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from geodiff.errors import InvalidSettingError

if TYPE_CHECKING:  # torch loads when a tile is fused, not when the method registers
    import torch

__all__ = ["DpsTiles", "dps_info", "dps_plan", "load_fusion_prior"]


def load_fusion_prior(prior: Any, device: torch.device) -> Any:  # noqa: ANN401
    """The prior ``prior`` (a name of ``geodiff models`` or a loaded prior) on ``device``.

    Raises:
        InvalidSettingError: the prior is not in the "amplitude" domain (z = 2a - 1) fusion samples in.
        FileNotFoundError: no prior of that name.
    """
    from geodiff.priors import load_cached

    obj = load_cached(prior, device) if isinstance(prior, str) else prior.to(device)
    domain = getattr(obj, "domain", "amplitude")
    if domain != "amplitude":
        raise InvalidSettingError(
            f"the fusion sampler needs a prior in the 'amplitude' domain (z = 2a - 1); "
            f"{prior!r} is in {domain!r}"
        )
    return obj


def _tile_size(height: int, width: int, tile: int, stride: int) -> int:
    need = stride * math.ceil(max(height, width) / stride)
    return max(stride, min(stride * (tile // stride), need))


class DpsTiles:
    """Tile-batch function of the tiling runner: [A, B] tiles in [0, 1] -> fused tiles (fuse_dps).

    Call: ``tiles`` (B, 2, h, w) float32 (channel 0 the optical luminance A, channel 1 the SAR
    amplitude B, both stretched to [0, 1]) and the runner's :class:`tiling.runner.TileContext` (per-tile
    seeds, the per-step blending hook) -> (B, 1, h, w) fused luminance F in [0, 1] (the review's fusion
    eq. 25-26, :func:`geodiff.solvers.fuse_dps`). ``nfe`` records network evaluations per tile.
    """

    def __init__(
        self, model: Any, weights: tuple[float, float, float, float], steps: int, t0: int | None
    ) -> None:
        self.model, self.weights, self.steps, self.t0 = model, weights, steps, t0
        self.nfe = 0

    def __call__(self, tiles: torch.Tensor, ctx: Any) -> torch.Tensor:  # noqa: ANN401
        from geodiff.solvers import FusionModel, SamplerConfig, fuse_dps

        o, r = tiles[:, :1].float(), tiles[:, 1:2].float()
        a, b, c, d = self.weights
        config = SamplerConfig.defaults("fuse_dps", steps=self.steps, t0=self.t0)
        res = fuse_dps(o, r, self.model, FusionModel(a, b, c, d), config, seeds=ctx.seeds, blend=ctx.blend)
        self.nfe = max(self.nfe, int(res.nfe))
        return res.mean


def dps_plan(height: int, width: int, *, stride: int, tile: int, overlap: int, seed: int) -> Any:  # noqa: ANN401
    """The tile plan of a (height, width) scene: tile a multiple of the prior's ``stride`` and never
    above the scene (a small scene is one tile without overlap); 4x4-tile blocks."""
    from tiling.plan import TilePlan, TileSpec

    t = _tile_size(height, width, tile, int(stride))
    ov = min(overlap, t // 4) if t < max(height, width) else 0
    return TilePlan(height, width, TileSpec(tile=t, overlap=ov, halo=0, block_tiles=4), seed)


def dps_info(plan: Any, fn: DpsTiles) -> dict[str, Any]:  # noqa: ANN401
    """What a DPS run records in its summary: sampler, the plan actually used, NFE per tile, t0."""
    return {
        "sampler": "geodiff.solvers.fuse_dps",
        "tile": plan.tile,
        "overlap": plan.overlap,
        "tiles": plan.n_tiles,
        "nfe_per_tile": fn.nfe,
        "t0": fn.t0,
    }
