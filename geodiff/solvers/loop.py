"""The one sampling loop every solver runs: DDIM-style steps on a subset of the prior's schedule.

Per step (t -> t_prev on a descending subset of 0..T-1, ending at "t = -1" where abar = 1):

1. eps = prior.eps(x_t, t); Tweedie x0_hat = (x_t - sqrt(1-abar) eps) / sqrt(abar) (the review's eq. 24,
   :func:`geodiff.priors.schedule.tweedie_x0`; optionally clipped to the model domain);
2. guidance: a callable ``guide(x0_hat, step) -> x0_new`` proposes a data-consistent x0.
   * ``jacobian=False`` (DDS / DiffPIR / DDNM style): x0_hat <- x0_new directly.
   * ``jacobian=True`` (DPS, Chung et al. 2023, Alg. 1; the review's eq. 22: grad log p(y|x_t) =
     (dx0_hat/dx_t)^T dR/dx0_hat): the proposed change delta = x0_new - x0_hat is pulled back through
     the network's Jacobian, x_prev += k_t (1-abar) / (sqrt(abar) v) J^T delta; the normalisation makes
     both modes agree when p(x0 | x_t) is Gaussian, so one step-size setting serves both;
3. optional consensus ``blend`` of x0_hat across overlapping tiles (the tiling engine's hook);
4. DDIM update (Song et al. 2021, eq. 12)
   x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z, with
   sigma = eta * sqrt((1-abar_prev)/(1-abar)) * sqrt(1 - abar/abar_prev); the new state is blended too.

A start at t0 < T from a noised initial estimate (come-closer-diffuse-faster, Chung et al. 2022) costs only
``steps`` network evaluations.  Noise comes from one generator per tile (and sample), so a tile's
result does not depend on how tiles are batched.  Nothing in the loop reads values back to the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from geodiff.errors import InputError, InvalidSettingError
from geodiff.priors.base import DiffusionPrior
from geodiff.priors.schedule import eps_from_x0, q_sample, timesteps, tweedie_x0
from geodiff.solvers.config import SamplerConfig

__all__ = ["SampleResult", "Seeds", "Step", "check_tiles", "make_generators", "sample", "summarise"]

Blend = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Step:
    """What a guidance callable knows about the current step (plain Python numbers: no host syncs).

    index, count: position in the n steps; t: the timestep; abar, abar_prev: abar_t and that of the
    next (smaller) timestep (1.0 after the last).
    """

    index: int  # 0 .. n-1
    count: int  # n
    t: int
    abar: float
    abar_prev: float

    @property
    def ratio(self) -> float:
        """(1 - abar) / abar: the variance of x0_hat's error for unit-variance data (a time scale)."""
        return (1 - self.abar) / self.abar

    def x0_variance(self, data_std: float) -> float:
        """Var(x0 | x_t) for Gaussian data of std ``data_std`` (exact for the Gaussian prior)."""
        s2 = data_std**2
        return s2 * (1 - self.abar) / (self.abar * s2 + 1 - self.abar)


@dataclass
class SampleResult:
    """Posterior summary of a batch of tiles: mean and per-pixel std over ``samples`` draws.

    Units are the solver's output units (intensity for SAR-DPS, [0, 1] for fusion, the model domain for
    the generic solvers); ``nfe`` counts network evaluations per tile and draw.
    """

    mean: torch.Tensor  # (B, C, H, W)
    std: torch.Tensor | None  # (B, C, H, W); None for a single sample
    samples: torch.Tensor | None = None  # (B, K, C, H, W) when asked for
    nfe: int = 0  # network evaluations per tile and sample
    jacobian: bool = False


