"""Diffusion priors: the prior protocol, noise schedules (Tweedie), network, weights registry, training.

Torch in, torch out; nothing here imports ``sensors``, ``tiling`` or the apps (training data are read
by :mod:`geodiff.priors.data` alone).
"""

from geodiff.priors.base import DiffusionPrior
from geodiff.priors.registry import list_models, load, load_cached
from geodiff.priors.schedule import abar_at, t_for_sigma, timesteps, tweedie_x0

__all__ = [
    "DiffusionPrior",
    "abar_at",
    "list_models",
    "load",
    "load_cached",
    "t_for_sigma",
    "timesteps",
    "tweedie_x0",
]
