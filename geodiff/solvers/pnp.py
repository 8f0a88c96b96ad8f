"""SAR-PnP: plug-and-play ADMM with the diffusion prior as denoiser, then a short come-closer refinement.

Why: the diffusion prior's one-step Tweedie denoiser beats BM3D on Gaussian noise, but a sampler that
starts from a Lee estimate and runs a few guided DDIM steps does not get that information out. PnP-ADMM
(Venkatakrishnan et al. 2013; Chan et al. 2017) alternates two exact, cheap steps instead:

* the data step, the proximal operator of the gamma L-look speckle likelihood, solved per pixel
  (:func:`gamma_prox`), and
* the prior step, a Gaussian denoiser of noise level sigma_k = 1 / sqrt(rho_k): the prior's Tweedie
  x0_hat at the timestep whose noise-to-signal ratio sqrt((1 - abar) / abar) equals sigma_k
  (:func:`tweedie_denoise`; the "diffusion model as denoiser" of DiffPIR, Zhu et al. 2023, whose
  decreasing noise schedule the per-iteration sigma decay follows).

The split lives in the prior's model space z = 2a - 1 (amplitude a, intensity I = s a^2), not in
log-intensity as in MuLoG (Deledalle et al. 2017): the prior assumes one noise level per tile, and the
ADMM residual in z has a spread that depends little on the brightness, while in log-intensity one sigma
fits no pixel. ADMM is stopped after a few iterations (it degrades beyond ~4 with a learned denoiser),
and its result starts a short guided DDIM run from a moderate noise level (come-closer-diffuse-faster,
Chung et al. 2022) whose posterior draws are averaged (:func:`sar_pnp`), with the local-mean brightness
correction of :func:`geodiff.solvers.sar.preserve_local_mean`.

Tiles of a block stay consistent: the tiling engine's ``blend`` hook is applied to the start and to the
denoised iterate at every iteration (the data step is per pixel, so it needs none); seeds are per tile.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch

from geodiff.errors import InvalidSettingError
from geodiff.likelihoods import SpeckleModel
from geodiff.priors.base import DiffusionPrior
from geodiff.priors.schedule import t_for_sigma, tweedie_x0
from geodiff.solvers.config import SamplerConfig
from geodiff.solvers.ensemble import transforms_for
from geodiff.solvers.loop import Blend, SampleResult, Seeds, summarise
from geodiff.solvers.sar import A_MIN, _radiometry, _scale_tensor, _start, check_sar_inputs, sar_dps

__all__ = [
    "PROX_ITERS",
    "admm",
    "admm_sigmas",
    "gamma_prox",
    "pnp_admm",
    "sar_pnp",
    "snap_sigma",
    "tweedie_denoise",
]

#: Safeguarded Newton iterations of the per-pixel gamma proximal step (converged to float precision).
PROX_ITERS = 12


def _stationarity(a, c, looks, rho, a_w):
    """p(a) = 2 rho a^3 (a - a_w) + L (a^2 - c) (= a^3 h'(a) / 2, same sign as h') and p'(a)."""
    a2 = a * a
    p = 2 * rho * a2 * a * (a - a_w) + looks * (a2 - c)
    dp = 8 * rho * a2 * a - 6 * rho * a_w * a2 + 2 * looks * a
    return p, dp


def _prox_objective(a, c, looks, rho, a_w):
    return looks * (2 * torch.log(a) + c / (a * a)) + 2 * rho * (a - a_w) ** 2