def check_tiles(x: torch.Tensor, prior: DiffusionPrior, name: str = "y") -> None:
    """Reject tiles x the network cannot take: not (B, C, H, W), wrong C, H or W not a multiple of the stride.

    Raises geodiff.errors.InputError naming ``name`` and the fix.
    """
    if x.dim() != 4:
        raise InputError(
            f"{name} must have shape (B, C, H, W); got {tuple(x.shape)} (add batch/channel axes)"
        )
    if x.shape[1] != prior.channels:
        raise InputError(f"{name} has {x.shape[1]} channel(s) but the prior takes {prior.channels}")
    h, w = x.shape[-2:]
    if h % prior.stride or w % prior.stride:
        raise InputError(
            f"tile size {h}x{w} is not a multiple of the prior's stride {prior.stride}; "
            f"use tiles of e.g. {max(prior.stride, h - h % prior.stride)} px or pad the tile"
        )


Seeds = Sequence[int] | torch.Tensor | torch.Generator | Sequence[torch.Generator] | None


def make_generators(
    batch: int, device: torch.device, seeds: Seeds = None
) -> list[torch.Generator] | torch.Generator | None:
    """Random generators for a batch of ``batch`` tiles.

    ``seeds``: one int per tile (a list or a tensor) or one :class:`torch.Generator` per tile: each tile
    draws its own noise, so its result does not depend on how tiles are batched; a single generator is
    shared by the batch; None uses torch's global generator. Raises ValueError when the count differs.
    """
    if seeds is None or isinstance(seeds, torch.Generator):
        return seeds
    vals = seeds.tolist() if isinstance(seeds, torch.Tensor) else list(seeds)
    if len(vals) != batch:
        raise InvalidSettingError(
            f"got {len(vals)} seeds for {batch} tiles; pass one seed (or generator) per tile"
        )
    if all(isinstance(v, torch.Generator) for v in vals):
        return vals
    return [torch.Generator(device=device).manual_seed(int(s)) for s in vals]


def _noise(shape, tiles: int, samples: int, gens, device, dtype) -> torch.Tensor:
    """Standard normal noise (tiles*samples, C, H, W), tile-major; per-tile generators when given."""
    if isinstance(gens, list):
        parts = [torch.randn((samples, *shape), generator=g, device=device, dtype=dtype) for g in gens]
        return torch.cat(parts, 0)
    return torch.randn((tiles * samples, *shape), generator=gens, device=device, dtype=dtype)


def _blend(x: torch.Tensor, blend: Blend | None, samples: int) -> torch.Tensor:
    if blend is None:
        return x
    if samples == 1:
        return blend(x)
    xs = x.unflatten(0, (-1, samples))
    return torch.stack([blend(xs[:, k]) for k in range(samples)], 1).flatten(0, 1)


def _guided_x0(prior, x, tt, step, config, guide, x0_var, c_eps, dtype):
    """Tweedie x0_hat (clipped) and eps at one step, with the guidance applied (Jacobian-free) or its
    DPS push J^T delta scaled for the DDIM update (``config.jacobian``); returns (x0, eps, push)."""
    clip = config.clip
    if not (config.jacobian and guide is not None):
        with torch.no_grad():
            eps = prior.eps(x, tt).to(dtype)
            x0 = tweedie_x0(x, eps, step.abar)
            if clip is not None:
                x0 = x0.clamp(*clip)
            return (guide(x0, step) if guide is not None else x0), eps, None
    xg = x.detach().requires_grad_(True)
    with torch.enable_grad():
        eps = prior.eps(xg, tt).to(dtype)
        x0g = tweedie_x0(xg, eps, step.abar)
        x0c = x0g.clamp(*clip) if clip is not None else x0g
        delta = guide(x0c.detach(), step) - x0c.detach()
        (pull,) = torch.autograd.grad(x0c, xg, grad_outputs=delta)
    # Conditional eps = eps - sqrt(1-abar) * J^T delta / v (exact when p(x0|x_t) is Gaussian with
    # variance v); its effect on x_prev is k_t (1-abar)/(sqrt(abar) v) J^T delta.
    abar, abar_prev = step.abar, step.abar_prev
    v = x0_var(step) if x0_var is not None else step.ratio
    k_t = math.sqrt(abar_prev) - c_eps * math.sqrt(abar / (1 - abar))
    return x0c.detach(), eps.detach(), (k_t * (1 - abar) / (math.sqrt(abar) * v)) * pull


