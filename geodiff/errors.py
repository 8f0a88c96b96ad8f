"""The exceptions of geodiff, in one place (re-exporting those of ``sensors`` and ``tiling``).

Every class subclasses a builtin, so code that catches ``ValueError`` or ``FileExistsError`` keeps
working, and the command line maps them to its exit codes with :func:`exit_code`: 2 for bad input or
a bad request (``ValueError``, ``FileNotFoundError``, ``FileExistsError``, ``PermissionError``, ...),
1 when processing failed (:class:`ProcessingError` and anything unexpected). Messages name the
problem and the fix, e.g. "... pass --units db".

Use::

    from geodiff.errors import UnknownMethodError
    try:
        geodiff.despeckle(x, method="nlm")
    except UnknownMethodError as exc:  # also a ValueError
        ...
"""

from __future__ import annotations

__all__ = [
    "GeodiffError",
    "GridMismatchError",
    "InputError",
    "InvalidSettingError",
    "ProcessingError",
    "SwappedInputsError",
    "UncertaintyNotSupportedError",
    "UnknownMethodError",
    "exit_code",
]


class GeodiffError(Exception):
    """Base class of geodiff's own exceptions (each also subclasses a builtin, see the module)."""


class UnknownMethodError(GeodiffError, ValueError):
    """A despeckling or fusion method name that is not registered (the message lists the choices)."""


class InvalidSettingError(GeodiffError, ValueError):
    """A setting out of its range: looks <= 0, steps < 1, negative fusion weights, an even window..."""


class UncertaintyNotSupportedError(InvalidSettingError):
    """An uncertainty band asked of a method that draws no posterior samples (a classical filter)."""


class InputError(GeodiffError, ValueError):
    """The input data cannot be used as given (wrong shape, band, dimensions, kind of image)."""


class GridMismatchError(InputError):
    """Two inputs that must share one pixel grid do not (shape, size or footprint)."""


class SwappedInputsError(InputError):
    """The inputs look swapped (e.g. the SAR given where the optical image belongs)."""


class ProcessingError(GeodiffError, RuntimeError):
    """The input was fine but processing failed (exit code 1)."""


# The layers below define their own exceptions (they know nothing of geodiff); re-exported here so a
# caller needs one module (e.g. sensors' AmbiguousUnitsError, tiling's OutputExistsError and
# NoValidPixelsError: every pixel is nodata, or optical and SAR share no valid pixel).
try:
    from sensors.errors import *  # noqa: E402, F403
    from sensors.errors import __all__ as _sensors_all  # noqa: E402
except ImportError:  # pragma: no cover - a sensors package without its errors module
    _sensors_all = []
from tiling.errors import *  # noqa: E402, F403
from tiling.errors import __all__ as _tiling_all  # noqa: E402

__all__ += [*_sensors_all, *_tiling_all]

#: Builtin exceptions that mean "the input or the request is wrong" (exit code 2).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def exit_code(exc: BaseException) -> int:
    """The command line's exit code for ``exc``: 2 bad input or request, 1 processing failed, 130 Ctrl-C,
    128 + the signal's number for SIGTERM (143) and SIGHUP (129) (:class:`tiling.atomic.Terminated`)."""
    if isinstance(exc, KeyboardInterrupt):
        return 128 + int(getattr(exc, "signum", 2))
    if isinstance(exc, ProcessingError):
        return 1
    return 2 if isinstance(exc, USER_ERRORS) else 1