def gamma_prox(
    w: torch.Tensor, y: torch.Tensor, looks: float, scale: float | torch.Tensor, rho: float
) -> torch.Tensor:
    """Proximal step of the gamma L-look speckle likelihood in the prior's space z = 2a - 1, per pixel.

    Returns argmin_z  L (log I(z) + y / I(z)) + rho / 2 (z - w)^2  with I(z) = scale ((z + 1) / 2)^2, i.e.
    the exact data step of PnP-ADMM (Chan et al. 2017) for fully developed speckle (the gamma
    likelihood p(y | I) = L^L y^(L-1) / (Gamma(L) I^L) exp(-L y / I)). In a = (z + 1) / 2 the stationary
    points are the roots of the quartic p(a) = 2 rho a^3 (a - a_w) + L (a^2 - y / scale) and all lie between
    a_w and sqrt(y / scale), so a bracketed (safeguarded) Newton iteration on p converges; it runs from
    both ends of the bracket and keeps the lower objective, which is the global minimum when the
    objective has two local minima (a dark pixel far below a bright target). a is kept >= A_MIN and
    y / scale >= A_MIN^2 (a black pixel carries no information below the prior's smallest amplitude).

    Args:
        w: (B, C, H, W) target in z (any real values). y: (B, C, H, W) intensity >= 0, like w.
        looks: L > 0. scale: s in I = s a^2, a float or a tensor broadcastable to w (one per tile).
        rho: ADMM penalty > 0 (in 1 / z^2 units).

    Returns z (B, C, H, W), w's dtype and device. Fixed work, no host syncs (:data:`PROX_ITERS`).
    Raises InvalidSettingError for rho <= 0 or looks <= 0.
    """
    if not (math.isfinite(rho) and rho > 0):
        raise InvalidSettingError(f"rho must be a finite number > 0 (got {rho!r})")
    if isinstance(looks, torch.Tensor):
        if not bool(torch.isfinite(looks).all()) or bool((looks < 0).any()):
            raise InvalidSettingError("a per-pixel looks map must be finite and >= 0")
    elif not looks > 0:
        raise InvalidSettingError(f"looks must be > 0 (got {looks!r})")
    c = (y / scale).clamp_min(A_MIN * A_MIN)
    a_w = (w + 1) / 2
    rc = c.sqrt()
    lo = torch.minimum(a_w, rc).clamp_min(A_MIN)
    hi = torch.maximum(a_w, rc).clamp_min(A_MIN)
    best, best_h = None, None
    for a in (lo.clone(), hi.clone()):
        lo_k, hi_k = lo.clone(), hi.clone()
        for _ in range(PROX_ITERS):
            g, h = _stationarity(a, c, looks, rho, a_w)
            lo_k = torch.where(g < 0, a, lo_k)
            hi_k = torch.where(g < 0, hi_k, a)
            step = a - g / torch.where(h > 0, h, torch.ones_like(h))
            ok = (h > 0) & (step >= lo_k) & (step <= hi_k)
            a = torch.where(ok, step, (lo_k + hi_k) / 2)
        f = _prox_objective(a, c, looks, rho, a_w)
        if best is None:
            best, best_h = a, f
        else:
            best = torch.where(f < best_h, a, best)
    return 2 * best - 1


def _orient(x: torch.Tensor, k: int, flip: bool, inverse: bool = False) -> torch.Tensor:
    if inverse:
        x = x.flip(-1) if flip else x
        return torch.rot90(x, -k, (-2, -1)) if k else x
    x = torch.rot90(x, k, (-2, -1)) if k else x
    return x.flip(-1) if flip else x


def tweedie_denoise(
    prior: DiffusionPrior, x: torch.Tensor, sigma: float, ensemble: int = 1, clip=(-1.0, 1.0)
) -> torch.Tensor:
    """Gaussian denoiser from the diffusion prior: E[x0 | x0 + sigma n] by Tweedie's formula.

    x (B, C, H, W) in the model domain with additive Gaussian noise of std ``sigma`` (model units) is
    scaled to x_t = sqrt(abar_t) x at the timestep t whose sqrt((1 - abar_t) / abar_t) is closest to
    sigma (:func:`geodiff.priors.schedule.t_for_sigma`), and x0_hat = tweedie_x0(x_t, eps(x_t, t), abar_t)
    (the review's eq. 24; DiffPIR, Zhu et al. 2023). ``ensemble`` (1..8) averages x0_hat over that many
    dihedral orientations (flips / 90-degree turns; 4 at most for non-square tiles), costing as many
    network evaluations. ``clip`` clamps x0_hat (None: no clamp). Returns (B, C, H, W), x's dtype.
    """
    if not 1 <= int(ensemble) <= 8:
        raise InvalidSettingError(f"ensemble must be an integer in 1..8 (got {ensemble!r})")
    abars = prior.alphas_cumprod.detach().to("cpu", torch.float64)
    t = t_for_sigma(abars, float(sigma))
    abar = float(abars[t])
    tfs = transforms_for(*x.shape[-2:])[: int(ensemble)]
    xt = math.sqrt(abar) * x
    moved = torch.cat([_orient(xt, k, f) for k, f in tfs], 0)
    tt = torch.full((moved.shape[0],), t, device=x.device, dtype=torch.long)
    with torch.no_grad():
        eps = prior.eps(moved, tt).to(x.dtype)
    parts = eps.chunk(len(tfs), 0)
    eps = torch.stack([_orient(p, k, f, inverse=True) for p, (k, f) in zip(parts, tfs, strict=True)]).mean(0)
    x0 = tweedie_x0(xt, eps, abar)
    return x0.clamp(*clip) if clip is not None else x0


