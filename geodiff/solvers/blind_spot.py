"""Blind-spot SAR despeckling: an estimate of every pixel that does not read its own speckle.

Why: PROTOCOL §2 judges a despeckler on real data by its ratio image r = y / x_hat: mean 1, and no
radiometric bias. The posterior mean E[x | y] that :func:`geodiff.solvers.sar_pnp` returns (the
least-squares estimate that PSNR rewards) reads y_i, so x_hat_i rises with the pixel's own speckle n_i and
E[y / x_hat] < 1, short by about the posterior's squared coefficient of variation: (alpha + L - 1) /
(alpha + L) in the G0 clutter model, about 0.91 on textured single-look scenes
(``bench/ratio_mean_bound.py``). Any function of the posterior moves that shortfall into the bias and
back. An estimate m_i that depends only on the data outside pixel i's correlated neighbourhood N(i)
has neither when it is the conditional mean m_i = E[x_i | y outside N(i)]: n_i is independent of x and
of that data, so E[y_i / m_i] = E[x_i / m_i] = 1 by the tower property, and E[m_i] = E[x_i]. It is the
J-invariant estimator of Noise2Self (Batson & Royer 2019), used for SAR by Speckle2Void (Molini et al.
2021); it pays for it with the information N(i) holds, i.e. PSNR (bench/README.md, "Blind-spot").

How: the pixels are split into stride^2 cosets of a square lattice in scene coordinates, stride =
2 radius + 2, so the (2 radius + 1)^2 neighbourhoods of one coset leave the rest of the scene with data.
For each coset (a pass), PnP-ADMM (:func:`geodiff.solvers.pnp.admm`, the prior's Tweedie denoiser and
the exact gamma proximal step) runs with the likelihood off (looks 0) on the coset's neighbourhoods, from
a Lee start that does not read them either (:func:`geodiff.solvers.init.lee` with a weight), and the
coset's pixels take that pass's result. The lattice is fixed in scene coordinates (``origins``), so
overlapping tiles mask the same pixels in the same pass and the tiling engine's consensus ``blend`` keeps
every estimate blind. ``radius`` 0 suits white speckle (the pixel alone, 4 passes), 1 single-look
Sentinel-1 (lag-1 intensity correlation 0.3-0.6, lag 2 about 0: 3 x 3 masked, 16 passes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from geodiff.errors import InvalidSettingError
from geodiff.likelihoods import SpeckleModel
from geodiff.priors.base import DiffusionPrior
from geodiff.solvers.config import SamplerConfig
from geodiff.solvers.init import lee
from geodiff.solvers.loop import Blend, SampleResult, summarise
from geodiff.solvers.pnp import admm, admm_sigmas, gamma_prox, snap_sigma, tweedie_denoise
from geodiff.solvers.sar import A_MIN, _radiometry, _scale_tensor, _start, check_sar_inputs

__all__ = ["blind_spot_passes", "blind_spot_stride", "sar_blind_spot"]


def blind_spot_stride(radius: int) -> int:
    """Lattice stride of a blind spot of ``radius`` px: 2 radius + 2 (radius 0: 2, 1: 4, 2: 6).

    Raises InvalidSettingError for a radius that is not a whole number in 0..3."""
    if isinstance(radius, bool) or int(radius) != radius or not 0 <= int(radius) <= 3:
        raise InvalidSettingError(f"the blind-spot radius must be a whole number in 0..3 px (got {radius!r})")
    return 2 * int(radius) + 2


def blind_spot_passes(
    shape: tuple[int, int],
    radius: int,
    origins: Sequence[tuple[int, int]] = ((0, 0),),
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The passes of the blind-spot lattice on tiles of ``shape`` (H, W) whose top-left pixels sit at
    ``origins`` (one (row, col) per tile, scene coordinates; may be negative).

    Yields, per pass, ``target`` (B, 1, H, W) bool (the pass's lattice coset: every pixel of a tile is a
    target in exactly one pass) and ``masked`` (B, 1, H, W) bool (the targets' (2 radius + 1)^2
    neighbourhoods, whose data the pass must not read); stride^2 passes (:func:`blind_spot_stride`).
    """
    stride = blind_spot_stride(radius)
    rad = int(radius)
    h, w = shape
    # the lattice on the tile grown by the radius: a target just outside the tile masks its rim too, so
    # overlapping tiles mask the same pixels and their consensus (blend) leaks no target's data
    rows = torch.arange(-rad, h + rad, device=device).view(1, -1, 1)
    cols = torch.arange(-rad, w + rad, device=device).view(1, 1, -1)
    org = torch.tensor([tuple(o) for o in origins], device=device, dtype=torch.long)
    r = (rows + org[:, 0].view(-1, 1, 1)) % stride  # (B, H + 2 rad, 1)
    c = (cols + org[:, 1].view(-1, 1, 1)) % stride  # (B, 1, W + 2 rad)
    for dr in range(stride):
        for dc in range(stride):
            grown = ((r == dr) & (c == dc)).unsqueeze(1)  # (B, 1, H + 2 rad, W + 2 rad)
            target = grown[..., rad : rad + h, rad : rad + w]
            masked = F.max_pool2d(grown.float(), 2 * rad + 1, 1) > 0 if rad else target
            yield target, masked


