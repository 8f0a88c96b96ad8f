"""The fusion methods, all built through one call: :func:`build` (mirrors the despeckle registry).

A fusion method turns the optical luminance A and the SAR amplitude B, both stretched to [0, 1] on one
grid, into a fused luminance F in [0, 1]; the job then gives F the optical colours back. Two kinds:

- "tiles": a diffusion sampler run tile by tile by the tiling runner (``fn(tiles (B, 2, h, w), ctx)
  -> (B, 1, h, w)``): DPS with the L1/TV guidance (the review's fusion eq. 25-26).
- "image": a classical baseline on the whole image in memory (``fn(A (H, W), B (H, W)) -> F (H, W)``,
  float64): global by nature (PCA weights, multi-level pyramids), so it is never tiled.

Every method is made the same way::

    fn = build(FusionConfig(method="dps", steps=20, prior="gray"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geodiff.apps.fuse.baselines import BASELINES
from geodiff.apps.registry import Registry

if TYPE_CHECKING:
    from geodiff.apps.fuse.config import FusionConfig

__all__ = ["FUSION_METHODS", "FusionMethod", "build", "get", "register"]


@dataclass(frozen=True)
class FusionMethod:
    """A fusion method of the registry.

    ``kind``: "tiles" or "image" (see the module). ``make(config)`` returns the function.
    ``samples``: it draws from a posterior (a diffusion sampler; results depend on ``seed``).
    ``local``: F at a pixel depends only on A and B at that pixel, so tiling cannot change it.
    """

    name: str
    kind: str
    make: Callable[[FusionConfig], Callable]
    description: str = ""
    samples: bool = False
    local: bool = False


FUSION_METHODS: Registry[FusionMethod] = Registry("fusion method", ("tiles", "image"))
#: Add (or replace) a fusion method; InvalidSettingError for a kind other than "tiles" / "image".
register = FUSION_METHODS.register
#: The fusion method of a name; UnknownMethodError (a ValueError, listing the choices) otherwise.
get = FUSION_METHODS.method


def build(config: FusionConfig) -> Callable:
    """The function of ``config.method`` with ``config``'s settings: the one way every job makes one.

    Raises:
        UnknownMethodError: ``config.method`` is not registered.
        ValueError: the prior is not usable (wrong domain, unknown name) or the device is unavailable.
    """
    return get(config.method).make(config)


def _make_dps(config: FusionConfig) -> Callable:
    from geodiff.apps.fuse.dps import DpsTiles, load_fusion_prior
    from geodiff.device import resolve_device
    from geodiff.solvers.fusion import FusionWeights

    model = load_fusion_prior(config.prior, resolve_device(config.device))
    rule = FusionWeights(config.intensity_weight, config.gradient_weight)
    return DpsTiles(
        model, config.weights, config.steps, config.t0, rule=rule, start=config.start,
        samples=config.samples, uncertainty=config.uncertainty, prox_iters=config.prox_iters,
    )  # fmt: skip


register(
    FusionMethod(
        "dps",
        "tiles",
        _make_dps,
        "diffusion posterior sampling with the L1/TV fusion guidance (eq. 25-26)",
        samples=True,
    )
)
for _name, _fn in BASELINES.items():
    register(
        FusionMethod(
            _name,
            "image",
            lambda config, fn=_fn: fn,
            f"classical {_name} fusion (PROTOCOL §3 baseline)",
            local=_name == "average",
        )
    )
