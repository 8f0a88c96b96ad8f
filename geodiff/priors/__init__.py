"""Diffusion priors: network, schedules, weights registry and training."""

from geodiff.priors.base import DiffusionPrior, tweedie_x0
from geodiff.priors.registry import list_models, load

__all__ = ["DiffusionPrior", "tweedie_x0", "load", "list_models"]
