"""SAR-DPS: despeckling by diffusion posterior sampling with the gamma speckle likelihood.

The prior lives in amplitude model space z = 2a - 1 (a in [0, 1]); the speckle model lives on
intensity.  A per-scene scale s (supplied by the caller, e.g. from :func:`estimate_scale`) links them:
I = s * ((z + 1) / 2)^2.  Guidance is a Fisher-scored Newton step on
nll(I(z)) + ||z - z0_hat||^2 / (2 zeta Var(x0 | x_t)); the Fisher information of the gamma term in z is
L / a^2 in both the intensity and the log form, so the step adapts itself to L and to the signal
level and one ``zeta`` works for L = 1 and L = 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from geodiff.likelihoods import (
    GammaIntensity,
    GammaLogIntensity,
    GaussianLogIntensity,
    check_looks,
    check_observation,
)
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.ensemble import DihedralEnsemble
from geodiff.solvers.init import lee
from geodiff.solvers.loop import SampleResult, Step, check_tiles, sample, summarise, t_for_noise

__all__ = ["FORMS", "estimate_scale", "preserve_local_mean", "sar_dps", "sar_guidance"]

FORMS = ("intensity", "log", "log_gauss")
A_MIN = 1.0 / 512  # smallest amplitude the likelihood sees (half an 8-bit step)


def estimate_scale(y: torch.Tensor, amplitude_median: float, looks: float = 1.0) -> float:
    """Scene scale s with median(sqrt(Lee(y) / s)) = the prior's training ``amplitude_median``.

    Compute it once per scene (not per tile) so that every tile shares it and the result scales
    with the input: despeckle(c y) = c despeckle(y).
    """
    check_observation(y, positive=True)
    amp = lee(y, looks).clamp_min(0).sqrt()
    return float(amp.median()) ** 2 / float(amplitude_median) ** 2


def preserve_local_mean(
    x: torch.Tensor, y: torch.Tensor, size: int = 31, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Factor box(y) / box(x) that gives the estimate x the local mean intensity of the data y.

    Why: the prior works on amplitude, where speckle is not zero-mean (E[sqrt(n)]^2 = pi/4 for one
    look), so whatever speckle the sampler smooths away in amplitude lowers the intensity, by up to
    1 dB at L = 1. The intensity y is unbiased for the reflectivity, so its local mean over a window
    large enough to hold the speckle down (31 x 31: ~3 % at L = 1) restores the radiometry without
    touching the detail. The window shrinks to fit small tiles. ``weight`` (0/1) leaves pixels out of
    both means (strong scatterers, whose energy would otherwise spread over the window).
    """
    from geodiff.solvers.init import boxcar

    size = min(int(size), 2 * (min(x.shape[-2:]) // 2) - 1)
    if size < 3:
        return torch.ones_like(x)
    tiny = torch.finfo(x.dtype).tiny
    if weight is None:
        return boxcar(y, size) / boxcar(x, size).clamp_min(tiny)
    num, den = boxcar(y * weight, size), boxcar(x * weight, size)
    return torch.where(den > tiny, num / den.clamp_min(tiny), torch.ones_like(x))


def _scale_tensor(scale, b: int, like: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(scale, dtype=like.dtype, device=like.device)
    if s.dim() == 0:
        s = s.expand(b)
    if s.numel() != b or not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"scale must be a finite number > 0 or one per tile ({b}); got {scale!r}")
    return s.reshape(b, 1, 1, 1)


def sar_guidance(
    y: torch.Tensor,
    looks: float,
    scale: torch.Tensor,
    form: str = "log",
    zeta: float = 1.0,
    data_std: float = 0.5,
    newton_iters: int = 1,
) -> Callable[[torch.Tensor, Step], torch.Tensor]:
    """The guidance callable for the loop: a damped Newton step on the speckle likelihood in z.

    ``y`` and ``scale`` are already expanded to the loop's batch (tiles * samples).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS} (got {form!r})")
    if form == "intensity":
        lik = GammaIntensity(y, looks)
    elif form == "log":
        lik = GammaLogIntensity(y, looks)
    else:
        lik = GaussianLogIntensity(y, looks)

    def grad_fisher(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = ((z + 1) / 2).clamp_min(A_MIN)
        inten = scale * a * a
        if form == "intensity":
            dij = scale * a  # dI/dz
            return lik.grad(inten) * dij, lik.fisher(inten) * dij * dij
        return lik.grad(torch.log(inten)) / a, lik.fisher(inten) / (a * a)  # du/dz = 1/a

    def guide(z0: torch.Tensor, step: Step) -> torch.Tensor:
        var = zeta * step.x0_variance(data_std)
        z = z0
        for _ in range(newton_iters):
            g, fi = grad_fisher(z)
            z = z - (g + (z - z0) / var) / (fi + 1.0 / var)
        return z

    return guide


def sar_dps(
    y: torch.Tensor,
    prior: DiffusionPrior,
    looks: float,
    scale: float | torch.Tensor = 1.0,
    *,
    steps: int = 10,
    t0: int | None = None,
    sigma0: float = 0.15,
    init: str | torch.Tensor | None = "lee",
    jacobian: bool = False,
    form: str = "log",
    zeta: float = 1.0,
    data_std: float = 0.5,
    newton_iters: int = 3,
    eta: float = 0.0,
    keep_eps: bool = False,
    samples: int = 4,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    seeds: Sequence[int] | torch.Tensor | None = None,
    blend: Callable[[torch.Tensor], torch.Tensor] | None = None,
    return_samples: bool = False,
    ensemble: bool = False,
    mean_window: int | None = None,
    bright: float | None = None,
) -> SampleResult:
    """Despeckle intensity tiles y (B, C, H, W) with L looks; returns intensity mean and std.

    Args:
        y: speckled intensity tiles (linear power, >= 0, no NaN; no all-zero tile).
        prior: a :class:`~geodiff.priors.base.DiffusionPrior` in the "amplitude" domain.
        looks: equivalent number of looks L > 0.
        scale: s in I = s * a^2 (one per scene, or one per tile); see :func:`estimate_scale`.
        steps: network evaluations per tile and sample (with ``jacobian`` each also back-propagates).
        t0: start time; with an ``init`` the estimate is noised to t0 (come-closer-diffuse-faster).
        sigma0: when t0 is None, start where the x0-noise sqrt((1-abar)/abar) equals sigma0 (model
            units, i.e. about sigma0/2 in amplitude): the expected error of the initial estimate.
        init: "lee" (Lee 7x7), an intensity tensor like y, or "noise"/None to start from noise at T-1.
        jacobian: exact DPS (autograd through the network) instead of the Jacobian-free update.
        form: "log" (exact log-gamma), "intensity" (gamma on I; same likelihood) or "log_gauss".
        zeta: guidance strength; 1 = trust x0_hat as a Gaussian with the data-std variance.
        keep_eps: keep the network's eps after the Jacobian-free update (DDS) instead of re-deriving it.
        samples: posterior draws per tile; mean and std are taken over them.  The mean of a few draws
            is a much better estimate than one draw (a draw's error adds the posterior variance);
            NFE per tile = steps * samples (defaults: 10 x 4 = 40).
        generator / seeds: one generator or seed per tile makes results independent of batching.
        blend: the tiling engine's consensus hook, applied to x0_hat and x_t at every step.
        ensemble: run sample k in flip/rotation k (see :mod:`geodiff.solvers.ensemble`): the mean is
            also an orientation average, at the same NFE.
        mean_window: rescale the samples so that the posterior mean keeps the local mean intensity of y
            over windows of this size (see :func:`preserve_local_mean`); None leaves them as sampled.
        bright: amplitude (prior units, <= 1) of the initial estimate above which a pixel keeps its
            measured intensity: strong scatterers brighter than the prior's range would be clipped.
    """
    looks = check_looks(looks)
    check_observation(y, positive=True)
    check_tiles(y, prior)
    if prior.domain != "amplitude":
        raise ValueError(
            f"sar_dps needs a prior in the 'amplitude' domain; this prior's domain is {prior.domain!r}"
        )
    b = y.shape[0]
    s = _scale_tensor(scale, b, y)
    if isinstance(init, str) and init not in ("lee", "noise"):
        raise ValueError(f"init must be 'lee', 'noise', None or an intensity tensor (got {init!r})")
    if init is None or (isinstance(init, str) and init == "noise"):
        z_init, t_start = None, None
    else:
        est = lee(y, looks) if isinstance(init, str) else init.to(y)
        if est.shape != y.shape:
            raise ValueError(f"init has shape {tuple(est.shape)}, expected {tuple(y.shape)} like y")
        z_init = (2 * (est.clamp_min(0) / s).sqrt() - 1).clamp(-1, 1)
        t_start = t0 if t0 is not None else t_for_noise(prior, sigma0)
    ys = y.repeat_interleave(samples, 0)
    ss = s.repeat_interleave(samples, 0)
    guide = sar_guidance(ys, looks, ss, form=form, zeta=zeta, data_std=data_std, newton_iters=newton_iters)
    net = DihedralEnsemble(prior, samples) if ensemble and samples > 1 else prior
    z = sample(
        net,
        tuple(y.shape),
        steps=steps,
        t0=t_start,
        init=z_init,
        eta=eta,
        guide=guide,
        jacobian=jacobian,
        x0_var=lambda st: zeta * st.x0_variance(data_std),
        keep_eps=keep_eps,
        clip=(-1.0, 1.0),
        blend=blend,
        samples=samples,
        generator=generator,
        seeds=seeds,
        device=y.device,
        dtype=y.dtype,
    )
    a = ((z + 1) / 2).clamp_min(A_MIN)
    inten = s.unsqueeze(1) * a * a
    keep = ((z_init + 1) / 2 > bright) if bright is not None and z_init is not None else None
    if mean_window:
        w = None if keep is None else (~keep).to(y.dtype)
        inten = inten * preserve_local_mean(inten.mean(1), y, mean_window, w).unsqueeze(1)
    if keep is not None:  # point scatterers keep their measured intensity
        inten = torch.where(keep.unsqueeze(1), y.unsqueeze(1).expand_as(inten), inten)
    n_steps = steps if t_start is None else min(steps, int(t_start) + 1)
    return summarise(inten, return_samples, nfe=n_steps, jacobian=jacobian)
