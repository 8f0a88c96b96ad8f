"""Exceptions of the radiometry layer.

Each subclasses a builtin (``ValueError``), so callers that catch the builtin keep working and the
command line maps them to exit code 2 (bad input). Every message names the problem and the fix.
"""

from __future__ import annotations

__all__ = ["AmbiguousUnitsError", "SensorsError", "UnknownUnitsError"]


class SensorsError(ValueError):
    """Base class: the input's radiometry does not fit what was asked of it."""


class UnknownUnitsError(SensorsError):
    """A units name that is not one of intensity, amplitude, db (or complex where allowed)."""


class AmbiguousUnitsError(SensorsError):
    """Neither the metadata nor the values tell the SAR units decisively: the caller must say them
    (``--units intensity|amplitude|db`` on the command line, ``units=`` in the Python API)."""

    def __init__(self, message: str, evidence: object | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence
