"""VP noise schedules and conversions between x0, epsilon and v predictions.

Why a module of its own: training, the shipped priors and the benchmark must agree on exactly
the same discrete schedule, so it is rebuilt from the JSON config by name, never stored twice.
"""

from __future__ import annotations

import math

import torch

DEFAULT_T = 1000


def cosine_alphas_cumprod(T: int = DEFAULT_T, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal cosine schedule: abar_t for t = 0..T-1 (float64, decreasing)."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


def linear_alphas_cumprod(
    T: int = DEFAULT_T, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """DDPM linear-beta schedule (kept for models trained elsewhere)."""
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


SCHEDULES = {"cosine": cosine_alphas_cumprod, "linear": linear_alphas_cumprod}


def make_schedule(name: str = "cosine", T: int = DEFAULT_T) -> torch.Tensor:
    """abar_t of a named schedule; raises with the known names when the name is unknown."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; use one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](T)


def _abar(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return alphas_cumprod.to(like.device, like.dtype)[t].view(-1, *([1] * (like.ndim - 1)))


def q_sample(
    alphas_cumprod: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """x_t = sqrt(abar) x0 + sqrt(1 - abar) eps."""
    a = _abar(alphas_cumprod, t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def eps_from_x0(
    alphas_cumprod: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor
) -> torch.Tensor:
    a = _abar(alphas_cumprod, t, x_t)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()


def x0_from_eps(
    alphas_cumprod: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    a = _abar(alphas_cumprod, t, x_t)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def v_target(
    alphas_cumprod: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho)."""
    a = _abar(alphas_cumprod, t, x0)
    return a.sqrt() * eps - (1 - a).sqrt() * x0


def eps_from_v(
    alphas_cumprod: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    a = _abar(alphas_cumprod, t, x_t)
    return (1 - a).sqrt() * x_t + a.sqrt() * v


def to_eps(
    prediction: str, alphas_cumprod: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """Turn a network output of the given prediction type into an epsilon prediction."""
    if prediction == "eps":
        return out
    if prediction == "v":
        return eps_from_v(alphas_cumprod, x_t, t, out)
    if prediction == "x0":
        return eps_from_x0(alphas_cumprod, x_t, t, out)
    raise ValueError(f"unknown prediction type {prediction!r}; use 'eps', 'v' or 'x0'")


def t_for_sigma(alphas_cumprod: torch.Tensor, sigma_model: float) -> int:
    """Timestep whose noise-to-signal ratio sqrt((1-abar)/abar) is closest to sigma_model.

    A Gaussian-noisy image z + sigma*n becomes x_t after multiplying by sqrt(abar_t).
    """
    ratio = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
    return int((ratio - sigma_model).abs().argmin())
