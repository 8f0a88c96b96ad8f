"""The fusion job: optical and SAR on one grid, fused by DPS (L1/TV guidance) or a classical baseline."""

from geodiff.apps.fuse.arrays import FUSION_METHODS, FusionResult, fuse_arrays
from geodiff.apps.fuse.baselines import BASELINES
from geodiff.apps.fuse.scene import ScenePair, fuse_scene, load_pair

__all__ = [
    "BASELINES",
    "FUSION_METHODS",
    "FusionResult",
    "ScenePair",
    "fuse_arrays",
    "fuse_scene",
    "load_pair",
]
