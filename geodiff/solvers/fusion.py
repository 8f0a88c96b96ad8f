"""Optical-SAR fusion by diffusion sampling with an L1/TV guidance (the review's fusion eq. 25-26).

At each step the prior's estimate f0_hat = (z0_hat + 1) / 2 is moved (by ``strength``) to the minimiser of

    J(f) = ||f - f0_hat||_1 + a||f - o||_1 + b||f - r||_1 + c||D(f - o)||_1 + d||D(f - r)||_1,

computed by Chambolle-Pock primal-dual iterations (the proximal step; DDFM-like, Zhao et al. 2023).
With ``config.jacobian`` the same proposed change is pulled back through the network (DPS).

The weights are either four constants (``physics``, :class:`geodiff.likelihoods.FusionModel`) or
per-pixel maps from :class:`FusionWeights` (the default of the fusion job): the intensity weights a, b
split a total by the principal-component shares of (o, r) (what PCA fusion does with the whole image),
and the gradient weights c, d split a total per pixel by the two images' local gradient energy, so that
the fused gradient follows whichever source has the stronger edge there (what max-abs detail selection
does in pyramid fusion). Both rules are scale-free: no per-image tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from geodiff.errors import InvalidSettingError
from geodiff.likelihoods import FusionModel, _grad2d, _grad2d_adjoint
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.config import SamplerConfig
from geodiff.solvers.loop import Blend, SampleResult, Seeds, Step, check_tiles, sample, summarise

__all__ = ["FusionWeights", "fuse_dps", "gradient_energy", "pca_share", "weighted_prox"]

WeightMaps = tuple[torch.Tensor | float, torch.Tensor | float, torch.Tensor | float, torch.Tensor | float]


def pca_share(optical: torch.Tensor, sar: torch.Tensor) -> tuple[float, float]:
    """Principal-component shares (w_o, w_r), summing to 1, of two images of any one shape.

    The absolute leading eigenvector of the 2 x 2 covariance of (o, r), normalised to sum 1: the
    weights of PCA fusion (e.g. Zhang, "Multi-source remote sensing data fusion", IJIDF 2010). An
    image with no variance in either gives (0.5, 0.5). Returns Python floats (one host sync).
    """
    x = torch.stack([optical.reshape(-1), sar.reshape(-1)]).double()
    cov = torch.cov(x)
    vals, vecs = torch.linalg.eigh(cov)
    v = vecs[:, int(torch.argmax(vals))].abs()
    s = float(v.sum())
    if not math.isfinite(s) or s <= 0 or float(cov.diagonal().sum()) <= 0:
        return 0.5, 0.5
    return float(v[0]) / s, float(v[1]) / s


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (truncated at 3 sigma, reflect padding) of (B, 1, H, W)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="reflect")
    y = torch.nn.functional.conv2d(y, k.view(1, 1, 1, -1))
    y = torch.nn.functional.pad(y, (0, 0, radius, radius), mode="reflect")
    return torch.nn.functional.conv2d(y, k.view(1, 1, -1, 1))


def gradient_energy(x: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Local gradient energy G_sigma * |D x|^2 of (B, 1, H, W) images (forward differences, a
    Gaussian window of std ``sigma`` px): the structure-tensor trace (Harris & Stephens 1988)."""
    gx, gy = _grad2d(x)
    return _gaussian_blur(gx * gx + gy * gy, sigma)