def snap_sigma(prior: DiffusionPrior, sigma: float) -> float:
    """The noise level sqrt((1 - abar_t) / abar_t) of the timestep t closest to ``sigma`` (model units).

    The denoiser can only run at the prior's timesteps; ADMM uses the snapped value for its penalty
    rho = 1 / sigma^2, so the denoiser is exactly the proximal map its penalty assumes when the prior
    is Gaussian (the closed-form test).
    """
    abars = prior.alphas_cumprod.detach().to("cpu", torch.float64)
    abar = float(abars[t_for_sigma(abars, float(sigma))])
    return math.sqrt((1 - abar) / abar)


def admm_sigmas(config: SamplerConfig, looks: float) -> list[float]:
    """Denoiser noise levels sigma_k (model units) of the ADMM iterations: rho_k = 1 / sigma_k^2.

    sigma_k = admm_sigma * L^(-looks_power) * admm_decay^k, k = 0 .. admm_iters - 1 (a decreasing
    schedule like DiffPIR's, Zhu et al. 2023; speckle in z shrinks like 1 / sqrt(L)).
    """
    s0 = config.admm_sigma * float(looks) ** (-config.looks_power)
    return [s0 * config.admm_decay**k for k in range(config.admm_iters)]


def admm(
    prox: Callable[[torch.Tensor, float], torch.Tensor],
    denoise: Callable[[torch.Tensor, float], torch.Tensor],
    start: torch.Tensor,
    sigmas: Sequence[float],
    *,
    blend: Blend | None = None,
) -> torch.Tensor:
    """Plug-and-play ADMM (Venkatakrishnan et al. 2013; Chan et al. 2017, Alg. 1), scaled form.

    For k = 0 .. len(sigmas) - 1 with rho_k = 1 / sigma_k^2:
    x = prox(v - u, rho_k) (the data term's proximal map), v = denoise(x + u, sigma_k) (the prior's
    Gaussian denoiser at noise level sigma_k, then the tiles' consensus ``blend``), and
    u = (u + x - v) rho_k / rho_{k+1} (the scaled dual, rescaled when the penalty changes).
    With a Gaussian prior whose MMSE denoiser is prox_{sigma^2 g} and a convex data term this converges
    to argmin f + g (the MAP); with a learned denoiser it is stopped early.

    ``start`` (B, C, H, W) is v_0 (u_0 = 0); returns the last v (B, C, H, W).
    """
    v = start if blend is None else blend(start)
    u = torch.zeros_like(v)
    for k, sigma in enumerate(sigmas):
        x = prox(v - u, 1.0 / sigma**2)
        v = denoise(x + u, sigma)
        if blend is not None:
            v = blend(v)
        if k + 1 < len(sigmas):
            u = (u + x - v) * (sigmas[k + 1] / sigma) ** 2
    return v


