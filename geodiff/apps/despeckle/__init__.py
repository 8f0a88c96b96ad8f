"""The despeckle job: methods (classical filters, SAR-DPS) built by one call, run on whole scenes."""

from geodiff.apps.despeckle.methods import METHODS, Method, build, get, register
from geodiff.apps.despeckle.scene import despeckle_scene

__all__ = ["METHODS", "Method", "build", "despeckle_scene", "get", "register"]
