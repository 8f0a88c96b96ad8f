"""Diffusion priors: network, schedules, weights registry and training."""

from geodiff.priors.base import DiffusionPrior, tweedie_x0

__all__ = ["DiffusionPrior", "tweedie_x0"]
