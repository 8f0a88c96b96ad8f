"""One sampler configuration for every solver (SAR-DPS, fusion, DPS, DDNM, HQS), JSON round-trippable.

Apps write ``config.to_json()`` into their outputs' tags and rebuild it with :meth:`SamplerConfig.from_json`,
so a result always says how it was sampled. Each solver has its own defaults
(:meth:`SamplerConfig.defaults`); change a field with ``dataclasses.replace`` or ``defaults(name, steps=..)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from geodiff.errors import InvalidSettingError
from geodiff.priors.schedule import t_for_sigma

__all__ = ["SOLVERS", "SamplerConfig"]


@dataclass(frozen=True)
class SamplerConfig:
    """How a diffusion solver samples: step count, start, guidance strength, draws and extras.

    Attributes:
        steps: network evaluations per tile and sample (DDIM steps, Song et al. 2021).
        t0: start timestep (0..T-1) when starting from an initial estimate; None: from ``sigma0``.
        sigma0: with an initial estimate and no t0, start where sqrt((1 - abar) / abar) = sigma0 (model
            units): the expected error of the estimate (come-closer-diffuse-faster, Chung et al. 2022).
            None: start at T-1. Without an estimate sampling always starts from noise at T-1.
        init: the solver's named initial estimate ("lee" for SAR-DPS, "average" for fusion, "noise").
        samples: posterior draws per tile; results are their mean and per-pixel std.
        eta: DDIM stochasticity in [0, 1] (0 deterministic, 1 DDPM-like).
        zeta: guidance strength: the guidance trusts x0_hat as a Gaussian of variance
            zeta Var(x0 | x_t) (smaller = stronger pull towards the data).
        data_std: the std of the data in model units that Var(x0 | x_t) assumes.
        newton_iters: Fisher-scored Newton iterations of the guidance step per diffusion step.
        jacobian: pull the guidance back through the network's Jacobian (DPS, Chung et al. 2023)
            instead of correcting x0_hat directly (Jacobian-free, DDS/DiffPIR style).
        keep_eps: keep the network's eps after a Jacobian-free correction (DDS) instead of re-deriving it.
        ensemble: run draw k in dihedral orientation k (same NFE; :mod:`geodiff.solvers.ensemble`).
        clip: clamp x0_hat to this range (the model domain), e.g. (-1, 1) for amplitude priors.
        mean_window: SAR-DPS: keep the local mean intensity of the data over a Gaussian window as strong as
            a box of this size (odd, px; see geodiff.solvers.sar.preserve_local_mean).
        bright: SAR-DPS: amplitude (prior units, in (0, 1]) of the start estimate above which a pixel is
            beyond the prior's range and taken from the data: strong scatterers keep their measured
            intensity, the rest of such a saturated area its own 7-px local mean at its measured energy.
        admm_iters: SAR-PnP: PnP-ADMM iterations before the sampling (0: none, plain SAR-DPS);
            :mod:`geodiff.solvers.pnp`.
        admm_sigma: SAR-PnP: the denoiser's noise level (model units) of the first ADMM iteration at
            L = 1; the penalty is rho = 1 / sigma^2.
        admm_decay: SAR-PnP: factor on sigma per ADMM iteration (<= 1: DiffPIR-like decreasing schedule).
        looks_power: SAR-PnP: admm_sigma and the refinement's sigma0 scale as L^(-looks_power) (0.5: like
            the speckle's spread in z).
        admm_ensemble: SAR-PnP: dihedral orientations (1..8) averaged in each ADMM denoiser call.
        admm_weight: SAR-PnP: the data step's penalty is admm_weight / sigma^2 while the denoiser runs at
            sigma (1: the penalty the denoiser's noise level implies; > 1 leans on the prior, < 1 on the
            data: the usual PnP balance parameter, Chan et al. 2017).
        refine: SAR-PnP: after ADMM, run ``steps`` x ``samples`` guided DDIM steps from the ADMM result
            noised to ``sigma0`` (come-closer-diffuse-faster); False returns the ADMM result.
        log_tweedie: SAR: 0 runs the sampler; K in 1..8 instead returns the homomorphic estimate of
            :func:`geodiff.solvers.homomorphic.log_tweedie` (one Tweedie step on log-amplitude, averaged
            over K dihedral orientations: K network evaluations per tile, no draws).

    Raises ValueError (naming the field and a valid value) for out-of-range values.
    """

    steps: int = 10
    t0: int | None = None
    sigma0: float | None = 0.15
    init: str = "lee"
    samples: int = 4
    eta: float = 0.0
    zeta: float = 1.0
    data_std: float = 0.5
    newton_iters: int = 3
    jacobian: bool = False
    keep_eps: bool = False
    ensemble: bool = False
    clip: tuple[float, float] | None = (-1.0, 1.0)
    mean_window: int | None = None
    bright: float | None = None
    admm_iters: int = 0
    admm_sigma: float = 0.2
    admm_decay: float = 1.0
    looks_power: float = 0.0
    admm_ensemble: int = 1
    admm_weight: float = 1.0
    refine: bool = True
    log_tweedie: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "samples", "newton_iters"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise InvalidSettingError(f"{name} must be an integer >= 1 (got {v!r})")
            object.__setattr__(self, name, int(v))
        if self.t0 is not None and (int(self.t0) != self.t0 or self.t0 < 0):
            raise InvalidSettingError(f"t0 must be None or an integer timestep >= 0 (got {self.t0!r})")
        if not 0.0 <= float(self.eta) <= 1.0:
            raise InvalidSettingError(
                f"eta must lie in [0, 1] (got {self.eta!r}); 0 = deterministic DDIM, 1 = DDPM-like"
            )
        for name in ("zeta", "data_std") + (("sigma0",) if self.sigma0 is not None else ()):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidSettingError(f"{name} must be a finite number > 0 (got {v!r})")
        if self.clip is not None:
            lo, hi = (float(v) for v in self.clip)
            if not lo < hi:
                raise InvalidSettingError(f"clip must be (low, high) with low < high (got {self.clip!r})")
            object.__setattr__(self, "clip", (lo, hi))
        if self.mean_window is not None and self.mean_window != 0 and self.mean_window < 3:
            raise InvalidSettingError(f"mean_window must be None or >= 3 pixels (got {self.mean_window!r})")
        if self.bright is not None and not 0 < float(self.bright) <= 1:
            raise InvalidSettingError(f"bright must be None or an amplitude in (0, 1] (got {self.bright!r})")
        for name in ("admm_iters", "admm_ensemble"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 0:
                raise InvalidSettingError(f"{name} must be an integer >= 0 (got {v!r})")
            object.__setattr__(self, name, int(v))
        lt = self.log_tweedie
        if isinstance(lt, bool) or int(lt) != lt or not 0 <= lt <= 8:
            raise InvalidSettingError(f"log_tweedie must be an integer in 0..8 (got {lt!r})")
        object.__setattr__(self, "log_tweedie", int(lt))
        if not 1 <= self.admm_ensemble <= 8:
            raise InvalidSettingError(
                f"admm_ensemble must be an integer in 1..8 (got {self.admm_ensemble!r})"
            )
        for name in ("admm_sigma", "admm_decay", "admm_weight"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidSettingError(f"{name} must be a finite number > 0 (got {v!r})")
        p = self.looks_power
        if not (isinstance(p, (int, float)) and math.isfinite(p)):
            raise InvalidSettingError(f"looks_power must be a finite number (got {p!r})")

    @classmethod
    def defaults(cls, solver: str, **changes: Any) -> SamplerConfig:
        """The defaults of ``solver`` (one of :data:`SOLVERS`), with ``changes`` applied."""
        if solver not in SOLVERS:
            raise InvalidSettingError(f"unknown solver {solver!r}; use one of {', '.join(sorted(SOLVERS))}")
        return dataclasses.replace(SOLVERS[solver], **changes)

    @classmethod
    def of(cls, config: SamplerConfig | None, solver: str) -> SamplerConfig:
        """``config`` itself, or ``solver``'s defaults for None; InvalidSettingError for anything else."""
        if config is None:
            return cls.defaults(solver)
        if not isinstance(config, cls):
            raise InvalidSettingError(
                f"{solver}: config must be a SamplerConfig or None (got {type(config).__name__}); a scene "
                "scale goes into the physics, e.g. SpeckleModel(looks, scale)"
            )
        return config

    def start_step(self, alphas_cumprod: torch.Tensor, has_init: bool) -> int:
        """First timestep: T-1 without an initial estimate, else t0, else the t of ``sigma0``, else T-1."""
        last = int(alphas_cumprod.shape[0]) - 1
        if self.t0 is not None and self.t0 > last:
            raise InvalidSettingError(
                f"t0 must be an integer in [0, {last}] for this prior (got {self.t0!r})"
            )
        if not has_init:
            return last
        if self.t0 is not None:
            return int(self.t0)
        return t_for_sigma(alphas_cumprod, self.sigma0) if self.sigma0 is not None else last

    def nfe(self, alphas_cumprod: torch.Tensor, has_init: bool) -> int:
        """Network evaluations per tile and draw: min(steps, start + 1)."""
        return min(self.steps, self.start_step(alphas_cumprod, has_init) + 1)

    def x0_variance(self, step: Any) -> float:
        """zeta Var(x0 | x_t) at a :class:`~geodiff.solvers.loop.Step`: the variance the guidance assumes."""
        return self.zeta * step.x0_variance(self.data_std)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (clip as a list)."""
        d = asdict(self)
        d["clip"] = None if self.clip is None else list(self.clip)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplerConfig:
        """Inverse of :meth:`to_dict`; missing keys take the class defaults, unknown keys raise ValueError."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidSettingError(
                f"unknown sampler settings {sorted(unknown)}; written by a newer geodiff?"
            )
        v = dict(values)
        if v.get("clip") is not None:
            v["clip"] = tuple(v["clip"])
        return cls(**v)

    def to_json(self) -> str:
        """One-line JSON (sorted keys) for raster tags."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SamplerConfig:
        """Rebuild a configuration from :meth:`to_json` output; ValueError for text that is not JSON."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidSettingError(f"sampler settings are not valid JSON ({exc})") from exc
        if not isinstance(values, dict):
            raise InvalidSettingError("sampler settings must be a JSON object")
        return cls.from_dict(values)


_GENERIC = dict(sigma0=None, init="noise", samples=1, clip=None, newton_iters=1)

#: Each solver's defaults (the base class defaults are SAR-DPS's: 10 steps x 4 draws from a Lee start).
SOLVERS: dict[str, SamplerConfig] = {
    "sar_dps": SamplerConfig(),
    # PnP-ADMM (4 iterations) + a 4-step come-closer refinement x 2 draws (geodiff.solvers.pnp)
    "sar_pnp": SamplerConfig(steps=4, samples=2, sigma0=0.1, newton_iters=1, admm_iters=4),
    "fuse_dps": SamplerConfig(steps=50, t0=500, sigma0=None, init="average", samples=1, newton_iters=1),
    "dps": SamplerConfig(steps=100, eta=1.0, jacobian=True, **_GENERIC),
    "ddnm": SamplerConfig(steps=100, eta=0.85, **_GENERIC),
    "hqs": SamplerConfig(steps=100, eta=1.0, **_GENERIC),
    "sample": SamplerConfig(steps=50, **_GENERIC),
}
