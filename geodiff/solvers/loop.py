"""The one sampling loop every solver runs: DDIM-style steps on a subset of the prior's schedule.

Per step (t -> t_prev on a descending subset of 0..T-1, ending at "t = -1" where abar = 1):

1. eps = prior.eps(x_t, t); Tweedie x0_hat = (x_t - sqrt(1-abar) eps) / sqrt(abar) (optionally clipped);
2. guidance: a callable ``guide(x0_hat, step) -> x0_new`` proposes a data-consistent x0.
   * ``jacobian=False`` (DDS / DiffPIR / DDNM style): x0_hat <- x0_new directly.
   * ``jacobian=True`` (DPS): the proposed change delta = x0_new - x0_hat is pulled back through the
     network's Jacobian, x_prev += sqrt(abar_prev) sqrt(abar) J^T delta; the normalisation makes both
     modes agree when J = I / sqrt(abar), so one step-size setting serves both;
3. optional consensus ``blend`` of x0_hat across overlapping tiles (the tiling engine's hook);
4. DDIM update x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z, with
   sigma = eta * sqrt((1-abar_prev)/(1-abar)) * sqrt(1 - abar/abar_prev); the new state is blended too.

A start at t0 < T from a noised initial estimate (come-closer-diffuse-faster) costs only
``steps`` network evaluations.  Noise comes from one generator per tile (and sample), so a tile's
result does not depend on how tiles are batched.  Nothing in the loop reads values back to the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from geodiff.priors.base import DiffusionPrior

__all__ = [
    "SampleResult",
    "Step",
    "check_tiles",
    "make_generators",
    "sample",
    "summarise",
    "t_for_noise",
    "timesteps",
]

Blend = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Step:
    """What a guidance callable knows about the current step (plain Python numbers: no host syncs)."""

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
    """Posterior summary of a batch of tiles: mean and per-pixel std over ``samples`` draws."""

    mean: torch.Tensor  # (B, C, H, W)
    std: torch.Tensor | None  # (B, C, H, W); None for a single sample
    samples: torch.Tensor | None = None  # (B, K, C, H, W) when asked for
    nfe: int = 0  # network evaluations per tile and sample
    jacobian: bool = False


def timesteps(steps: int, t0: int, num_train: int) -> list[int]:
    """``steps`` distinct timesteps spread evenly from t0 down to 0 (descending)."""
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (got {steps!r})")
    if int(t0) != t0 or not 0 <= t0 < num_train:
        raise ValueError(f"t0 must be an integer in [0, {num_train - 1}] (got {t0!r})")
    steps = min(int(steps), int(t0) + 1)
    if steps == 1:
        return [int(t0)]
    vals = [round(t0 - i * t0 / (steps - 1)) for i in range(steps)]
    out: list[int] = []
    for v in vals:
        if not out or v < out[-1]:
            out.append(int(v))
    return out


def t_for_noise(prior: DiffusionPrior, sigma: float) -> int:
    """The timestep whose x0-scale noise sqrt((1 - abar) / abar) is closest to ``sigma`` (model units).

    Handy for choosing t0 from the expected error of the initial estimate: an estimate that is off by
    ~0.1 in model units should be noised to about t_for_noise(prior, 0.1) and no further.
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number > 0 (got {sigma!r})")
    abar = prior.alphas_cumprod.detach().to("cpu", torch.float64)
    return int(torch.argmin(((1 - abar) / abar).sqrt().sub(sigma).abs()))


def check_tiles(x: torch.Tensor, prior: DiffusionPrior, name: str = "y") -> None:
    """Reject tiles the network cannot take (rank, channels, size not a multiple of the stride)."""
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have shape (B, C, H, W); got {tuple(x.shape)} (add batch/channel axes)"
        )
    if x.shape[1] != prior.channels:
        raise ValueError(f"{name} has {x.shape[1]} channel(s) but the prior takes {prior.channels}")
    h, w = x.shape[-2:]
    if h % prior.stride or w % prior.stride:
        raise ValueError(
            f"tile size {h}x{w} is not a multiple of the prior's stride {prior.stride}; "
            f"use tiles of e.g. {max(prior.stride, h - h % prior.stride)} px or pad the tile"
        )


def make_generators(
    batch: int,
    device: torch.device,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    seeds: Sequence[int] | torch.Tensor | None = None,
) -> list[torch.Generator] | torch.Generator | None:
    """One generator per tile from ``seeds`` (ints or a tensor), or the given generator(s)."""
    if seeds is not None:
        vals = seeds.tolist() if isinstance(seeds, torch.Tensor) else list(seeds)
        if len(vals) != batch:
            raise ValueError(f"got {len(vals)} seeds for {batch} tiles; pass one seed per tile")
        return [torch.Generator(device=device).manual_seed(int(s)) for s in vals]
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    gens = list(generator)
    if len(gens) != batch:
        raise ValueError(f"got {len(gens)} generators for {batch} tiles; pass one per tile")
    return gens


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