def sar_blind_spot(
    y: torch.Tensor,
    prior: DiffusionPrior,
    physics: SpeckleModel | float,
    config: SamplerConfig | None = None,
    *,
    radius: int = 1,
    origins: Sequence[tuple[int, int]] | None = None,
    blend: Blend | None = None,
    valid: torch.Tensor | None = None,
) -> SampleResult:
    """Blind-spot despeckling of intensity tiles y (B, C, H, W): x_hat_i from the data outside pixel i's
    (2 radius + 1)^2 neighbourhood (module docstring), with :func:`geodiff.solvers.sar._radiometry`'s
    local-mean and bright-scatterer rules on the result.

    Args:
        y: speckled intensity (linear power, >= 0, float32/64, no NaN, no all-zero tile).
        prior: a diffusion prior in the "amplitude" domain (z = 2a - 1).
        physics: the speckle model (looks L of the i.i.d. likelihood, scene scale s) or just L.
        config: ``admm_iters`` (>= 1), ``admm_sigma``, ``looks_power``, ``admm_decay``, ``admm_weight``,
            ``admm_ensemble``, ``clip``, ``mean_window`` and ``bright`` are used (default: sar_pnp's).
        radius: blind-spot radius in px (0: white speckle; 1: speckle correlated at lag 1).
        origins: (row, col) of each tile's top-left pixel in the scene (None: all (0, 0)); tiles that
            overlap must be given their true origins so that they mask the same pixels per pass.
        blend: the tiling engine's consensus hook, applied to the ADMM iterates of every pass.
        valid: bool mask like y (None: all): nodata pixels carry no likelihood and stay out of the local
            means.

    Returns a :class:`~geodiff.solvers.loop.SampleResult` (intensity, one "draw", no std); ``nfe`` =
    stride^2 x admm_iters x admm_ensemble network evaluations per tile.
    Raises ValueError (InvalidSettingError / InputError) for bad looks, observations, tiles, scale,
    radius, origins, admm_iters < 1 or a non-amplitude prior.
    """
    physics = physics if isinstance(physics, SpeckleModel) else SpeckleModel(physics)
    config = SamplerConfig.of(config, "sar_pnp")
    check_sar_inputs(y, prior, "sar_blind_spot")
    if config.admm_iters < 1:
        raise InvalidSettingError(
            f"the blind-spot estimate runs PnP-ADMM: admm_iters must be >= 1 (got {config.admm_iters})"
        )
    b = y.shape[0]
    origins = [(0, 0)] * b if origins is None else list(origins)
    if len(origins) != b:
        raise InvalidSettingError(f"origins must give one (row, col) per tile ({b}); got {len(origins)}")
    s = _scale_tensor(physics.scale, b, y)
    data = torch.ones_like(y, dtype=torch.bool) if valid is None else torch.broadcast_to(valid, y.shape)
    sigmas = [snap_sigma(prior, v) for v in admm_sigmas(config, physics.looks)]
    out = torch.zeros_like(y)
    passes = 0
    for target, masked in blind_spot_passes(tuple(y.shape[-2:]), radius, origins, y.device):
        keep = data & ~masked
        looks_map = physics.looks * keep.to(y.dtype)
        start = lee(y, physics.looks, weight=keep)
        z0 = (2 * (start.clamp_min(0) / s).sqrt() - 1).clamp(-1, 1)

        def prox(w: torch.Tensor, rho: float, looks_map: torch.Tensor = looks_map) -> torch.Tensor:
            return gamma_prox(w, y, looks_map, s, rho * config.admm_weight)

        def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
            return tweedie_denoise(prior, x, sigma, config.admm_ensemble, config.clip)

        z = admm(prox, denoise, z0, sigmas, blend=blend)
        a = ((z + 1) / 2).clamp_min(A_MIN)
        out = torch.where(target, s * a * a, out)
        passes += 1
    z_init = _start(y, s, physics, config, None)  # only says which areas are saturated (``bright``)
    inten = _radiometry(out.unsqueeze(1), y, z_init, config, physics.looks, valid)
    return summarise(inten, nfe=passes * config.admm_iters * config.admm_ensemble)