@dataclass(frozen=True)
class FusionWeights:
    """The rule that sets the weights a, b, c, d of eq. 25 from the two images (no per-image tuning).

    * a + b = 2 ``intensity``, split by the principal-component shares of (o, r) (:func:`pca_share`;
      of the whole scene when the job passes ``share``, else of the tile);
    * c + d = ``gradient``, split per pixel as (w_o E_o)^p / ((w_o E_o)^p + (w_r E_r)^p) with E the
      local gradient energy (:func:`gradient_energy`, window ``sigma``), p = ``power`` and (w_o, w_r)
      the PCA shares raised to ``share_power`` (``share_edges``; without it E_o^p / (E_o^p + E_r^p)):
      a source that carries little of the scene's variance needs a stronger edge to win a pixel, so
      that residual speckle in flat areas does not replace the optical texture. ``share_power`` < 1
      softens that (0 is the plain split); the default 1 keeps MI and VIFF, lower values trade them
      for Qabf (``bench/README.md``, the Ariake Sea pair).

    Relative to the prior's term (weight 1). The defaults were chosen on the BigEarthNet pairs
    (``bench/fusion_ablation.py``; table in ``bench/README.md``). Raises InvalidSettingError for a
    weight < 0, share_power < 0, sigma <= 0 or power <= 0.
    """

    intensity: float = 0.7
    gradient: float = 6.0
    sigma: float = 2.0
    power: float = 2.0
    share_edges: bool = True
    share_power: float = 1.0

    def __post_init__(self) -> None:
        for name in ("intensity", "gradient"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InvalidSettingError(f"{name} weight must be a finite number >= 0 (got {v!r})")
        sp = self.share_power
        if not (isinstance(sp, (int, float)) and math.isfinite(sp) and sp >= 0):
            raise InvalidSettingError(f"share_power must be a finite number >= 0 (got {self.share_power!r})")
        for name in ("sigma", "power"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidSettingError(f"{name} must be a finite number > 0 (got {v!r})")

    def maps(
        self, optical: torch.Tensor, sar: torch.Tensor, share: tuple[float, float] | None = None
    ) -> WeightMaps:
        """(a, b, c, d) for tiles (B, 1, H, W): a, b floats, c, d tensors of the tiles' shape."""
        w_o, w_r = share if share is not None else pca_share(optical, sar)
        eo, er = gradient_energy(optical, self.sigma), gradient_energy(sar, self.sigma)
        if self.share_edges:
            eo, er = eo * w_o**self.share_power, er * w_r**self.share_power
        eo, er = eo**self.power, er**self.power
        tot = eo + er
        sel = torch.where(tot > 0, eo / tot.clamp_min(1e-30), torch.full_like(tot, 0.5))
        return (
            2 * self.intensity * w_o,
            2 * self.intensity * w_r,
            self.gradient * sel,
            self.gradient * (1 - sel),
        )


def _clamp(v: torch.Tensor, w: torch.Tensor | float) -> torch.Tensor:
    if isinstance(w, torch.Tensor):
        return torch.maximum(torch.minimum(v, w), -w)
    return v.clamp(-w, w)


def weighted_prox(
    f0: torch.Tensor,
    optical: torch.Tensor,
    sar: torch.Tensor,
    weights: WeightMaps,
    iters: int = 300,
    scale: float = 0.25,
) -> torch.Tensor:
    """argmin_f J(f) of eq. 25 with per-pixel weights, by Chambolle-Pock (Chambolle & Pock 2011).

    ``f0``, ``optical``, ``sar``: (B, 1, H, W); ``weights`` (a, b, c, d) floats or tensors broadcastable
    to them (c, d weigh both difference directions at a pixel). The iterations minimise ``scale`` * J,
    which has the same minimiser; 0.25 balances the primal and dual steps for weights of order 1-10
    (a fixed number of iterations then gets closer to the minimiser; ``bench/fusion_ablation.py``).
    With K = [I; I; I; D; D], ||K||^2 <= 19: tau = sigma = 1/||K|| with a small margin. No host syncs.
    """
    a, b, c, d = (w * scale for w in weights)
    step = 1.0 / math.sqrt(19.0 * 1.02)
    ws = (scale, a, b)
    bs = (f0, optical, sar)
    f = f0.clone()
    fbar = f.clone()
    p = [torch.zeros_like(f0) for _ in range(3)]
    q = [torch.zeros_like(f0) for _ in range(4)]
    dob, drb = _grad2d(optical), _grad2d(sar)
    for _ in range(int(iters)):
        for k in range(3):
            p[k] = _clamp(p[k] + step * (fbar - bs[k]), ws[k])
        gx, gy = _grad2d(fbar)
        q[0] = _clamp(q[0] + step * (gx - dob[0]), c)
        q[1] = _clamp(q[1] + step * (gy - dob[1]), c)
        q[2] = _clamp(q[2] + step * (gx - drb[0]), d)
        q[3] = _clamp(q[3] + step * (gy - drb[1]), d)
        kt = p[0] + p[1] + p[2] + _grad2d_adjoint(q[0], q[1]) + _grad2d_adjoint(q[2], q[3])
        f_new = f - step * kt
        fbar = 2 * f_new - f
        f = f_new
    return f


def _start(optical: torch.Tensor, sar: torch.Tensor, config: SamplerConfig, estimate) -> torch.Tensor | None:
    """Initial estimate in z = 2f - 1, or None (noise)."""
    if estimate is not None:
        return 2 * estimate.to(optical) - 1
    if config.init not in ("average", "noise"):
        raise InvalidSettingError(
            f"init must be 'average' or 'noise', or pass an estimate tensor (got {config.init!r})"
        )
    return (optical + sar) - 1 if config.init == "average" else None


def fuse_dps(
    optical: torch.Tensor,
    sar: torch.Tensor,
    prior: DiffusionPrior,
    physics: FusionModel | None = None,
    config: SamplerConfig | None = None,
    *,
    weights: FusionWeights | None = None,
    share: tuple[float, float] | None = None,
    estimate: torch.Tensor | None = None,
    seeds: Seeds = None,
    blend: Blend | None = None,
    return_samples: bool = False,
) -> SampleResult:
    """Fuse optical luminance and SAR amplitude tiles (B, 1, H, W), both float in [0, 1].

    Args:
        optical, sar: co-registered tiles of the same shape (no NaN).
        prior: a DiffusionPrior in the "amplitude" domain (z = 2f - 1).
        physics: strength and prox iterations, and the constant weights a, b, c, d when ``weights`` is
            None (default :class:`FusionModel`: a = b = c = d = 1, the original eq. 25 form).
        config: sampler settings (default ``SamplerConfig.defaults("fuse_dps")``: 50 steps from the
            average (o + r) / 2 noised to t0 = 500, one draw); ``config.samples`` draws per tile.
        weights: per-pixel weights by :class:`FusionWeights` (its maps replace physics' a, b, c, d and
            the prox is :func:`weighted_prox`); ``share`` the scene's PCA shares for its a, b.
        estimate: a start image in [0, 1] instead of ``config.init`` (e.g. a classical fusion: the
            come-closer-diffuse-faster start, Chung et al. 2022).
        seeds, blend, return_samples: as for :func:`geodiff.solvers.sar_dps`.

    Returns the fused image in [0, 1] (mean over draws) and its per-pixel std (None for one draw).
    Raises ValueError for bad tiles or weights, mismatched shapes or a non-amplitude prior.
    """
    physics = physics or FusionModel()
    config = SamplerConfig.of(config, "fuse_dps")
    physics.objective(optical, sar)  # validates both observations and their shapes
    check_tiles(optical, prior, "optical")
    if prior.domain != "amplitude":
        raise InvalidSettingError(
            f"fuse_dps needs a prior on [0, 1] images ('amplitude' domain), not {prior.domain!r}"
        )
    k = config.samples
    o_k, r_k = optical.repeat_interleave(k, 0), sar.repeat_interleave(k, 0)
    z_init = _start(optical, sar, config, estimate)
    if weights is None:
        obj = physics.objective(o_k, r_k)

        def prox(f0: torch.Tensor) -> torch.Tensor:
            return obj.prox(f0, physics.prox_iters)
    else:
        maps = weights.maps(o_k, r_k, share)

        def prox(f0: torch.Tensor) -> torch.Tensor:
            return weighted_prox(f0, o_k, r_k, maps, physics.prox_iters)

    def guide(z0: torch.Tensor, step: Step) -> torch.Tensor:
        f = prox((z0 + 1) / 2)
        return z0 + physics.strength * (2 * f - 1 - z0)

    z = sample(
        prior, tuple(optical.shape), config, guide=guide, init=z_init, seeds=seeds, blend=blend,
        device=optical.device, dtype=optical.dtype,
    )  # fmt: skip
    nfe = config.nfe(prior.alphas_cumprod, z_init is not None)
    return summarise(((z + 1) / 2).clamp(0, 1), return_samples, nfe=nfe, jacobian=config.jacobian)
