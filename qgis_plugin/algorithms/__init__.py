"""The geodiff Processing algorithms (each runs one `geodiff` command)."""

from .check import CheckAlgorithm
from .despeckle import DespeckleAlgorithm
from .fuse import FuseAlgorithm
from .plan import PlanAlgorithm
from .qa import QaAlgorithm

ALGORITHMS = (DespeckleAlgorithm, FuseAlgorithm, QaAlgorithm, PlanAlgorithm, CheckAlgorithm)

__all__ = [
    "ALGORITHMS",
    "CheckAlgorithm",
    "DespeckleAlgorithm",
    "FuseAlgorithm",
    "PlanAlgorithm",
    "QaAlgorithm",
]
