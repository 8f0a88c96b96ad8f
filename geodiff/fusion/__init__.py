"""Optical-SAR fusion: alignment, colour handling, classical baselines and the scene pipeline."""

from geodiff.fusion.app import FUSION_METHODS, FusionResult, fuse_arrays
from geodiff.fusion.baselines import BASELINES
from geodiff.fusion.scene import ScenePair, fuse_scene, load_pair

__all__ = [
    "BASELINES",
    "FUSION_METHODS",
    "FusionResult",
    "ScenePair",
    "fuse_arrays",
    "fuse_scene",
    "load_pair",
]
