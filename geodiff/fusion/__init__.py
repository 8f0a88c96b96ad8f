"""Optical-SAR fusion: alignment, colour handling, classical baselines and the scene pipeline."""

from geodiff.fusion.app import FUSION_METHODS, FusionResult, fuse_arrays, fuse_scene
from geodiff.fusion.baselines import BASELINES

__all__ = ["BASELINES", "FUSION_METHODS", "FusionResult", "fuse_arrays", "fuse_scene"]
