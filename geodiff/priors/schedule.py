"""The one VP noise schedule module: schedules, Tweedie's x0, prediction conversions and timesteps.

Convention (DDPM / variance preserving, Ho et al. 2020; discrete time t = 0 .. T-1)::

    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,             eps ~ N(0, I)
    score s(x_t, t) = -eps_hat / sqrt(1 - abar_t)
    Tweedie  x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
                    = (x_t + (1 - abar_t) s) / sqrt(abar_t)     (the review's eq. 24)

x0 lives in the prior's model domain (for the shipped priors amplitude a in [0, 1] mapped to
z = 2a - 1). Every solver, the trainer and the benchmarks take these formulas from here, so the
mapping between x_t, eps, x0 and v, and between a noise level and a timestep, exists exactly once.

``abar`` arguments are either a Python float (the sampling loop keeps its step constants on the host,
so it never synchronises with a GPU) or a tensor broadcastable against the images (training and
batched evaluation: see :func:`abar_at`). Images are tensors (B, C, H, W) of any float dtype.
"""

from __future__ import annotations

import math

import torch

from geodiff.errors import InvalidSettingError

__all__ = [
    "DEFAULT_T",
    "SCHEDULES",
    "abar_at",
    "cosine_alphas_cumprod",
    "eps_from_v",
    "eps_from_x0",
    "linear_alphas_cumprod",
    "make_schedule",
    "noise_to_signal",
    "q_sample",
    "t_for_sigma",
    "timesteps",
    "to_eps",
    "tweedie_x0",
    "v_target",
]

DEFAULT_T = 1000

Abar = float | torch.Tensor


def cosine_alphas_cumprod(T: int = DEFAULT_T, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule (Nichol & Dhariwal 2021, eq. 17): abar_t, t = 0..T-1, shape (T,), float64."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


def linear_alphas_cumprod(
    T: int = DEFAULT_T, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """DDPM linear-beta schedule (Ho et al. 2020): abar_t, shape (T,), float64, decreasing."""
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


SCHEDULES = {"cosine": cosine_alphas_cumprod, "linear": linear_alphas_cumprod}


def make_schedule(name: str = "cosine", T: int = DEFAULT_T) -> torch.Tensor:
    """abar_t (T,) float64 of a named schedule; raises ValueError for unknown names."""
    if name not in SCHEDULES:
        raise InvalidSettingError(f"unknown noise schedule {name!r}; use one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](T)


def abar_at(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar at integer timesteps t (B,), shaped (B, 1, ..., 1) to broadcast against ``like`` (B, ...).

    The result has ``like``'s device and dtype.
    """
    return alphas_cumprod.to(like.device, like.dtype)[t].view(-1, *([1] * (like.ndim - 1)))


def _sqrt(v: Abar) -> Abar:
    return math.sqrt(v) if isinstance(v, float) else v.sqrt()


def q_sample(abar: Abar, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Forward (noising) process: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps (Ho et al. 2020, eq. 4)."""
    return _sqrt(abar) * x0 + _sqrt(1 - abar) * eps


def tweedie_x0(x_t: torch.Tensor, eps: torch.Tensor, abar: Abar) -> torch.Tensor:
    """Tweedie's posterior mean E[x0 | x_t] = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar).

    With the score s = -eps_hat / sqrt(1 - abar) this is (x_t + (1 - abar) s) / sqrt(abar), the review's
    eq. 24 (DPS, Chung et al. 2023, eq. 11); shapes and dtype follow ``x_t``.
    """
    return (x_t - _sqrt(1 - abar) * eps) / _sqrt(abar)


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, abar: Abar) -> torch.Tensor:
    """The noise that maps x0 to x_t: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar) (Tweedie inverted)."""
    return (x_t - _sqrt(abar) * x0) / _sqrt(1 - abar)


def v_target(x0: torch.Tensor, eps: torch.Tensor, abar: Abar) -> torch.Tensor:
    """v-prediction target v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022)."""
    return _sqrt(abar) * eps - _sqrt(1 - abar) * x0


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, abar: Abar) -> torch.Tensor:
    """eps = sqrt(1 - abar) x_t + sqrt(abar) v (inverse of :func:`v_target` given x_t)."""
    return _sqrt(1 - abar) * x_t + _sqrt(abar) * v


def to_eps(prediction: str, out: torch.Tensor, x_t: torch.Tensor, abar: Abar | None) -> torch.Tensor:
    """Turn a network output of type ``prediction`` ("eps", "v" or "x0") into an eps prediction.

    ``abar`` may be None for "eps". Raises ValueError for an unknown prediction type.
    """
    if prediction == "eps":
        return out
    if prediction not in ("v", "x0"):
        raise InvalidSettingError(f"unknown prediction type {prediction!r}; use 'eps', 'v' or 'x0'")
    if abar is None:
        raise InvalidSettingError(f"a {prediction!r} prediction needs abar to be turned into eps")
    return eps_from_v(x_t, out, abar) if prediction == "v" else eps_from_x0(x_t, out, abar)


def noise_to_signal(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """sqrt((1 - abar_t) / abar_t) per timestep, (T,) float64: the std of x_t / sqrt(abar_t) around x0."""
    abar = alphas_cumprod.detach().to("cpu", torch.float64)
    return ((1 - abar) / abar).sqrt()


def t_for_sigma(alphas_cumprod: torch.Tensor, sigma: float) -> int:
    """The timestep whose noise-to-signal ratio sqrt((1 - abar) / abar) is closest to ``sigma``.

    ``sigma`` is in model units. A Gaussian-noisy image z + sigma n becomes x_t after multiplying by
    sqrt(abar_t); an initial estimate off by about sigma should be noised to this t and no further
    (come-closer-diffuse-faster, Chung et al. 2022). Raises ValueError unless sigma is finite and > 0.
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise InvalidSettingError(
            f"sigma must be a finite number > 0 (got {sigma!r}), e.g. 0.15 in model units"
        )
    return int((noise_to_signal(alphas_cumprod) - sigma).abs().argmin())


def timesteps(steps: int, t0: int, num_train: int) -> list[int]:
    """``steps`` distinct timesteps spread evenly from t0 down to 0, descending (DDIM, Song et al. 2021).

    Fewer are returned when t0 + 1 < steps. Raises ValueError for steps < 1 or t0 outside [0, num_train).
    """
    if int(steps) != steps or steps < 1:
        raise InvalidSettingError(f"steps must be an integer >= 1 (got {steps!r})")
    if int(t0) != t0 or not 0 <= t0 < num_train:
        raise InvalidSettingError(f"t0 must be an integer in [0, {num_train - 1}] (got {t0!r})")
    steps = min(int(steps), int(t0) + 1)
    if steps == 1:
        return [int(t0)]
    vals = [round(t0 - i * t0 / (steps - 1)) for i in range(steps)]
    out: list[int] = []
    for v in vals:
        if not out or v < out[-1]:
            out.append(int(v))
    return out
