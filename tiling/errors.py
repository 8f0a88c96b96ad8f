"""Exceptions of the tiling layer (raster I/O, tile plans, block runs).

Each class subclasses the builtin a caller would catch for it (``ValueError``, ``FileNotFoundError``,
``FileExistsError``, ``IsADirectoryError``, ``PermissionError``, ``OSError``), so code that catches the
builtin keeps working and the command line keeps its exit codes (2 = bad input, 1 = processing
failed). Every message names the file or value at fault and the fix.
"""

from __future__ import annotations

__all__ = [
    "ClusterResourceError",
    "NoValidPixelsError",
    "OutputBusyError",
    "OutputExistsError",
    "OutputFolderError",
    "OutputIsFolderError",
    "OutputIsInputError",
    "OutputNotWritableError",
    "OutputSuffixError",
    "OutputVerifyError",
    "OutputWriteError",
    "RasterIsFolderError",
    "RasterNotFoundError",
    "RasterOpenError",
    "RasterPermissionError",
    "RasterReadError",
    "TileFunctionError",
    "TilePlanError",
    "TilingError",
]


class TilingError(Exception):
    """Base class of every error raised by :mod:`tiling` (always mixed with a builtin below)."""


# ---- input rasters ------------------------------------------------------------------------------
class RasterNotFoundError(TilingError, FileNotFoundError):
    """The input raster path does not exist."""


class RasterIsFolderError(TilingError, IsADirectoryError):
    """The input raster path is a folder."""


class RasterPermissionError(TilingError, PermissionError):
    """The input raster exists but this process may not read it."""


class RasterOpenError(TilingError, ValueError):
    """The input is empty or not a raster GDAL can open (bad input: exit code 2)."""


class RasterReadError(TilingError, OSError, ValueError):
    """A raster opened but a window of it could not be read (a truncated GeoTIFF, a VRT with a missing
    source, a corrupt block): bad input, exit code 2 (also a ValueError); the message names the file,
    the window and the fix."""


# ---- outputs ------------------------------------------------------------------------------------
class OutputExistsError(TilingError, FileExistsError):
    """The output exists and overwriting was not asked for."""


class OutputBusyError(TilingError, FileExistsError):
    """Another live geodiff process is writing the same output (its resume state is locked)."""


class OutputIsInputError(TilingError, ValueError):
    """The output path is one of the inputs (inputs are never modified)."""


class OutputIsFolderError(TilingError, IsADirectoryError):
    """The output path is a folder, not a file name."""


class OutputFolderError(TilingError, FileNotFoundError):
    """The folder that should hold the output does not exist."""


class OutputNotWritableError(TilingError, PermissionError):
    """The folder that should hold the output is not writable."""


class OutputSuffixError(TilingError, ValueError):
    """The output's file extension is not one the writer produces (e.g. ``.png`` for a GeoTIFF)."""


class OutputWriteError(TilingError, OSError):
    """Writing the output failed (disk full, I/O error, permission lost mid-run): exit code 1.

    ``errno`` is the cause's (``errno.ENOSPC`` for a full disk) when known; nothing was written under
    the final name."""


class OutputVerifyError(OutputWriteError):
    """The written file, re-opened before its rename, is not what was written (size, bands, dtype,
    georeferencing, or a block that cannot be read): exit code 1, nothing under the final name."""


# ---- plans and runs -----------------------------------------------------------------------------
class TilePlanError(TilingError, ValueError):
    """A tile plan that cannot work: empty raster, overlap >= tile, tile smaller than the halo, ..."""


class TileFunctionError(TilingError, ValueError):
    """A tile or block function returned the wrong shape or count."""


class NoValidPixelsError(TilingError, ValueError):
    """Every input pixel is nodata or NaN/inf: there is nothing to process."""


class ClusterResourceError(TilingError, ValueError):
    """The block tasks ask for dask resources (e.g. ``GPU=1``) that no worker of the cluster offers,
    or the resources setting is malformed."""
