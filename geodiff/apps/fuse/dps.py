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
    seeds, the per-step blending hook) -> (B, outputs, h, w): the fused luminance F in [0, 1] (the
    review's fusion eq. 25-26, :func:`geodiff.solvers.fuse_dps`), then its per-pixel posterior std over
    ``samples`` draws with ``uncertainty``. ``weights`` (a, b, c, d) constants, or None for the
    per-pixel rule ``rule`` (:class:`geodiff.solvers.fusion.FusionWeights`) with the scene's PCA
    shares ``share``; ``start`` "laplacian" (a Laplacian-pyramid fusion of the tile with ``share`` as
    low-pass weights), "average" or "noise". ``nfe`` records network evaluations per tile and draw.
    """

    def __init__(
        self,
        model: Any,  # noqa: ANN401
        weights: tuple[float, float, float, float] | None,
        steps: int,
        t0: int | None,
        *,
        rule: Any = None,  # noqa: ANN401
        share: tuple[float, float] | None = None,
        start: str = "average",
        samples: int = 1,
        uncertainty: bool = False,
        prox_iters: int = 60,
    ) -> None:
        self.model, self.weights, self.steps, self.t0 = model, weights, steps, t0
        self.rule, self.share, self.start = rule, share, start
        self.samples, self.uncertainty, self.prox_iters = samples, uncertainty, prox_iters
        self.nfe = 0

    @property
    def outputs(self) -> int:
        """Output channels: 2 (fused, posterior std) with ``uncertainty``, else 1."""
        return 2 if self.uncertainty else 1

    def _estimate(self, o: torch.Tensor, r: torch.Tensor) -> torch.Tensor | None:
        if self.start != "laplacian":
            return None
        import numpy as np
        import torch

        from geodiff.apps.fuse.baselines import laplacian_fusion

        share = self.share or (0.5, 0.5)
        on, rn = o[:, 0].double().cpu().numpy(), r[:, 0].double().cpu().numpy()
        est = np.stack([laplacian_fusion(x, y, low_weights=share) for x, y in zip(on, rn, strict=True)])
        return torch.from_numpy(est[:, None]).to(o)

    def __call__(self, tiles: torch.Tensor, ctx: Any) -> torch.Tensor:  # noqa: ANN401
        import torch

        from geodiff.solvers import FusionModel, SamplerConfig, fuse_dps

        o, r = tiles[:, :1].float(), tiles[:, 1:2].float()
        a, b, c, d = self.weights if self.weights is not None else (1.0, 1.0, 1.0, 1.0)
        init = "noise" if self.start == "noise" else "average"
        config = SamplerConfig.defaults(
            "fuse_dps", steps=self.steps, t0=self.t0, samples=self.samples, init=init
        )
        physics = FusionModel(a, b, c, d, prox_iters=self.prox_iters)
        from geodiff.priors.chunked import ChunkedPrior

        net = ChunkedPrior(self.model)  # the network sees 4 tiles at a time: bounded activations
        res = fuse_dps(
            o, r, net, physics, config, weights=None if self.weights is not None else self.rule,
            share=self.share, estimate=self._estimate(o, r), seeds=ctx.seeds, blend=ctx.blend,
        )  # fmt: skip
        self.nfe = max(self.nfe, int(res.nfe))
        if not self.uncertainty:
            return res.mean
        std = res.std if res.std is not None else torch.zeros_like(res.mean)
        return torch.cat([res.mean, std], 1)


def dps_plan(height: int, width: int, *, stride: int, tile: int, overlap: int, seed: int) -> Any:  # noqa: ANN401
    """The tile plan of a (height, width) scene: tile a multiple of the prior's ``stride`` and never
    above the scene (a small scene is one tile without overlap); 2x2-tile blocks (a 4x4 block of
    256² tiles held about 450 MiB of sampler state on the CPU; 2x2 about 200 MiB: bench/fusion_memory.py)."""
    from tiling.plan import TilePlan, TileSpec

    t = _tile_size(height, width, tile, int(stride))
    ov = min(overlap, t // 4) if t < max(height, width) else 0
    return TilePlan(height, width, TileSpec(tile=t, overlap=ov, halo=0, block_tiles=2), seed)


def dps_info(plan: Any, fn: DpsTiles) -> dict[str, Any]:  # noqa: ANN401
    """What a DPS run records in its summary: sampler, the plan actually used, NFE per tile, t0."""
    return {
        "sampler": "geodiff.solvers.fuse_dps",
        "tile": plan.tile,
        "overlap": plan.overlap,
        "tiles": plan.n_tiles,
        "nfe_per_tile": fn.nfe,
        "t0": fn.t0,
        "start": fn.start,
        "samples": fn.samples,
        "prox_iters": fn.prox_iters,
        "weights": list(fn.weights) if fn.weights is not None else "auto",
        "pca_share": [round(x, 4) for x in fn.share] if fn.share is not None else None,
    }