def sample(
    prior: DiffusionPrior,
    shape: tuple[int, int, int, int],
    *,
    steps: int = 50,
    t0: int | None = None,
    init: torch.Tensor | None = None,
    eta: float = 0.0,
    guide: Callable[[torch.Tensor, Step], torch.Tensor] | None = None,
    jacobian: bool = False,
    x0_var: Callable[[Step], float] | None = None,
    keep_eps: bool = False,
    clip: tuple[float, float] | None = None,
    blend: Blend | None = None,
    samples: int = 1,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    seeds: Sequence[int] | torch.Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Run the shared loop and return the final x0 samples, shape (B, samples, C, H, W), model domain.

    ``shape`` is (B, C, H, W) of the tiles.  ``init`` (B, C, H, W), in the model domain, is noised to
    t0 (default T-1 without init); without init the loop starts from pure noise.  A guidance callable
    sees the batch expanded tile-major to B * samples.

    ``x0_var(step)`` is the variance v the guidance assumes for x0 around x0_hat (the DPS push is
    scaled by 1/v so that, for a Gaussian p(x0 | x_t), both modes are exact).  ``keep_eps=True`` keeps the
    network's eps after a Jacobian-free correction (DDS/DDNM style) instead of re-deriving it from
    the corrected x0 (posterior DDIM, the default).
    """
    b, c, h, w = shape
    if samples < 1 or int(samples) != samples:
        raise ValueError(f"samples must be an integer >= 1 (got {samples!r})")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (got {eta!r}); 0 = deterministic DDIM, 1 = DDPM-like")
    device = (
        torch.device(device)
        if device is not None
        else (init.device if init is not None else torch.device("cpu"))
    )
    abars_t = prior.alphas_cumprod.detach().to("cpu", torch.float64)
    num_train = abars_t.numel()
    if t0 is None:
        t0 = num_train - 1
    ts = timesteps(steps, t0, num_train)
    abars = abars_t.tolist()  # one host copy, before the loop
    gens = make_generators(b, device, generator, seeds)
    n = b * samples

    z = _noise((c, h, w), b, samples, gens, device, dtype)
    if init is not None:
        if tuple(init.shape) != (b, c, h, w):
            raise ValueError(f"init has shape {tuple(init.shape)}, expected {(b, c, h, w)}")
        base = init.to(device, dtype).repeat_interleave(samples, 0)
        a0 = abars[ts[0]]
        x = math.sqrt(a0) * base + math.sqrt(1 - a0) * z
    else:
        x = z
    x = _blend(x, blend, samples)

    x0 = x
    for i, t in enumerate(ts):
        abar = abars[t]
        abar_prev = abars[ts[i + 1]] if i + 1 < len(ts) else 1.0
        step = Step(index=i, count=len(ts), t=t, abar=abar, abar_prev=abar_prev)
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) if eta > 0 else 0.0
        c_eps = math.sqrt(max(1 - abar_prev - sigma**2, 0.0))
        tt = torch.full((n,), t, device=device, dtype=torch.long)
        push = None
        if jacobian and guide is not None:
            xg = x.detach().requires_grad_(True)
            with torch.enable_grad():
                eps = prior.eps(xg, tt).to(dtype)
                x0g = (xg - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
                x0c = x0g.clamp(*clip) if clip is not None else x0g
                delta = guide(x0c.detach(), step) - x0c.detach()
                (pull,) = torch.autograd.grad(x0c, xg, grad_outputs=delta)
            eps = eps.detach()
            x0 = x0c.detach()
            # Conditional eps = eps - sqrt(1-abar) * J^T delta / v (exact when p(x0|x_t) is Gaussian with
            # variance v); its effect on x_prev is k_t (1-abar)/(sqrt(abar) v) J^T delta.
            v = x0_var(step) if x0_var is not None else step.ratio
            k_t = math.sqrt(abar_prev) - c_eps * math.sqrt(abar / (1 - abar))
            push = (k_t * (1 - abar) / (math.sqrt(abar) * v)) * pull
        else:
            with torch.no_grad():
                eps = prior.eps(x, tt).to(dtype)
                x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
                if clip is not None:
                    x0 = x0.clamp(*clip)
                if guide is not None:
                    x0 = guide(x0, step)
        with torch.no_grad():
            if i + 1 == len(ts):  # abar_prev = 1: the new state is x0 itself (plus the DPS push)
                x0 = _blend(x0 + push if push is not None else x0, blend, samples)
                break
            x0 = _blend(x0, blend, samples)
            if guide is not None and push is None and not keep_eps:
                # re-derive eps from the corrected x0: DDIM on the posterior (exact for Gaussians)
                eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
            x = math.sqrt(abar_prev) * x0 + c_eps * eps
            if sigma > 0:
                x = x + sigma * _noise((c, h, w), b, samples, gens, device, dtype)
            if push is not None:
                x = x + push
            x = _blend(x, blend, samples)
    return x0.detach().unflatten(0, (b, samples))


def summarise(values: torch.Tensor, keep: bool = False, nfe: int = 0, jacobian: bool = False) -> SampleResult:
    """Mean and per-pixel std (unbiased) over the sample axis of (B, K, C, H, W) values."""
    k = values.shape[1]
    std = values.std(1, correction=1) if k > 1 else None
    return SampleResult(values.mean(1), std, values if keep else None, nfe=nfe, jacobian=jacobian)
