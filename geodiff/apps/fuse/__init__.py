"""The fusion job: optical and SAR on one grid, fused by DPS (L1/TV guidance) or a classical baseline.

:class:`FusionConfig` holds a run's settings; :data:`FUSION_METHODS` is the method registry (every
method made by :func:`build`); :func:`fuse_arrays` fuses arrays, :func:`fuse_scene` files.
"""

from geodiff.apps.fuse.arrays import FusionResult, fuse_arrays
from geodiff.apps.fuse.config import FusionConfig
from geodiff.apps.fuse.methods import FUSION_METHODS, FusionMethod, build, get, register
from geodiff.apps.fuse.scene import ScenePair, fuse_scene, load_pair

__all__ = [
    "FUSION_METHODS",
    "FusionConfig",
    "FusionMethod",
    "FusionResult",
    "ScenePair",
    "build",
    "fuse_arrays",
    "fuse_scene",
    "get",
    "load_pair",
    "register",
]
