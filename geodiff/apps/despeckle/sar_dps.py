"""SAR-DPS as a despeckling method of the scene app: one picklable tile-batch function.

The runner hands a block's tiles (input units, nodata masked) with their seeds and the block's
blending hook; this turns them into linear intensity, fills nodata with the scene's typical level
(it carries no likelihood information and stays nodata in the output), folds negative samples
(thermal-noise-subtracted sigma0) into their neighbours without moving the local mean, clamps zeros
to a tiny positive floor (real SAR has exact zeros; the gamma likelihood needs y > 0), runs :func:`sar_dps`
with the *scene* scale (so results scale with the input), and returns the posterior mean in the
input's units, plus the per-pixel posterior standard deviation (same units) when asked.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sensors.units import from_intensity, to_intensity

if TYPE_CHECKING:  # torch loads when a tile is processed, not when the method registers
    import torch

log = logging.getLogger(__name__)

#: Sampler profiles (``--profile``): PnP-ADMM with the prior's Tweedie denoiser (geodiff.solvers.pnp),
#: then a short come-closer SAR-DPS refinement; chosen on the PROTOCOL §1 dev set against BM3D-log
#: (bench/README.md, "SAR-DPS profiles"). ``fast``: at most BM3D-log's CPU time; ``balanced`` (the CPU
#: default): at most twice it; ``best`` (the CUDA default): more draws and steps. These are the fields at
#: L = 1; :func:`profile_settings` gives them at any L (:data:`MANY_LOOKS_PROFILES`).
PROFILES: dict[str, dict] = {
    "fast": {"admm_iters": 2, "steps": 3, "samples": 2, "sigma0": 0.15},
    "balanced": {"admm_iters": 3, "steps": 4, "samples": 3, "sigma0": 0.2},
    "best": {"admm_iters": 3, "steps": 5, "samples": 5, "sigma0": 0.2},
}
#: Profiles' fields at L >= :data:`MANY_LOOKS` (the likelihood's looks, which also scale the refinement's
#: start sigma0 L^-1/2): one refinement step fewer, one draw more (NFE kept: balanced 15, best 27 instead
#: of 28). From there the refinement starts at half the noise or less, so fewer steps clear it and the
#: extra draw averages better: on the first 8 dev images at L = 4, 3 steps x 4 draws beat 4 x 3 by
#: +0.07 +- 0.01 dB on every image, while at L = 1 4 x 3 keeps +0.014 SSIM over 3 x 4 (bench/README.md).
#: ``fast`` keeps its 3 steps (2 x 3 leaves speckle: -0.007 SSIM at L = 4).
#: ``log_tweedie`` (later): at L >= 2 every profile returns the homomorphic estimate instead
#: (geodiff.solvers.homomorphic: one Tweedie step of the prior on log-amplitude, averaged over 8
#: orientations for balanced and best, 2 for fast), which beat BM3D-log by about +0.4 dB at L = 4 where
#: the sampler tied it; the steps x draws above still serve --uncertainty (it needs draws) and explicit
#: --steps / --samples.
MANY_LOOKS_PROFILES: dict[str, dict] = {
    "fast": {"log_tweedie": 2},
    "balanced": {"steps": 3, "samples": 4, "log_tweedie": 8},
    "best": {"steps": 4, "samples": 6, "log_tweedie": 8},
}
#: Looks from which :data:`MANY_LOOKS_PROFILES` apply (measured at 1 and 4; 2 is their geometric mean).
MANY_LOOKS = 2.0
#: The profile a device gets when none is named: the CPU "balanced", CUDA "best".
DEVICE_PROFILES = {"cpu": "balanced", "cuda": "best"}

#: Defaults shared by the CLI, the Python API and the accessors (the "balanced" profile's sampler).
DEFAULTS = {
    "prior": "gray",
    # admm_iters, steps, samples and sigma0 (the refinement starts from the ADMM result noised to
    # sigma0 L^-looks_power, model units)
    **PROFILES["balanced"],
    "init": "lee",  # ADMM starts from a Lee estimate
    "ensemble": True,
    "mean_window": 31,  # keep the local mean intensity (radiometry) of the input; see preserve_local_mean
    "bright": 0.9,  # strong scatterers above the prior's amplitude range keep their measured value
    # guidance strength of the refinement: 1 (the Gaussian x0 model) once ADMM has removed most of the
    # speckle; the plain Lee-start sampler needed 0.3 on real Sentinel-1 to not pull speckle back in
    "zeta": 1.0,
    "admm_sigma": 0.3,  # denoiser noise level of the ADMM iterations at L = 1 (rho = 1 / sigma^2)
    "admm_decay": 1.0,  # one noise level for every iteration (a decreasing one measured worse)
    "looks_power": 0.5,  # admm_sigma and sigma0 shrink like the speckle's spread in z, 1 / sqrt(L)
    "admm_ensemble": 1,
    "refine": True,
    "log_tweedie": 0,  # > 0: the homomorphic one-step estimate (the L >= 2 profiles); 0: the sampler
    "estimator": "posterior-mean",
}

#: What a SAR-DPS run returns (``--estimator``): the posterior mean (best PSNR; its ratio image's mean
#: is below 1 by about the posterior's squared coefficient of variation on textured scenes), or the
#: blind-spot estimate (:mod:`geodiff.solvers.blind_spot`: each pixel from the data outside its
#: correlated neighbourhood; ratio mean 1 and no bias by construction, at a PSNR cost).
ESTIMATORS = ("posterior-mean", "blind-spot")


@dataclass
class SarDpsTiles:
    """SAR-DPS tile-batch function of the tiling runner, one band per call (the review's SAR-DPS
    eq. 22-24: DPS, Chung et al. 2023, with the gamma speckle likelihood of L looks).

    Call: ``tiles`` (B, 1, h, w) torch float in ``units`` (NaN/nodata allowed, masked by
    ``ctx.valid``) and a :class:`tiling.runner.TileContext` (per-tile seeds, per-step blending hook)
    -> (B, :attr:`outputs`, h, w) float32 on the CPU in ``units``: the posterior mean of ``samples``
    draws, plus their per-pixel std with ``uncertainty``. ``scale`` is the scene's s in I = s a^2
    (:func:`scene_scale`), so the result scales with the input. Picklable (dask workers); the prior
    loads once per process and device.
    """

    looks: float
    units: str
    scale: float  # the scene's s in I = s a^2 (see geodiff.solvers.estimate_scale)
    prior: str = DEFAULTS["prior"]
    steps: int = DEFAULTS["steps"]
    samples: int = DEFAULTS["samples"]
    sigma0: float = DEFAULTS["sigma0"]
    init: str = DEFAULTS["init"]
    ensemble: bool = DEFAULTS["ensemble"]
    mean_window: int | None = DEFAULTS["mean_window"]
    bright: float | None = DEFAULTS["bright"]
    zeta: float = DEFAULTS["zeta"]
    admm_iters: int = DEFAULTS["admm_iters"]  # 0: plain SAR-DPS from the Lee start
    admm_sigma: float = DEFAULTS["admm_sigma"]
    admm_decay: float = DEFAULTS["admm_decay"]
    looks_power: float = DEFAULTS["looks_power"]
    admm_ensemble: int = DEFAULTS["admm_ensemble"]
    refine: bool = DEFAULTS["refine"]
    log_tweedie: int = DEFAULTS["log_tweedie"]  # orientations of the homomorphic estimate; 0: sampler
    estimator: str = DEFAULTS["estimator"]  # one of ESTIMATORS
    # blind-spot radius in px (estimator "blind-spot"); None: from the scene's speckle correlation
    blind_spot_radius: int | None = None
    profile: str | None = None  # the profile the settings came from (None: set field by field)
    # looks of the i.i.d. gamma likelihood: the looks over the speckle's variance inflation on this
    # scene (correlated speckle, sensors.speckle_correlation; see likelihood_looks()); None: ``looks``
    likelihood_looks: float | None = None
    uncertainty: bool = False
    device: str = "cpu"
    max_batch: int = 16  # network batch (tiles x samples) per evaluation

    @property
    def solver(self) -> str:
        """The solver run: "sar_blind_spot" (``estimator`` "blind-spot"), "log_tweedie" (the homomorphic
        estimate; only from :data:`MANY_LOOKS` likelihood looks on, where log-speckle is close to Gaussian:
        on single-look Sentinel-1 crops, likelihood looks 0.45-0.53, it returned ratio means of 2.4-3.6;
        and not with ``uncertainty``, which needs draws), "sar_pnp" (PnP-ADMM + refinement) or "sar_dps"
        (``admm_iters`` = 0)."""
        if self.estimator == "blind-spot":
            return "sar_blind_spot"
        lik_looks = self.likelihood_looks or self.looks
        if self.log_tweedie and not self.uncertainty and lik_looks >= MANY_LOOKS:
            return "log_tweedie"
        return "sar_pnp" if self.admm_iters else "sar_dps"

    @property
    def outputs(self) -> int:
        """Output channels per band: 2 (mean, posterior std) with ``uncertainty``, else 1."""
        return 2 if self.uncertainty else 1

    def sampler_config(self):  # noqa: ANN201 - a geodiff.solvers.SamplerConfig
        """The solver settings of this method (``to_json()`` of it goes into the output's tags)."""
        from geodiff.solvers import SamplerConfig

        return SamplerConfig.defaults(
            "sar_dps", steps=self.steps, samples=self.samples, sigma0=self.sigma0, init=self.init,
            ensemble=self.ensemble, mean_window=self.mean_window, bright=self.bright, zeta=float(self.zeta),
            newton_iters=1, admm_iters=self.admm_iters, admm_sigma=self.admm_sigma,
            admm_decay=self.admm_decay, looks_power=self.looks_power,
            admm_ensemble=self.admm_ensemble, refine=self.refine,
            log_tweedie=self.log_tweedie if self.solver == "log_tweedie" else 0,
        )  # fmt: skip

    def __call__(self, tiles: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001 - TileContext
        import torch

        from geodiff.apps.despeckle.fill import fill_nodata_t
        from geodiff.device import gpu_chunk
        from geodiff.priors import load_cached
        from geodiff.priors.chunked import ChunkedPrior
        from geodiff.solvers import A_MIN, SpeckleModel, sar_pnp

        dev = torch.device(self.device)
        prior = load_cached(self.prior, dev)
        x = tiles.to(dev, torch.float32)
        inten = to_intensity(x, self.units)
        valid = ctx.valid.to(dev) & torch.isfinite(inten)
        if bool((valid & (inten < 0)).any()):  # thermal-noise-subtracted samples: keep the local mean
            inten = _fold_negatives(inten, valid)
        floor = self.scale * A_MIN * A_MIN
        median = prior.amplitude_median or 0.3
        # nodata: the valid side mirrored across the edge, so it does not bias the rim (fill.py)
        level = fill_nodata_t(torch.where(valid, inten, 0.0), valid, self.scale * median * median)
        y = torch.where(valid, inten, level).clamp_min(floor)
        out = torch.zeros((x.shape[0], self.outputs, *x.shape[-2:]), dtype=torch.float32, device=dev)
        physics = SpeckleModel(self.likelihood_looks or self.looks, self.scale)
        # one tile per network call on the CPU (no padding to a fixed chunk: a one-tile scene or a
        # one-draw ADMM step would pay for more), fixed chunks of geodiff.device.gpu_chunk() (one
        # block's 16 tiles) on accelerators, where small batches leave the GPU waiting on launches
        net = ChunkedPrior(prior, self.max_batch, chunk=1 if dev.type == "cpu" else gpu_chunk())
        if self.solver == "sar_blind_spot":
            from geodiff.solvers.blind_spot import sar_blind_spot

            # the lattice in scene coordinates: overlapping tiles mask the same pixels in each pass
            stride, halo = ctx.plan.stride, ctx.plan.halo
            origins = [(r * stride - halo, c * stride - halo) for r, c in ctx.ids]
            radius = 1 if self.blind_spot_radius is None else self.blind_spot_radius
            res = sar_blind_spot(
                y, net, physics, self.sampler_config(), radius=radius, origins=origins, blend=ctx.blend,
                valid=valid,
            )  # fmt: skip
        elif self.solver == "log_tweedie":
            from geodiff.solvers.homomorphic import log_tweedie

            # one step per tile: the runner's final blending joins the tiles (same log map everywhere)
            res = log_tweedie(y, net, physics, self.sampler_config(), marginal_looks=self.looks, valid=valid)
        else:
            res = sar_pnp(
                y,
                net,
                physics,
                self.sampler_config(),
                seeds=ctx.seeds,
                blend=ctx.blend,
                return_samples=self.uncertainty,
                valid=valid,  # nodata stays out of the radiometry's local means (the rim, fill.py)
            )
        out[:, :1] = from_intensity(res.mean.clamp_min(floor), self.units)
        if self.uncertainty:
            draws = from_intensity(res.samples.clamp_min(floor), self.units)  # (B, K, C, H, W)
            out[:, 1:] = draws.std(1, correction=1) if draws.shape[1] > 1 else torch.zeros_like(out[:, 1:])
        return out.cpu()


def _fold_negatives(inten: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) intensity with valid negative samples -> non-negative, same local mean, same device
    (:func:`sensors.speckle_filters.nonnegative_intensity` on each band of each tile)."""
    import torch

    from sensors.speckle_filters import nonnegative_intensity

    y = inten.detach().cpu().numpy()
    v = torch.broadcast_to(valid, inten.shape).cpu().numpy()
    out = np.stack(
        [
            np.stack([nonnegative_intensity(y[b, c], v[b, c]) for c in range(y.shape[1])])
            for b in range(y.shape[0])
        ]
    )
    return torch.from_numpy(out).to(inten.device, inten.dtype)


def resolve_profile(profile: str | None, device: str) -> str:
    """The profile name to use: ``profile`` itself, or for None / "auto" the device's default
    (:data:`DEVICE_PROFILES`: "cuda..." -> best, anything else -> balanced).

    Raises:
        InvalidSettingError: an unknown profile name (the message lists the choices).
    """
    if profile is None or profile == "auto":
        return DEVICE_PROFILES["cuda" if str(device).startswith("cuda") else "cpu"]
    if profile not in PROFILES:
        from geodiff.errors import InvalidSettingError

        raise InvalidSettingError(
            f"unknown profile {profile!r}; use one of {', '.join(PROFILES)} or auto (--profile balanced)"
        )
    return profile


def profile_settings(profile: str, looks: float) -> dict:
    """The sampler fields (admm_iters, steps, samples, sigma0, log_tweedie) of ``profile`` at ``looks`` L:
    :data:`PROFILES`, with :data:`MANY_LOOKS_PROFILES` over them where L >= :data:`MANY_LOOKS`.

    ``looks``: the likelihood's looks (L, or L / S^0.7 on correlated speckle). Raises
    InvalidSettingError for an unknown profile (:func:`resolve_profile`).
    """
    name = resolve_profile(profile, "cpu")
    extra = MANY_LOOKS_PROFILES.get(name, {}) if float(looks) >= MANY_LOOKS else {}
    return {**PROFILES[name], **extra}


def make_sar_dps(*, looks: float, window: int, units: str, scale: float, **options) -> SarDpsTiles:  # noqa: ARG001
    """The registry's factory of :class:`SarDpsTiles` (``window`` is a classical-filter option, unused).

    ``options``: SarDpsTiles fields (prior, profile, steps, samples, sigma0, init, device, max_batch,
    uncertainty, ...); None values take the defaults; ``device`` is resolved ("auto" -> cuda or cpu).
    ``profile`` (fast, balanced, best; None or "auto": the device's, :func:`resolve_profile`) sets the
    sampler fields of :func:`profile_settings` at the likelihood's looks (``likelihood_looks``, else
    ``looks``); options given explicitly (e.g. steps) override them.

    Raises:
        InvalidSettingError: steps or samples < 1, an unknown profile. ValueError: an unavailable device.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    check_estimator(opts)  # the options as given, before the profile's fields fill in steps and samples
    if "device" in opts:
        from geodiff.device import resolve_device

        opts["device"] = str(resolve_device(opts["device"]))
    opts["profile"] = resolve_profile(opts.get("profile"), opts.get("device", "cpu"))
    fields = profile_settings(opts["profile"], opts.get("likelihood_looks") or looks)
    if ("steps" in opts or "samples" in opts) and "log_tweedie" not in opts:
        fields["log_tweedie"] = 0  # explicit steps or draws ask for the sampler
    opts = {**fields, **opts}
    for key in ("steps", "samples"):
        if key in opts and int(opts[key]) < 1:
            from geodiff.errors import InvalidSettingError

            raise InvalidSettingError(f"--{key} must be >= 1 (got {opts[key]})")
    return SarDpsTiles(looks=float(looks), units=units, scale=float(scale), **opts)


def check_estimator(opts: dict) -> None:
    """Refuse an unknown estimator, a bad blind-spot radius, and, with the blind-spot estimate, an
    uncertainty band (it has no posterior draws) or refinement steps / draws (it runs none): ``opts`` are
    the options as given. Raises InvalidSettingError / UncertaintyNotSupportedError."""
    from geodiff.errors import InvalidSettingError

    est = opts.get("estimator", DEFAULTS["estimator"])
    if est not in ESTIMATORS:
        raise InvalidSettingError(f"unknown estimator {est!r}; use one of {', '.join(ESTIMATORS)}")
    radius = opts.get("blind_spot_radius")
    if radius is not None and (isinstance(radius, bool) or radius not in (0, 1, 2)):
        raise InvalidSettingError(f"the blind-spot radius must be 0, 1 or 2 px (got {radius!r})")
    if est == "blind-spot" and opts.get("uncertainty"):
        from geodiff.errors import UncertaintyNotSupportedError

        raise UncertaintyNotSupportedError(
            "an uncertainty band needs posterior draws; the blind-spot estimate has none (drop --uncertainty "
            "or use --estimator posterior-mean; uncertainty= / estimator= in the Python API)"
        )
    given = [f"--{k}" for k in ("steps", "samples") if k in opts]
    if est == "blind-spot" and given:
        raise InvalidSettingError(
            f"the blind-spot estimate runs PnP-ADMM passes, no refinement: {' and '.join(given)} do not "
            "apply (drop them; --profile fast runs 2 ADMM iterations per pass, balanced and best 3; "
            "steps= / samples= / profile= in the Python API)"
        )
    if est != "blind-spot" and opts.get("blind_spot_radius") is not None:
        raise InvalidSettingError(
            "blind_spot_radius is a setting of the blind-spot estimate: add estimator='blind-spot' or drop it"
        )


#: Blind-spot radius rule (:func:`blind_spot_radius`): the smallest radius r whose next lag, r + 1, has a
#: speckle autocorrelation below ``threshold`` along rows and columns; at most ``max_radius``.
BLIND_SPOT_RULE = {"threshold": 0.15, "max_radius": 1}


def blind_spot_radius(sample_intensity: np.ndarray, valid: np.ndarray, looks: float) -> int:
    """Radius (px) of the blind spot that covers the speckle's correlation on this scene (0 or 1).

    ``sample_intensity`` (h, w) linear intensity and ``valid`` (h, w) bool (the scene sample). The speckle
    autocorrelation at lags 1 and 2 along rows and columns is measured on homogeneous blocks
    (:func:`sensors.speckle_correlation.speckle_autocorrelation`); the radius is the smallest r with
    |rho(r + 1)| < 0.15 on both axes, at most 1 (:data:`BLIND_SPOT_RULE`). Measured: the single-look
    Sentinel-1 crops of shared/data rho(1) 0.31-0.59, rho(2) <= 0.11 (radius 1); white speckle rho(1) ~0
    (radius 0). Sentinel-1 GRD (the bundled sample, the RTC scene) has rho(2) 0.13-0.33 too, but radius 2
    (36 passes, 69 % of the data masked in each) did not pay on the bundled sample: ratio mean 1.014 in
    146 s against 0.989 in 66 s with radius 1 (balanced profile); pass ``blind_spot_radius=2`` to have it.
    A sample too small to measure (fewer than 4 blocks of 32 x 32) gets radius 1.
    """
    from sensors.speckle_correlation import speckle_autocorrelation

    try:
        rho, _ = speckle_autocorrelation(sample_intensity, valid, looks=looks, max_lag=2)
    except ValueError as exc:
        log.info("speckle correlation not measurable (%s); blind-spot radius 1", exc)
        return 1
    centre = rho.shape[0] // 2
    for r in range(BLIND_SPOT_RULE["max_radius"]):
        lag = r + 1
        if max(abs(rho[centre + lag, centre]), abs(rho[centre, centre + lag])) < BLIND_SPOT_RULE["threshold"]:
            break
    else:
        r = BLIND_SPOT_RULE["max_radius"]
    lags = [v for lag in (1, 2) for v in (rho[centre + lag, centre], rho[centre, centre + lag])]
    log.info("blind spot: speckle autocorrelation lag 1 %.2f/%.2f, lag 2 %.2f/%.2f -> radius %d", *lags, r)
    return r


#: Scene-scale rule (:func:`scene_scale`): the median amplitude maps to the prior's median, unless that
#: puts the ``quantile`` of the scene's Lee amplitude above ``ceiling`` (prior units): then s grows until
#: it does not, by at most ``cap`` times the median rule's s. On the first 16 dev images (bare solver,
#: balanced profile) +0.15 dB at L = 1 and +0.21 dB at L = 4 over the median rule alone (01912.jpg:
#: -1.39 -> +0.29 and -2.38 -> -0.23 dB against BM3D-log); caps 1.5 and 2 measured the same.
SCALE_RULE = {"quantile": 0.999, "ceiling": 0.9, "cap": 1.5}


def scene_scale(
    sample_intensity: np.ndarray,
    valid: np.ndarray,
    looks: float,
    prior: str,
    *,
    quantile: float | None = SCALE_RULE["quantile"],
    ceiling: float = SCALE_RULE["ceiling"],
    cap: float = SCALE_RULE["cap"],
) -> float:
    """The scene scale s in I = s a^2 (float, intensity units) from a central sample of the scene.

    ``sample_intensity`` (h, w) linear intensity and ``valid`` (h, w) bool. Two bounds, both on the
    Lee-filtered amplitude sqrt(Lee(y) / s) of the sample (L looks):

    * the median rule (:func:`geodiff.solvers.estimate_scale`): its median is the prior's median
      amplitude, so the scene's typical level sits where the prior has seen most data;
    * the bright bound: its ``quantile`` (0.999) is at most ``ceiling`` (0.9, prior units), so the bright
      parts of the scene stay inside the prior's range [0, 1] (above it the denoiser clips them and the
      ``bright`` rule hands back their speckled value), raising s by at most ``cap`` times the median
      rule's (real scenes' point scatterers, far above any quantile a prior could hold, are the
      ``bright`` / outlier rule's job). ``quantile=None``: the median rule alone.

    Every tile of a scene shares one scale, and despeckle(c I) = c despeckle(I).

    Raises:
        NoValidPixelsError: fewer than 64 valid positive pixels in the sample.
    """
    import torch

    from geodiff.priors import load_cached
    from geodiff.solvers import estimate_scale
    from geodiff.solvers.init import lee

    v = valid & np.isfinite(sample_intensity) & (sample_intensity > 0)
    if v.sum() < 64:
        from geodiff.errors import NoValidPixelsError

        raise NoValidPixelsError(
            "the scene sample has fewer than 64 valid positive pixels; cannot set its scale (is the "
            "scene all nodata, or are its units wrong? pass --units)"
        )
    y = np.where(v, sample_intensity, np.median(sample_intensity[v]))
    med = load_cached(prior, "cpu").amplitude_median or 0.3
    yt = torch.tensor(y[None, None], dtype=torch.float32)
    s = estimate_scale(yt, med, looks)
    if quantile is None:
        return s
    lee_int = lee(yt, looks)[0, 0].clamp_min(0).numpy()
    bright = float(np.quantile(lee_int[v], quantile)) / ceiling**2
    return float(min(max(s, bright), cap * s))


#: Likelihood looks on correlated speckle (:func:`likelihood_looks`): L / S^power with S the speckle's
#: variance inflation, measured on at least ``min_blocks`` homogeneous 32 x 32 blocks of the scene sample.
CORRELATION_RULE = {"power": 0.7, "min_blocks": 4}


def likelihood_looks(sample_intensity: np.ndarray, valid: np.ndarray, looks: float) -> float:
    """Looks L / S^0.7 of SAR-DPS's i.i.d. likelihood on a scene whose speckle is spatially correlated.

    ``sample_intensity`` (h, w) linear intensity and ``valid`` (h, w) bool (the scene sample), ``looks``
    the band's nominal L. S is the speckle's variance inflation measured on the sample's homogeneous
    blocks with the texture's share removed (:func:`sensors.speckle_correlation.effective_looks`), less
    0.1, at least 1, so white speckle keeps L and the result moves continuously with the data. A sample
    with fewer than 4 usable 32 x 32 blocks (:data:`CORRELATION_RULE`) keeps L.

    Why a power below 1: the i.i.d. likelihood over-trusts correlated data (bright speckle grains become
    "targets"), and the composite-likelihood L / S over-smooths (PROTOCOL §2 QA through the CLI,
    balanced profile: L var(r) 1.4-2.1 on the single-look crops and the bundled Sentinel-1 GRD sample).
    Power 0.7 (bench/README.md, "Correlated speckle: the power of S, small scenes, and the radiometry's
    window") moves every real scene's ratio mean towards 1 against 0.6 (single-look crops lely_1 /
    limagne_3 / marais1_2 0.901 / 0.954 / 0.980 -> 0.912 / 0.967 / 0.997; the S1 RTC scene 0.962 ->
    0.971, the sample 0.977 -> 0.989) with L var(r) 0.97-1.28 (0.6: 0.80-1.05; 0.8: up to 1.59).
    Four blocks (a 128 x 128 sample) are enough: white speckle on 120 x 120 crops of the 52 dev images
    reads S median 1.00 (90th percentile 1.6) at L = 1, 4 and 5.47, the BigEarthNet Sentinel-1 GRD
    pairs 4.5-8.4. On white speckle (PROTOCOL §1) S is ~1 and the rule keeps L.
    """
    from sensors.speckle_correlation import effective_looks

    try:
        est = effective_looks(sample_intensity, looks, valid)
    except ValueError as exc:
        log.info("speckle correlation not measurable (%s); the likelihood uses L = %.3g", exc, looks)
        return float(looks)
    if est.n_blocks < CORRELATION_RULE["min_blocks"]:
        log.info("sample too small for the speckle correlation; the likelihood uses L = %.3g", looks)
        return float(looks)
    inflation = max(1.0, est.inflation - 0.1)
    eff = float(looks) / math.pow(inflation, CORRELATION_RULE["power"])
    log.info("speckle correlation: lag-1 %.2f/%.2f, variance inflation %.2f, likelihood looks %.3g",
             est.lag1_rows, est.lag1_cols, inflation, eff)  # fmt: skip
    return eff