def pnp_admm(
    y: torch.Tensor,
    prior: DiffusionPrior,
    physics: SpeckleModel,
    config: SamplerConfig,
    z_start: torch.Tensor,
    *,
    blend: Blend | None = None,
) -> torch.Tensor:
    """PnP-ADMM for speckle in z (:func:`admm` with :func:`gamma_prox` and :func:`tweedie_denoise`).

    y (B, C, H, W) intensity; ``physics.scale`` a float or (B, 1, 1, 1); ``z_start`` (B, C, H, W) the
    start in z; sigmas from :func:`admm_sigmas`, snapped to the prior's timesteps (:func:`snap_sigma`);
    the data step's penalty is ``config.admm_weight`` / sigma^2.
    ``config.admm_ensemble`` orientations per denoiser call, ``config.clip`` the denoiser's clamp.
    Returns z (B, C, H, W), the last denoised iterate.
    """
    sigmas = [snap_sigma(prior, s) for s in admm_sigmas(config, physics.looks)]

    def prox(w: torch.Tensor, rho: float) -> torch.Tensor:
        return gamma_prox(w, y, physics.looks, physics.scale, rho * config.admm_weight)

    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return tweedie_denoise(prior, x, sigma, config.admm_ensemble, config.clip)

    return admm(prox, denoise, z_start, sigmas, blend=blend)


def sar_pnp(
    y: torch.Tensor,
    prior: DiffusionPrior,
    physics: SpeckleModel | float,
    config: SamplerConfig | None = None,
    *,
    estimate: torch.Tensor | None = None,
    seeds: Seeds = None,
    blend: Blend | None = None,
    return_samples: bool = False,
    valid: torch.Tensor | None = None,
) -> SampleResult:
    """Despeckle intensity tiles y (B, C, H, W) by PnP-ADMM + a come-closer SAR-DPS refinement.

    1. Start z_0 from a Lee estimate (``config.init``) or ``estimate``; ``config.admm_iters`` PnP-ADMM
       iterations in z with the prior's Tweedie denoiser (:func:`pnp_admm`).
    2. With ``config.refine``: :func:`geodiff.solvers.sar.sar_dps` from the ADMM result noised to
       ``config.sigma0`` L^(-looks_power) (come-closer-diffuse-faster, Chung et al. 2022), ``steps``
       guided DDIM steps x ``samples`` draws, averaged, with the local-mean radiometry (``mean_window``)
       and bright scatterers (``bright``). Without: the ADMM result with the same radiometry, one "draw".

    Args (``valid``: nodata pixels to leave out of the local means) and returns as
    :func:`geodiff.solvers.sar.sar_dps` (intensity in y's units; ``nfe`` counts the
    network evaluations per tile: ADMM iterations x admm_ensemble + steps x samples of the refinement).
    ``admm_iters = 0`` is plain SAR-DPS. Raises ValueError for bad looks, observations, tiles, scale,
    init name or a non-amplitude prior.
    """
    physics = physics if isinstance(physics, SpeckleModel) else SpeckleModel(physics)
    config = SamplerConfig.of(config, "sar_pnp")
    check_sar_inputs(y, prior, "sar_pnp")
    s = _scale_tensor(physics.scale, y.shape[0], y)
    if config.admm_iters == 0:
        return sar_dps(y, prior, physics, config, estimate=estimate, seeds=seeds, blend=blend,
                       return_samples=return_samples, valid=valid)  # fmt: skip
    if estimate is None and config.init == "noise":
        raise InvalidSettingError("sar_pnp starts ADMM from an estimate: use init='lee' or pass estimate")
    z_init = _start(y, s, physics, config, estimate)
    z = pnp_admm(y, prior, dataclasses.replace(physics, scale=s), config, z_init, blend=blend)
    admm_nfe = config.admm_iters * config.admm_ensemble
    a = ((z + 1) / 2).clamp_min(A_MIN)
    est = s * a * a
    if config.refine:
        sigma0 = None if config.sigma0 is None else config.sigma0 * physics.looks ** (-config.looks_power)
        refine = dataclasses.replace(config, init="lee", sigma0=sigma0)
        res = sar_dps(y, prior, physics, refine, estimate=est, seeds=seeds, blend=blend,
                      return_samples=return_samples, valid=valid)  # fmt: skip
        res.nfe = admm_nfe + res.nfe * config.samples
        return res
    inten = _radiometry(est.unsqueeze(1), y, z_init, config, physics.looks, valid)
    return summarise(inten, return_samples, nfe=admm_nfe)