def sample(
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    config: SamplerConfig | None = None,
    *,
    guide: Callable[[torch.Tensor, Step], torch.Tensor] | None = None,
    x0_var: Callable[[Step], float] | None = None,
    init: torch.Tensor | None = None,
    seeds: Seeds = None,
    blend: Blend | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Run the shared DDIM loop; returns the final x0 draws (B, samples, C, H, W) in the model domain.

    Args:
        prior: a :class:`~geodiff.priors.base.DiffusionPrior`.
        shape: (B, C, H, W) of the tiles.
        config: steps, start, eta, draws, clip, jacobian, keep_eps (default: ``defaults("sample")``).
        guide: ``guide(x0_hat, step) -> x0_new`` (the batch is expanded tile-major to B * samples).
        x0_var: variance v the guidance assumes for x0 around x0_hat (the DPS push is scaled by 1/v so
            that both modes are exact for a Gaussian p(x0 | x_t)); default (1 - abar) / abar.
        init: (B, C, H, W) initial estimate in the model domain, noised to ``config.start_step``;
            None starts from pure noise at T-1.
        seeds: one int or generator per tile (batching-independent results), or one generator.
        blend: the tiling engine's consensus hook, applied to x0_hat and to x_t at every step.
        device, dtype: of the state (default: init's device, else the CPU).

    Raises ValueError for a bad config, an init of the wrong shape or a wrong number of seeds.
    """
    config = SamplerConfig.of(config, "sample")
    b, c, h, w = shape
    device = (
        torch.device(device)
        if device is not None
        else (init.device if init is not None else torch.device("cpu"))
    )
    abars_t = prior.alphas_cumprod.detach().to("cpu", torch.float64)
    ts = timesteps(config.steps, config.start_step(abars_t, init is not None), abars_t.numel())
    abars = abars_t.tolist()  # one host copy, before the loop: nothing inside reads back from the device
    gens = make_generators(b, device, seeds)
    k, eta = config.samples, float(config.eta)
    x = _noise((c, h, w), b, k, gens, device, dtype)
    if init is not None:
        if tuple(init.shape) != (b, c, h, w):
            raise InputError(f"init has shape {tuple(init.shape)}, expected {(b, c, h, w)}")
        x = q_sample(abars[ts[0]], init.to(device, dtype).repeat_interleave(k, 0), x)
    x = _blend(x, blend, k)
    x0 = x
    for i, t in enumerate(ts):
        abar, abar_prev = abars[t], (abars[ts[i + 1]] if i + 1 < len(ts) else 1.0)
        step = Step(index=i, count=len(ts), t=t, abar=abar, abar_prev=abar_prev)
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) if eta > 0 else 0.0
        c_eps = math.sqrt(max(1 - abar_prev - sigma**2, 0.0))
        tt = torch.full((b * k,), t, device=device, dtype=torch.long)
        x0, eps, push = _guided_x0(prior, x, tt, step, config, guide, x0_var, c_eps, dtype)
        with torch.no_grad():
            if i + 1 == len(ts):  # abar_prev = 1: the new state is x0 itself (plus the DPS push)
                x0 = _blend(x0 + push if push is not None else x0, blend, k)
                break
            x0 = _blend(x0, blend, k)
            if guide is not None and push is None and not config.keep_eps:
                eps = eps_from_x0(x, x0, abar)  # DDIM on the posterior (exact for Gaussians)
            x = math.sqrt(abar_prev) * x0 + c_eps * eps
            if sigma > 0:
                x = x + sigma * _noise((c, h, w), b, k, gens, device, dtype)
            if push is not None:
                x = x + push
            x = _blend(x, blend, k)
    return x0.detach().unflatten(0, (b, k))


def summarise(values: torch.Tensor, keep: bool = False, nfe: int = 0, jacobian: bool = False) -> SampleResult:
    """Mean and per-pixel std (unbiased) over the sample axis of (B, K, C, H, W) values."""
    k = values.shape[1]
    std = values.std(1, correction=1) if k > 1 else None
    return SampleResult(values.mean(1), std, values if keep else None, nfe=nfe, jacobian=jacobian)
